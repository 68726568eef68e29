"""The map page's server: layers, tiles at the right place and colour, series equal to the
library's, CSV equal to ``itscube series``, jobs, and the security rules."""

from __future__ import annotations

import io
import json
import os
import re
import time
import urllib.error
import urllib.request

import morecantile
import numpy as np
import pyproj
import pytest
import rasterio
from PIL import Image

from itscube.geometry import point_targets
from itscube.products.series import run_series
from itscube.sample import ensure_sample, serve_sample
from itscube.series import time_series
from itscube.web import MapServer
from itscube.web.layers import colormap

TMS = morecantile.tms.get("WebMercatorQuad")


def _get(url: str, data: bytes | None = None, headers: dict | None = None):
    req = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), dict(exc.headers)


def _json(url, body=None):
    data = json.dumps(body).encode() if body is not None else None
    status, raw, _ = _get(url, data, {"Content-Type": "application/json"} if data else None)
    return status, json.loads(raw)


@pytest.fixture(scope="module")
def sample():
    return ensure_sample()


@pytest.fixture(scope="module")
def page(sample, tmp_path_factory):
    out = tmp_path_factory.mktemp("map-out")
    with (
        serve_sample(sample) as archive,
        MapServer([str(sample.subyearly)], catalog=archive.catalog_url, out=out) as srv,
    ):
        srv.archive = archive
        yield srv


def test_tile_pixels_carry_the_colour_of_the_value_there(page):
    (layer,) = [lyr for lyr in page.layers.values() if lyr.name.startswith("median speed")]
    cm = colormap(layer.cmap)
    with rasterio.open(layer.path) as src:
        band = src.read(1)
        to_src = pyproj.Transformer.from_crs(3857, src.crs, always_xy=True)
        checked = 0
        for lon, lat in ((-48.80, 69.40), (-48.90, 69.38), (-48.72, 69.43)):
            tile = TMS.tile(lon, lat, 13)
            status, png, _ = _get(f"{page.url}tiles/{layer.id}/13/{tile.x}/{tile.y}.png")
            assert status == 200
            rgba = np.asarray(Image.open(io.BytesIO(png)).convert("RGBA"))
            b = TMS.xy_bounds(tile)
            for px, py in ((40, 50), (128, 128), (200, 90)):
                mx = b.left + (px + 0.5) / 256 * (b.right - b.left)
                my = b.top - (py + 0.5) / 256 * (b.top - b.bottom)
                row, col = src.index(*to_src.transform(mx, my))
                if not (0 <= row < src.height and 0 <= col < src.width):
                    continue
                value = band[row, col]
                if not np.isfinite(value):
                    assert rgba[py, px, 3] == 0, "no data is transparent"
                    continue
                k = (value - layer.vmin) / (layer.vmax - layer.vmin) * 255
                near = [
                    cm[int(np.clip(i, 0, 255))][:3]
                    for i in (np.floor(k) - 1, np.floor(k), np.ceil(k) + 1)
                ]
                assert rgba[py, px, 3] == 255
                assert any(np.abs(np.subtract(rgba[py, px, :3], c)).max() <= 2 for c in near), (
                    value,
                    rgba[py, px],
                    near,
                )
                checked += 1
    assert checked >= 6
    far = TMS.tile(10.0, 45.0, 13)
    assert _get(f"{page.url}tiles/{layer.id}/13/{far.x}/{far.y}.png")[0] == 204


def test_series_equals_time_series_and_csv_equals_itscube_series(page, sample, tmp_path):
    lon, lat = -48.8, 69.4
    q = f"lon={lon}&lat={lat}&min_dt=5&max_dt=90&start=2018-01-01&end=2019-12-31"
    status, got = _json(f"{page.url}api/series?{q}")
    assert status == 200, got
    from itscube.window import Filters

    ref = time_series(point_targets([(lon, lat)]), str(sample.subyearly), start="2018-01-01",
                      end="2019-12-31", filters=Filters(5, 90))  # fmt: skip
    v = ref["v"].values[0]
    keep = np.isfinite(v)
    assert len(got["time"]) == keep.sum() > 10
    np.testing.assert_allclose(np.asarray(got["v"], float), v[keep], rtol=1e-6)
    assert all(5 <= d <= 90 for d in got["date_dt"])
    product = run_series(point_targets([(lon, lat)]), str(sample.subyearly), out=tmp_path,
                         start="2018-01-01", end="2019-12-31", filters=Filters(5, 90))  # fmt: skip
    status, csv, headers = _get(f"{page.url}api/series.csv?{q}")
    assert status == 200 and "attachment" in headers["Content-Disposition"]
    assert csv == (product.folder / "series.csv").read_bytes()


def test_area_lists_cubes_and_the_command(page):
    status, info = _json(f"{page.url}api/area?bbox=-48.9,69.37,-48.7,69.43&start=2018-01-01")
    assert status == 200, info
    assert [c["epsg"] for c in info["cubes"]] == [3413]
    assert info["command"].startswith("itscube download --bbox -48.90000 69.37000 -48.70000")
    assert "--start 2018-01-01" in info["command"] and info["decoded_gb"] > 0
    status, none = _json(f"{page.url}api/area?bbox=10,45,11,46")
    assert status == 200 and none["cubes"] == []
    status, fp = _json(f"{page.url}api/footprints")
    assert status == 200 and {f["properties"]["epsg"] for f in fp["features"]} == {3413}


def _wait(page, job_id, limit=240):
    deadline = time.time() + limit
    while time.time() < deadline:
        status, job = _json(f"{page.url}api/jobs/{job_id}")
        assert status == 200
        if job["state"] != "running":
            return job
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} did not finish")


@pytest.mark.slow
def test_download_and_track_from_the_page_add_their_layers(page):
    before = {lyr["id"] for lyr in _json(f"{page.url}api/config")[1]["layers"]}
    body = {"kind": "download", "bbox": [-48.85, 69.38, -48.75, 69.42], "start": "2018-01-01",
            "end": "2018-06-30"}  # fmt: skip
    status, job = _json(f"{page.url}api/jobs", body)
    assert status == 202, job
    assert job["command"].startswith("itscube download --bbox")
    status, again = _json(f"{page.url}api/jobs", body)
    assert status == 409 and "same folder" in again["error"], "two jobs never share a folder"
    done = _wait(page, job["id"])
    assert done["state"] == "done", done
    assert done["progress"]["done"] == done["progress"]["total"] > 0
    cube = done["layers"][0]
    assert cube["name"].startswith("median speed subyearly")
    status, cfg = _json(f"{page.url}api/config")
    assert any(c.endswith(".zarr") and "subyearly_bbox" in c for c in cfg["cubes"])
    body = {"kind": "track", "points": [[-48.8, 69.4], [-48.79, 69.4]], "start": "2018-01-01",
            "end": "2018-06-30", "cube": str(page.cubes[0])}  # fmt: skip
    status, job = _json(f"{page.url}api/jobs", body)
    assert status == 202, job
    done = _wait(page, job["id"])
    assert done["state"] == "done", done
    names = {lyr["name"] for lyr in done["layers"]}
    assert "tracks" in names, names
    status, cfg = _json(f"{page.url}api/config")
    new = {lyr["id"] for lyr in cfg["layers"]} - before
    assert len(new) >= 2
    tracks = next(lyr for lyr in cfg["layers"] if lyr["name"] == "tracks")
    status, gj = _json(f"{page.url}api/vector/{tracks['id']}")
    assert status == 200 and len(gj["features"]) >= 2
    xs = [c[0] for f in gj["features"] for c in _coords(f["geometry"])]
    assert all(-49.2 < x < -48.4 for x in xs), "lon/lat GeoJSON, not metres"


def test_qdiv_from_uploaded_thickness_and_boundary(page, sample):
    def up(path):
        status, raw, _ = _get(f"{page.url}api/upload?name={path.name}", path.read_bytes())
        assert status == 201, raw
        return json.loads(raw)["id"]

    status, raw, _ = _get(f"{page.url}api/upload?name=evil.sh", b"#!/bin/sh")
    assert status == 415 and b"use one of" in raw
    status, bad = _json(f"{page.url}api/jobs", {"kind": "qdiv", "thickness": "nope1234",
                                                "cube": str(page.cubes[0])})  # fmt: skip
    assert status == 400 and "upload the file first" in bad["error"]
    body = {"kind": "qdiv", "thickness": up(sample.thickness), "boundary": up(sample.boundary),
            "cube": str(page.cubes[0]), "start": "2018-01-01", "end": "2018-12-31"}  # fmt: skip
    status, job = _json(f"{page.url}api/jobs", body)
    assert status == 202, job
    done = _wait(page, job["id"])
    assert done["state"] == "done", done
    names = {lyr["name"] for lyr in done["layers"]}
    assert any("divergence" in n or "qdiv" in n for n in names), names


def _coords(geom):
    c = geom["coordinates"]
    return [c] if geom["type"] == "Point" else c


@pytest.mark.parametrize(
    ("path", "body", "status", "match"),
    [
        ("api/series?lon=abc&lat=69.4", None, 400, "lon must be 1 number"),
        ("api/series?lon=10&lat=45", None, 400, r"cube covers|outside"),
        ("api/area?bbox=1,2,3", None, 400, "bbox must be 4 number"),
        ("api/jobs", {"kind": "nope"}, 400, "job kind must be"),
        ("api/jobs", {"kind": "track", "points": [], "start": "2018", "end": "2019"}, 400,
         "needs points"),
        ("api/jobs", {"kind": "track", "points": [[1, 2]], "start": "2019-13-01", "end": "2019"},
         400, "not a valid date"),
        ("api/jobs", {"kind": "strain", "cube": "/elsewhere.zarr"}, 404, "not one of the map"),
        ("api/jobs/unknown", None, 404, "no such job"),
        ("tiles/nope/1/2/3.png", None, 404, "no such raster layer"),
    ],
)  # fmt: skip
def test_bad_requests_get_one_line_and_a_4xx(page, path, body, status, match):
    got, payload = _json(f"{page.url}{path}", body)
    assert got == status, payload
    assert re.search(match, payload["error"]) and "\n" not in payload["error"]


@pytest.mark.parametrize(
    "path",
    [
        "static/../app.py",
        "static/%2e%2e/app.py",
        "static/..%2f..%2fweb/app.py",
        "static//etc/passwd",
        "static/vendor/../../../../../../etc/passwd",
        "etc/passwd",
    ],
)
def test_only_the_page_files_are_served(page, path):
    status, body, _ = _get(page.url + path)
    assert status == 404 and b"root:" not in body


def test_symlinks_out_of_the_page_folder_are_not_followed(tmp_path, monkeypatch):
    import itscube.web.app as web_app

    static = tmp_path / "static"
    static.mkdir()
    (static / "index.html").write_text("<html></html>")
    (tmp_path / "secret.txt").write_text("secret")
    os.symlink(tmp_path / "secret.txt", static / "link.txt")
    monkeypatch.setattr(web_app, "STATIC", static)
    with MapServer([]) as srv:
        assert _get(srv.url + "static/index.html")[0] == 200
        status, body, _ = _get(srv.url + "static/link.txt")
        assert status == 404 and b"secret" not in body


def test_another_host_needs_the_token(sample):
    with MapServer([str(sample.subyearly)], host="0.0.0.0") as srv:
        assert srv.token and f"?token={srv.token}" in srv.url
        base = srv.url.split("?")[0]
        for path in ("", "api/config", "static/app.js"):
            assert _get(base + path)[0] == 403
        assert _get(base + "api/config?token=wrong")[0] == 403
        status, _, headers = _get(srv.url)
        assert status == 200 and f"itscube_token={srv.token}" in headers["Set-Cookie"]
        cookie = {"Cookie": f"itscube_token={srv.token}"}
        assert _get(base + "api/config", headers=cookie)[0] == 200
    with MapServer([]) as local:
        assert local.token is None and _get(local.url + "api/config")[0] == 200


def test_an_image_folder_is_drawn_in_its_own_colours(tmp_path):
    """An ``itscube image`` rgb.tif is a background in its colours, not a colour-mapped band."""
    from rasterio.transform import from_origin

    from itscube.web.layers import render_tile, scan_folder

    folder = tmp_path / "image" / "sentinel-2-l2a_20180412"
    folder.mkdir(parents=True)
    rgb = np.zeros((3, 100, 100), "uint8")
    rgb[0, :, :50] = 200  # west half red, east half blue
    rgb[2, :, 50:] = 180
    x0, y0 = -156000.0, -2244000.0  # EPSG:3413 metres, 120 m pixels
    with rasterio.open(folder / "rgb.tif", "w", driver="GTiff", width=100, height=100, count=3,
                       dtype="uint8", crs="EPSG:3413",
                       transform=from_origin(x0, y0, 120, 120)) as dst:  # fmt: skip
        dst.write(rgb)
    (layer,) = scan_folder(tmp_path)
    assert layer.cmap == "rgb" and "legend" not in layer.to_json()
    to_ll = pyproj.Transformer.from_crs(3413, 4326, always_xy=True)
    for col, want in ((20, (200, 0, 0)), (80, (0, 0, 180))):
        lon, lat = to_ll.transform(x0 + 120 * col + 60, y0 - 120 * 50)
        tile = TMS.tile(lon, lat, 12)
        img = np.asarray(
            Image.open(io.BytesIO(render_tile(layer, 12, tile.x, tile.y))).convert("RGBA")
        )
        b = TMS.xy_bounds(tile)
        mx, my = pyproj.Transformer.from_crs(4326, 3857, always_xy=True).transform(lon, lat)
        px = int((mx - b.left) / (b.right - b.left) * 256)
        py = int((b.top - my) / (b.top - b.bottom) * 256)
        assert tuple(img[py, px, :3]) == want and img[py, px, 3] == 255
