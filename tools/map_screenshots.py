"""Screenshots of the map page's main views for the README (``docs/map_*.png``).

Run: ``python tools/map_screenshots.py`` (needs Chromium and Playwright, as the browser
tests). Serves the bundled sample, draws a box, adds two points and shows a series.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

from itscube.sample import ensure_sample, serve_sample
from itscube.web import MapServer

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _at(page, lon: float, lat: float) -> tuple[float, float]:
    return page.evaluate("([lon, lat]) => window.itscube.screen(lon, lat)", [lon, lat])


def main() -> None:
    sample = ensure_sample()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    with (
        tempfile.TemporaryDirectory() as out,
        serve_sample(sample) as archive,
        MapServer([str(sample.subyearly)], catalog=archive.catalog_url, out=out) as srv,
        sync_playwright() as pw,
    ):
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 760})
        page.goto(srv.url)
        page.wait_for_function("window.itscube && window.itscube.ready === true")
        page.wait_for_load_state("networkidle")
        page.click("#mode-box")
        (x0, y0), (x1, y1) = _at(page, -48.9, 69.43), _at(page, -48.72, 69.38)
        page.mouse.move(x0, y0)
        page.mouse.down()
        page.mouse.move(x1, y1)
        page.mouse.up()
        page.wait_for_selector("#area-info:not([hidden])")
        page.screenshot(path=str(DOCS / "map_area.png"))
        page.click("#mode-points")
        for lon, lat in ((-48.86, 69.40), (-48.80, 69.40)):
            page.mouse.click(*_at(page, lon, lat))
            page.wait_for_function("window.itscube.lastSeries !== null")
        page.wait_for_timeout(1500)
        page.screenshot(path=str(DOCS / "map_series.png"))
        browser.close()
    print(f"wrote {DOCS / 'map_area.png'} and {DOCS / 'map_series.png'}")


if __name__ == "__main__":
    main()
