"""Velocity time series on analytic fields, read over HTTP from the local server.

The test cubes hold ``FIELD`` (linear in x, y and time) averaged over each image pair's span,
stored as int16 m/yr: every expected value below is the field itself, exact to the 0.5 m/yr
of that rounding.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import shapely.geometry as sg
import xarray as xr

from itscube import open_cube
from itscube._datasets.itslive import decimal_year, tile_coords
from itscube.errors import CubeNotFoundError, EmptySelectionError, InputError
from itscube.geometry import point_targets, profile_targets
from itscube.series import polygon_target, time_series
from itscube.temporal import climatology, regularise
from itscube.window import Filters
from tests.helpers import CENTRE_A, CENTRE_B, FIELD, SHAPE, one_line_error, run_cli

X, Y = tile_coords(CENTRE_A, SHAPE)
ROUNDING = 0.5 + 1e-6  # int16 storage of m/yr


def expected(series, k: int, x: float, y: float) -> np.ndarray:
    """The field at (x, y) averaged over each pair's span: at mid-span (linear in time)."""
    t1 = decimal_year(series["acquisition_date_img1"].values[k])
    t2 = decimal_year(series["acquisition_date_img2"].values[k])
    tm = 0.5 * (t1 + t2)
    return FIELD(np.full(tm.shape, x), np.full(tm.shape, y), tm)


def test_nearest_pixel_values_are_the_field_at_the_pixel(cubes, server):
    px = [(X[5], Y[7]), (X[30], Y[2]), (X[12] + 40.0, Y[20] - 30.0)]  # the last off-centre
    t = point_targets(px, crs="EPSG:3413", ids=["a", "b", "c"])
    s = time_series(t, f"{server.url}/A.zarr", start="2016-01-01", end="2020-12-31")
    assert s.sizes["point"] == 3 and list(s["id"].values) == ["a", "b", "c"]
    centres = [(X[5], Y[7]), (X[30], Y[2]), (X[12], Y[20])]
    for k, (cx, cy) in enumerate(centres):
        vx, vy = expected(s, k, cx, cy)
        ok = np.isfinite(s["vx"].values[k])
        assert ok.sum() > 20
        np.testing.assert_allclose(s["vx"].values[k][ok], vx[ok], atol=ROUNDING)
        np.testing.assert_allclose(s["vy"].values[k][ok], vy[ok], atol=ROUNDING)
    assert (s["mid_date"].values >= np.datetime64("2016-01-01")).all()
    assert np.all(np.diff(s["mid_date"].values) > np.timedelta64(0))
    assert (s["n_pixels"].values[np.isfinite(s["vx"].values)] == 1).all()


def test_bilinear_interpolation_is_exact_on_a_linear_field(cubes, server):
    x, y = X[10] + 37.0, Y[10] - 81.0
    t = point_targets([(x, y)], crs="EPSG:3413")
    s = time_series(t, f"{server.url}/A.zarr", interp="bilinear")
    near = time_series(t, f"{server.url}/A.zarr")
    vx, _ = expected(s, 0, x, y)
    ok = np.isfinite(s["vx"].values[0])
    np.testing.assert_allclose(s["vx"].values[0][ok], vx[ok], atol=ROUNDING)
    # nearest reads the pixel centre instead: off by the gradient times the offset
    off = FIELD.a * 37.0 + FIELD.b * (-81.0 + 0.0)
    diff = near["vx"].values[0][ok] - s["vx"].values[0][ok]
    assert np.abs(np.median(diff) + off) < 0.6
    assert (s["n_pixels"].values[0][ok] == 4).all()


def test_profile_across_a_cube_seam_reads_each_part_from_its_cube(cubes, server, catalog_file):
    xb, _ = tile_coords(CENTRE_B, SHAPE)
    x0, x1 = X[20], xb[35]  # from inside A to beyond A's east edge, inside B
    t = profile_targets(x0, Y[20], x1, Y[20], spacing=240.0, crs="EPSG:3413")
    s = time_series(t, catalog=str(catalog_file), start="2017-01-01", end="2018-12-31")
    sources = {str(u).rsplit("/", 1)[-1] for u in s["source"].values}
    assert sources == {"A.zarr", "B.zarr"}
    np.testing.assert_allclose(np.diff(s["distance"].values), 240.0)
    assert s["distance"].values[-1] == pytest.approx(np.floor((x1 - x0) / 240.0) * 240.0)
    # the same layers in both cubes: the speed is continuous across the seam
    mean_v = np.nanmean(s["vx"].values, axis=1)
    assert np.all(np.abs(np.diff(mean_v)) < 240.0 * FIELD.a + 1.0)


def test_polygon_mean_of_a_linear_field(cubes, server):
    poly = sg.box(X[8] - 60, Y[25] - 60, X[18] + 60, Y[15] + 60)  # 11 x 11 pixel centres
    folder = cubes.root / "shapes"
    folder.mkdir(exist_ok=True)
    path = folder / "box.geojson"
    path.write_text(json.dumps(sg.mapping(poly)))
    s = time_series(polygon_target(path, crs="EPSG:3413"), f"{server.url}/A.zarr")
    full = s["valid_fraction"].values[0] == 1.0
    assert full.sum() > 10 and (s["n_pixels"].values[0][full] == 121).all()
    t1 = decimal_year(s["acquisition_date_img1"].values[0])
    t2 = decimal_year(s["acquisition_date_img2"].values[0])
    cx, cy = np.mean(X[8:19]), np.mean(Y[15:26])
    tm = 0.5 * (t1 + t2)
    want = FIELD(np.full(tm.shape, cx), np.full(tm.shape, cy), tm)[0]
    np.testing.assert_allclose(s["vx"].values[0][full], want[full], atol=ROUNDING)
    partial = (s["valid_fraction"].values[0] > 0) & ~full
    assert (s["n_pixels"].values[0][partial] < 121).all()


def test_pair_mean_regular_series_are_the_weighted_means_of_the_pairs_inside_each_bin(
    cubes, server
):
    t = point_targets([(X[5], Y[5])], crs="EPSG:3413")
    s = time_series(t, f"{server.url}/A.zarr", start="2017-01-01", end="2019-12-31")
    reg = regularise(s, "QS", estimator="pair-mean")
    assert reg.attrs["itscube_estimator"] == "pair-mean"
    one = s.isel(point=0)
    d1 = one["acquisition_date_img1"].values
    d2 = one["acquisition_date_img2"].values
    for k, start in enumerate(reg["time"].values):
        end = reg["time_bnds"].values[k, 1]
        inside = (np.minimum(d1, d2) >= start) & (np.maximum(d1, d2) < end)
        inside &= np.isfinite(one["vx"].values)
        if not inside.any():
            assert np.isnan(reg["vx"].values[0, k])
            continue
        w = 1.0 / np.maximum(one["vx_error"].values[inside], 0.1) ** 2
        want = np.sum(w * one["vx"].values[inside]) / np.sum(w)
        assert reg["vx"].values[0, k] == pytest.approx(want, rel=1e-5)
        assert reg["vx_error"].values[0, k] == pytest.approx(1 / np.sqrt(w.sum()), rel=1e-5)
        assert int(reg["n_layers"].values[0, k]) == inside.sum()
    clim = climatology(s)
    assert clim.sizes["month"] <= 12 and (clim["years"].values <= 3).all()


def test_layer_filters_are_honoured(cubes, server):
    t = point_targets([(X[5], Y[5])], crs="EPSG:3413")
    url = f"{server.url}/A.zarr"
    every = time_series(t, url)
    short = time_series(t, url, filters=Filters(max_dt_days=30))
    assert 0 < short.sizes["mid_date"] < every.sizes["mid_date"]
    assert (short["date_dt"].values <= 30).all()
    landsat = time_series(t, url, filters=Filters(sensors=("L",)))
    assert set(np.unique(landsat["mission_img1"].values)) == {"L"}
    valid = time_series(t, url, filters=Filters(min_valid_percent=90))
    assert (valid["roi_valid_percentage"].values >= 90).all()


def test_bad_inputs(cubes, server, tmp_path):
    url = f"{server.url}/A.zarr"
    with pytest.raises(CubeNotFoundError, match="outside every cube"):
        time_series(point_targets([(0.0, 0.0)], crs="EPSG:3413"), url)
    with pytest.raises(InputError, match="zero length"):
        profile_targets(X[3], Y[3], X[3], Y[3], crs="EPSG:3413")
    with pytest.raises(EmptySelectionError, match="no layer"):
        time_series(point_targets([(X[3], Y[3])], crs="EPSG:3413"), url, start="1990", end="1991")
    # a polygon over pixels that never have data: a chunk column that was never written
    holey = tmp_path / "holey.zarr"
    shutil.copytree(cubes.a_path, holey)
    for name in ("vx", "vy"):
        (holey / name / "0.0.0").unlink()
    poly = tmp_path / "corner.geojson"
    poly.write_text(json.dumps(sg.mapping(sg.box(X[1] - 60, Y[8] - 60, X[8] + 60, Y[1] + 60))))
    with pytest.raises(EmptySelectionError, match="no valid pixel"):
        time_series(polygon_target(poly, crs="EPSG:3413"), str(holey))
    with pytest.raises(InputError, match="interp"):
        time_series(point_targets([(X[3], Y[3])], crs="EPSG:3413"), url, interp="cubic")


def test_only_the_chunk_columns_of_the_pixels_are_read(cubes, server):
    """Three points in two chunk columns: two chunks per pixel variable, nothing else."""
    t = point_targets([(X[1], Y[1]), (X[2], Y[3]), (X[25], Y[25])], crs="EPSG:3413")
    time_series(t, f"{server.url}/A.zarr")
    gets = {
        p: n
        for p, n in server.stats.paths.items()
        if p.startswith("A.zarr/v") and p.rsplit("/", 1)[-1].count(".") == 2  # 3-D chunks
    }
    per_var = pd.Series([p.split("/")[1] for p in gets]).value_counts()
    assert set(per_var.index) == {"vx", "vy"} and (per_var == 2).all()  # v follows from them
    for path, sent in gets.items():  # each chunk read once, whole
        assert sent == (cubes.root / path).stat().st_size, path


@pytest.mark.slow
def test_series_cli_writes_every_output(cubes, server, tmp_path):
    r = run_cli(
        "series", f"{server.url}/A.zarr", "--point", X[5], Y[5], "--point", X[9], Y[9],
        "--crs", "EPSG:3413", "--start", "2017-01-01", "--end", "2018-12-31",
        "--regularise", "QS", "--climatology", "--out", tmp_path, "--no-progress",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    (folder,) = (tmp_path / "series").iterdir()
    assert folder.name == "points_20170101_20181231"
    table = pd.read_csv(folder / "series.csv")
    assert {"id", "lon", "lat", "mid_date", "date_dt", "satellite", "vx", "v", "v_error"} <= set(
        table.columns
    )
    assert set(table["id"]) == {0, 1}
    assert len(pd.read_parquet(folder / "series.parquet")) == len(table)
    for name in ("series.nc", "regular.nc", "climatology.nc", "summary.json"):
        assert (folder / name).is_file(), name
    assert len(list((folder / "figures").glob("series_*.png"))) == 2
    one_line_error(
        run_cli("series", f"{server.url}/A.zarr", "--point", "0", "0", "--crs", "EPSG:3413",
                "--out", tmp_path / "x"),
        code=2,
        match="outside every cube",
    )  # fmt: skip
    one_line_error(
        run_cli("series", f"{server.url}/A.zarr", "--out", tmp_path / "y"), match="give exactly one"
    )


def test_radius_averages_the_disc_of_pixels_around_the_point(cubes, server):
    t = point_targets([(X[20], Y[20])], crs="EPSG:3413")
    s = time_series(t, f"{server.url}/A.zarr", radius=250.0)
    full = s["valid_fraction"].values[0] == 1.0
    assert full.sum() > 10
    assert (s["n_pixels"].values[0][full] == 13).all()  # centres within 250 m: 13
    vx, _ = expected(s, 0, X[20], Y[20])  # a symmetric disc: the field at its centre
    np.testing.assert_allclose(s["vx"].values[0][full], vx[full], atol=ROUNDING)
    assert s.attrs["itscube_interp"] == "disc"


def test_annual_composites_and_both_kinds(cubes, server, catalog_file, tmp_path):
    t = point_targets([(X[10], Y[10])], crs="EPSG:3413")
    a = time_series(t, f"{server.url}/A_annual.zarr", kind="annual")
    assert a.sizes["time"] >= 5 and "time" in a.dims
    years = a["time"].dt.year.values + 0.5
    want = FIELD(np.full(years.shape, X[10]), np.full(years.shape, Y[10]), years)[0]
    ok = np.isfinite(a["vx"].values[0])
    np.testing.assert_allclose(a["vx"].values[0][ok], want[ok], atol=1.0)
    assert np.isfinite(a["vx_error"].values[0][ok]).all()  # per-pixel errors, sampled
    r = run_cli(
        "series", "--point", X[10], Y[10], "--crs", "EPSG:3413", "--kind", "both",
        "--catalog", catalog_file, "--out", tmp_path, "--no-progress",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    (folder,) = (tmp_path / "series").iterdir()
    import xarray as xr

    nc = xr.open_dataset(folder / "series.nc")
    assert "v_annual" in nc and "v" in nc and "mid_date" in nc.dims and "time" in nc.dims
    assert json.loads((folder / "summary.json").read_text())["kind"] == "both"


def test_series_records_the_sampled_pixel_in_the_cube_crs_and_the_lonlat_given():
    """x, y are metres in the cube's CRS (the pixel centre for nearest), never typed lon/lat."""
    import pyproj

    from itscube.sample import ensure_sample

    sample = ensure_sample()
    s = time_series([(-48.8, 69.4)], sample.subyearly)
    px, py = pyproj.Transformer.from_crs(4326, 3413, always_xy=True).transform(-48.8, 69.4)
    cube = open_cube(sample.subyearly)
    want_x = float(cube.x.values[np.argmin(np.abs(cube.x.values - px))])
    want_y = float(cube.y.values[np.argmin(np.abs(cube.y.values - py))])
    assert float(s.x[0]) == want_x and float(s.y[0]) == want_y
    assert float(s.lon[0]) == -48.8 and float(s.lat[0]) == 69.4
    assert int(s.epsg[0]) == 3413 and s.x.attrs["units"] == "m"


def test_a_cube_supplies_only_its_own_kind(tmp_path):
    """An annual cube gives annual series (not labelled image pairs); asking a cube for the
    kind it does not hold is a one-line error, never its own values relabelled."""
    from itscube.sample import ensure_sample
    from tests.helpers import one_line_error, run_cli

    sample = ensure_sample()
    annual = time_series([(-48.8, 69.4)], sample.annual)
    assert annual.attrs["itscube_kind"] == "annual" and "time" in annual.dims
    with pytest.raises(InputError, match=r"holds image pairs .mid_date., not annual composites"):
        time_series([(-48.8, 69.4)], sample.subyearly, kind="annual")
    args = ["series", sample.subyearly, "--point", -48.8, 69.4, "--kind", "both", "--out"]
    one_line_error(
        run_cli(*args, tmp_path), match="holds image pairs (mid_date), not annual composites"
    )


def test_series_of_the_sample_say_synthetic(tmp_path):
    from itscube.sample import ensure_sample
    from tests.helpers import run_cli

    r = run_cli("series", ensure_sample().subyearly, "--point", -48.8, 69.4, "--no-figures",
                "--out", tmp_path)  # fmt: skip
    assert r.exit_code == 0, r.output
    (folder,) = (tmp_path / "series").iterdir()
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["source_data"].startswith("synthetic")
    import xarray as xr

    with xr.open_dataset(folder / "series.nc") as nc:
        assert nc.attrs["itscube_source"].startswith("synthetic")


def test_series_variables_carry_the_archive_standard_names(cubes, server):
    t = point_targets([(X[20], Y[20])], crs="EPSG:3413")
    s = time_series(t, f"{server.url}/A.zarr", start="2019-01-01", end="2019-06-30")
    src = xr.open_zarr(cubes.a_path)
    for name in ("vx", "vy", "v"):  # as the archive's cube names them
        assert s[name].attrs["standard_name"] == src[name].attrs["standard_name"]
    for name in ("vx", "vy", "v", "vx_error", "vy_error", "v_error"):
        assert s[name].attrs["units"] == "m yr-1" and s[name].attrs["long_name"]


def test_profile_figures_draw_the_yearly_speed_of_the_field(cubes, server, tmp_path, monkeypatch):
    """A profile's figures: the speed along the profile per year is the field's mean over
    that year (linear in time: its value at mid-year), from one yearly fit for both."""
    from itscube.products.series import run_series
    from tests.helpers import record_figures

    drawn = record_figures(monkeypatch)
    t = profile_targets(X[10], Y[20], X[30], Y[20], spacing=240.0, crs="EPSG:3413")
    res = run_series(
        t, f"{server.url}/A.zarr", start="2017-01-01", end="2018-12-31", out=tmp_path,
        progress=False,
    )  # fmt: skip
    names = {p.name for p in map(__import__("pathlib").Path, res.files)}
    assert {"hovmoller.png", "profile_by_year.png"} <= names
    ((years,),) = [d for k, d in drawn.items() if k.endswith("profile_by_year.png")]
    assert len(years["lines"]) == 2  # 2017 and 2018
    x = t.x[: len(years["lines"][0][0])]
    for (km, speed), year in zip(years["lines"], (2017.5, 2018.5), strict=True):
        np.testing.assert_allclose(km * 1e3, t.distance[: len(km)])
        vx, vy = FIELD(x, np.full_like(x, Y[20]), year)
        ok = np.isfinite(speed)
        assert ok.sum() >= 0.8 * len(speed)
        np.testing.assert_allclose(speed[ok], np.hypot(vx, vy)[ok], atol=1.0)  # measured 0.3
