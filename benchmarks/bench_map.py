"""Benchmark: the map page on the bundled sample, in Debian's Chromium driven by Playwright.

Reported (median of ``--repeat`` runs, seconds):

* ``first_paint``: from navigation to the page ready with its speed tiles drawn;
* ``series``: from a click on the map to the point's series plotted;
* ``tile``: one 256 px PNG tile of the speed layer over HTTP (cold: rendered by rio-tiler),
  against ``tile_read``, reading the same window of the GeoTIFF with rasterio alone (the
  floor), as a ratio.

Targets of issue 23: first paint under 2 s, a series under 1 s, a tile under 200 ms.
Run: ``python benchmarks/bench_map.py [--repeat 5]``
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
import urllib.request

import morecantile
import rasterio
from playwright.sync_api import sync_playwright
from rasterio.warp import transform_bounds
from rasterio.windows import from_bounds

from itscube.sample import ensure_sample, serve_sample
from itscube.web import MapServer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    sample = ensure_sample()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    tms = morecantile.tms.get("WebMercatorQuad")
    rows: dict[str, list[float]] = {"first_paint": [], "series": [], "tile": [], "tile_read": []}
    with (
        tempfile.TemporaryDirectory() as out,
        serve_sample(sample) as archive,
        MapServer([str(sample.subyearly)], catalog=archive.catalog_url, out=out) as srv,
        sync_playwright() as pw,
    ):
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        (layer,) = srv.layers.values()
        for i in range(args.repeat):
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            t0 = time.perf_counter()
            page.goto(srv.url)
            page.wait_for_function("window.itscube && window.itscube.ready === true")
            page.wait_for_selector(".leaflet-tile-loaded")
            rows["first_paint"].append(time.perf_counter() - t0)
            page.click("#mode-points")
            x, y = page.evaluate("window.itscube.screen(-48.8, 69.4)")
            t0 = time.perf_counter()
            page.mouse.click(x, y)
            page.wait_for_function("window.itscube.plot !== undefined")
            rows["series"].append(time.perf_counter() - t0)
            page.close()
            tile = tms.tile(-48.8 + 0.01 * i, 69.4, 13)
            t0 = time.perf_counter()
            urllib.request.urlopen(f"{srv.url}tiles/{layer.id}/13/{tile.x}/{tile.y}.png").read()
            rows["tile"].append(time.perf_counter() - t0)
            b = tms.xy_bounds(tile)
            t0 = time.perf_counter()
            with rasterio.open(layer.path) as src:
                w = from_bounds(*transform_bounds(3857, src.crs, *b), src.transform)
                src.read(1, window=w, boundless=True)
            rows["tile_read"].append(time.perf_counter() - t0)
        browser.close()
    med = {k: round(statistics.median(v), 3) for k, v in rows.items()}
    med["tile_vs_read"] = round(med["tile"] / med["tile_read"], 1)
    print(json.dumps(med))


if __name__ == "__main__":
    main()
