"""Image backgrounds: a real local STAC API and COGs served over HTTP with byte ranges."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rioxarray
import xarray as xr

from itscube._datasets.fields import OutletGlacier
from itscube._datasets.scenes import write_scene
from itscube.errors import DownloadError, EmptySelectionError, InputError
from itscube.geometry import bbox_area
from itscube.grid import grid_template
from itscube.io.imagery import pick_scene, read_rgb, search_scenes
from itscube.testing import StacServer, StoreServer
from tests.helpers import CENTRE_A, one_line_error, record_figures, run_cli

CX, CY = CENTRE_A
GLACIER = OutletGlacier(x_head=CX - 20000, y_c=CY, half_width=3000)
AREA = bbox_area(CX - 600, CY - 600, CX + 600, CY + 600, crs="EPSG:3413")


@pytest.fixture(scope="module")
def imagery(tmp_path_factory):
    """Two scenes 15 km across: a cloudy one close to 2018-03-15, a clear one later; and an
    item without RGB assets."""
    root = tmp_path_factory.mktemp("scenes")
    bounds = (CX - 7500, CY - 7500, CX + 7500, CY + 7500)
    with StoreServer(root) as files:
        items = [
            write_scene(root, "CLOUDY", "2018-03-18T14:00:00", GLACIER, bounds, cloud=0.6,
                        href_root=files.url, seed=1),
            write_scene(root, "CLEAR", "2018-04-12T14:00:00", GLACIER, bounds, cloud=0.0,
                        href_root=files.url, seed=2),
        ]  # fmt: skip
        grey = json.loads(json.dumps(items[1]))
        grey["id"], grey["collection"] = "NORGB", "scl-only"
        grey["assets"].pop("visual")
        with StacServer([*items, grey]) as api:
            yield files, api, root


def test_the_clear_scene_is_picked_over_a_cloudier_closer_one(imagery):
    _, api, _ = imagery
    scenes = search_scenes(AREA, "2018-03-15", window_days=60, stac=api.url)
    assert {s.id for s in scenes} == {"CLOUDY", "CLEAR"}
    assert api.searches[-1]["collections"] == ["sentinel-2-l2a"]
    scene = pick_scene(scenes, "2018-03-15", AREA, max_cloud=20)
    assert scene.id == "CLEAR" and scene.area_cloud == 0.0
    cloudy = next(s for s in scenes if s.id == "CLOUDY")
    assert cloudy.area_cloud > 0.9  # the cloud sits over the scene centre, where the area is
    assert "Copernicus Sentinel data 2018" in scene.licence


def test_only_the_window_is_read_and_it_lands_on_the_cube_grid(imagery, cubes):
    from itscube import open_cube

    files, api, root = imagery
    scene = pick_scene(search_scenes(AREA, "2018-04-10", stac=api.url), "2018-04-10", AREA, 20)
    ds = open_cube(cubes.a_path)
    template = grid_template(ds.isel(x=slice(14, 26), y=slice(14, 26)))  # 1.4 km around A
    files.stats.reset()
    rgb = read_rgb(scene, AREA, ds.rio.crs, like=template)
    whole = (root / "CLEAR_visual.tif").stat().st_size
    assert files.stats.bytes_sent < 0.35 * whole  # byte ranges of the window, not the file
    assert rgb.rio.crs.to_epsg() == 3413 and rgb.dtype == np.uint8
    np.testing.assert_array_equal(rgb.x.values, template.x.values)
    np.testing.assert_array_equal(rgb.y.values, template.y.values)
    # bright ice on the centre line (the glacier is 6 km wide)
    assert float(rgb.sel(x=CX, y=CY, method="nearest").mean()) > 180


def test_no_scene_in_the_window_lists_the_nearest_dates(imagery):
    _, api, _ = imagery
    scenes = search_scenes(AREA, "2018-03-15", window_days=10, stac=api.url)
    with pytest.raises(
        EmptySelectionError, match=r"nearest: 2018-03-18 \(\d+% cloud over the area\)"
    ):
        pick_scene(scenes, "2018-03-15", AREA, max_cloud=20)
    with pytest.raises(EmptySelectionError, match="no scene at all"):
        pick_scene([], "2018-03-15", AREA, max_cloud=20)


def test_unreachable_api_and_collections_without_rgb(imagery):
    _, api, _ = imagery
    with pytest.raises(DownloadError, match="cannot be searched"):
        search_scenes(AREA, "2018-03-15", stac="http://127.0.0.1:9")
    (grey,) = search_scenes(AREA, "2018-04-12", collection="scl-only", stac=api.url)
    with pytest.raises(InputError, match="no RGB assets"):
        read_rgb(grey, AREA, "EPSG:3413")


def _north_up(rgb: xr.DataArray) -> np.ndarray:
    """An RGB raster as a figure shows it: (rows from north, cols, band)."""
    img = np.moveaxis(rgb.transpose("band", "y", "x").values, 0, -1)
    return img[::-1] if rgb.y.values[0] < rgb.y.values[-1] else img


def test_image_cli_writes_the_rgb_product(imagery, tmp_path, monkeypatch):
    _, api, _ = imagery
    drawn = record_figures(monkeypatch)
    r = run_cli(
        "image", "--bbox", CX - 600, CY - 600, CX + 600, CY + 600, "--crs", "EPSG:3413",
        "--date", "2018-03-15", "--window-days", "60", "--imagery-stac", api.url, "--out", tmp_path,
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    folder = tmp_path / "image" / "sentinel-2-l2a_20180412"
    tif = rioxarray.open_rasterio(folder / "rgb.tif")
    assert tif.sizes["band"] == 3 and tif.rio.crs.to_epsg() == 3413
    assert tif.attrs.get("long_name") == ("red", "green", "blue")
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["scene"] == "CLEAR" and summary["assets"]["visual"].endswith("CLEAR_visual.tif")
    (shown,) = drawn.rgb_images("rgb.png")  # the figure shows the GeoTIFF's pixels
    np.testing.assert_array_equal(shown, _north_up(tif))
    assert shown.std() > 0, "an image, not a blank"
    one_line_error(
        run_cli("image", "--point", "0", "0", "--crs", "EPSG:3413", "--out", tmp_path),
        match="--date",
    )
    # the old name still works for one release, and says so
    r = run_cli("image", "--point", CX, CY, "--crs", "EPSG:3413", "--date", "2018-03-15",
                "--stac", "http://127.0.0.1:9", "--out", tmp_path / "old")  # fmt: skip
    assert r.exit_code != 0 and "use --imagery-stac" in r.output, r.output
    assert "127.0.0.1:9" in r.output, "the deprecated option's URL is the one used"


@pytest.mark.slow
def test_track_background_changes_the_figure(imagery, cubes, tmp_path, monkeypatch):
    _, api, _ = imagery
    drawn = record_figures(monkeypatch)
    figs = {}
    for name, extra in (
        ("plain", []),
        ("auto", ["--background", "auto", "--background-stac", api.url]),
    ):
        r = run_cli(
            "track", cubes.a_path, "--point", CX, CY, "--crs", "EPSG:3413", "--start",
            "2018-01-01", "--end", "2018-12-31", "--out", tmp_path / name, *extra,
        )  # fmt: skip
        assert r.exit_code == 0, r.output
        figs[name] = drawn.find("tracks.png")
        drawn.clear()
    plain, auto = figs["plain"][0], figs["auto"][0]
    assert not [im for im in plain["images"] if im.ndim == 3], "no image without --background"
    (image,) = [im for im in auto["images"] if im.ndim == 3]
    assert image.dtype == np.uint8 and image.std() > 0
    # the image goes under the same tracks
    for a, b in zip(plain["segments"], auto["segments"], strict=True):
        np.testing.assert_array_equal(a, b)
    one_line_error(
        run_cli("track", cubes.a_path, "--point", CX, CY, "--crs", "EPSG:3413", "--start",
                "2018-01-01", "--end", "2018-12-31", "--out", tmp_path / "bad", "--background",
                tmp_path / "no.tif"),
        match="--background",
    )  # fmt: skip


def test_background_file_must_be_rgb(cubes, tmp_path):
    from itscube import open_cube
    from itscube.products._common import load_background

    ds = open_cube(cubes.a_path)
    coords = {"band": [1], "y": ds.y.values[:4], "x": ds.x.values[:4]}
    grey = xr.DataArray(np.zeros((1, 4, 4), "u1"), dims=("band", "y", "x"), coords=coords)
    grey.rio.write_crs(3413).rio.to_raster(tmp_path / "grey.tif")
    with pytest.raises(InputError, match="1 band"):
        load_background(tmp_path / "grey.tif", ds, "2018-01-01")


@pytest.mark.slow
def test_strain_and_qdiv_figures_take_a_background_file(cubes, tmp_path, monkeypatch):
    """An RGB GeoTIFF under the maps: the figures show its pixels and the summaries say so."""
    from itscube import open_cube

    ds = open_cube(cubes.a_path)
    band = np.linspace(20, 240, ds.sizes["x"] * ds.sizes["y"]).reshape(ds.sizes["y"], -1)
    rgb = xr.DataArray(
        np.stack([band, band[::-1], band]).astype("u1"),
        dims=("band", "y", "x"),
        coords={"band": [1, 2, 3], "y": ds.y.values, "x": ds.x.values},
    ).rio.write_crs(3413)
    rgb.rio.to_raster(tmp_path / "rgb.tif")
    drawn = record_figures(monkeypatch)
    for name, extra in (("plain", []), ("image", ["--background", tmp_path / "rgb.tif"])):
        r = run_cli(
            "strain", cubes.a_path, "--upscale", "2", "--start", "2018-01-01", "--end",
            "2018-12-31", "--out", tmp_path / name, "--no-progress", *extra,
        )  # fmt: skip
        assert r.exit_code == 0, r.output
        folder = tmp_path / name / "strain" / "2_20180101_20181231"
        effective = next((folder / "figures").glob("effective_*.png")).name
        label = json.loads((folder / "summary.json").read_text())["background"]
        assert (label is None) == (name == "plain")
        shown = drawn.rgb_images(effective)
        if name == "plain":
            assert not shown
        else:  # the file's pixels, on the cube's grid, under the map
            np.testing.assert_array_equal(shown[0], _north_up(rgb))
        drawn.clear()


def test_requester_pays_landsat_needs_credentials(monkeypatch):
    from itscube.io.imagery import _gdal_env

    for key in ("AWS_ACCESS_KEY_ID", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    with pytest.raises(InputError, match="requester-pays"):
        _gdal_env("s3://usgs-landsat/collection02/level-2/x_SR_B4.TIF")
    monkeypatch.setenv("AWS_PROFILE", "mine")
    with _gdal_env("s3://usgs-landsat/collection02/level-2/x_SR_B4.TIF") as env:
        assert env.options["AWS_REQUEST_PAYER"] == "requester"


def test_a_buffered_point_searches_at_the_point_not_a_buffer_in_degrees(imagery):
    from itscube.geometry import point_area

    _, api, _ = imagery
    lon, lat = AREA.lonlat().centroid.coords[0]
    search_scenes(point_area(lon, lat, buffer=3000), "2018-04-12", stac=api.url)
    geom = api.searches[-1]["intersects"]
    assert geom["type"] == "Point" and abs(geom["coordinates"][0] - lon) < 1e-9


def test_a_zero_day_window_is_the_whole_day_and_cloud_is_a_percentage(imagery):
    _, api, _ = imagery
    same_day = search_scenes(AREA, "2018-04-12", window_days=0, stac=api.url)
    assert {s.id for s in same_day} == {"CLEAR"}  # taken at 14:00 that day
    assert search_scenes(AREA, "2018-04-13", window_days=0, stac=api.url) == []
    with pytest.raises(InputError, match="percentage from 0 to 100"):
        pick_scene(same_day, "2018-04-12", AREA, max_cloud=200)
    with pytest.raises(InputError, match="window_days"):
        search_scenes(AREA, "2018-04-12", window_days=-1, stac=api.url)
