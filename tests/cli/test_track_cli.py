"""`itscube track`: files that open with CRS, figures, errors."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rioxarray
import xarray as xr

from tests.helpers import CENTRE_A, FIELD, one_line_error, record_figures, run_cli

X0, Y0 = CENTRE_A


@pytest.mark.slow
def test_track_line_and_grid(cubes, tmp_path, monkeypatch):
    drawn = record_figures(monkeypatch)
    r = run_cli(
        "track",
        cubes.a_path,
        "--crs",
        "EPSG:3413",
        "--line",
        X0 - 1500,
        Y0 - 1000,
        X0 - 1500,
        Y0 + 1000,
        5,
        "--start",
        "2018-01-01",
        "--end",
        "2019-12-31",
        "--out",
        tmp_path,
    )
    assert r.exit_code == 0, r.output
    folder = tmp_path / "track" / "20180101_20191231"
    lines = gpd.read_file(folder / "tracks.gpkg", layer="tracks")
    assert len(lines) == 5 and lines.crs.to_epsg() == 3413
    pts = gpd.read_file(folder / "tracks.gpkg", layer="points")
    assert len(pts) > 5 * 100
    table = pd.read_csv(folder / "tracks.csv")
    assert {"x", "y", "lon", "lat", "vx", "vy", "status", "time"} <= set(table.columns)
    ds = xr.open_dataset(folder / "tracks.nc")
    # first point: vx = u0 + accel (t - t0) + a dx + b dy; mid-window t = 2019.0
    vx_mid = FIELD.u0 + FIELD.accel * (2019.0 - FIELD.t0) + FIELD.a * -1500 + FIELD.b * -1000
    assert float(ds.displacement_x[0]) == pytest.approx(2 * vx_mid, rel=0.05)
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["status"]["ok"] == 5
    # the figure drew these tracks: each one's segments, its start and end markers (km)
    (panel, *_) = drawn.find("tracks.png")
    assert len(panel["segments"]) == 5
    for p, segs in enumerate(panel["segments"]):
        xs, ys = ds.x.values[p], ds.y.values[p]
        ok = np.isfinite(xs)
        np.testing.assert_allclose(segs[:, 0, 0], xs[ok][:-1] / 1e3)
        np.testing.assert_allclose(segs[:, 1, 1], ys[ok][1:] / 1e3)
    markers = [(float(x[0]), float(y[0])) for x, y in panel["lines"]]
    starts = list(zip(ds.x.values[:, 0] / 1e3, ds.y.values[:, 0] / 1e3, strict=True))
    assert all(any(np.allclose(m, s) for m in markers) for s in starts)

    r = run_cli(
        "track",
        cubes.a_path,
        "--grid",
        5,
        "--start",
        "2018-01-01",
        "--end",
        "2018-12-31",
        "--out",
        tmp_path / "g",
        "--no-figures",
    )
    assert r.exit_code == 0, r.output
    tif = rioxarray.open_rasterio(
        tmp_path / "g" / "track" / "20180101_20181231" / "displacement.tif"
    )
    assert tif.rio.crs.to_epsg() == 3413 and tif.shape[1:] == (8, 8)


def test_track_seeds_csv_lonlat(cubes, tmp_path):
    import pyproj

    lon, lat = pyproj.Transformer.from_crs(3413, 4326, always_xy=True).transform(X0, Y0)
    seeds = tmp_path / "stakes.csv"
    seeds.write_text(f"id,Longitude,Latitude\nS1,{lon},{lat}\n")
    r = run_cli(
        "track",
        cubes.a_path,
        "--seeds",
        seeds,
        "--start",
        "2018-01-01",
        "--end",
        "2018-06-30",
        "--out",
        tmp_path,
        "--no-figures",
    )
    assert r.exit_code == 0, r.output
    ds = xr.open_dataset(tmp_path / "track" / "20180101_20180630" / "tracks.nc")
    assert float(ds.x[0, 0]) == pytest.approx(X0, abs=0.01)


@pytest.mark.slow
def test_point_in_lonlat_and_the_deprecated_metres_form(cubes, tmp_path):
    """--point is LON LAT as in every other command; the old X Y in the cube's CRS still
    works for one release, with a warning, and gives the same track as --crs."""
    import pyproj

    lon, lat = pyproj.Transformer.from_crs(3413, 4326, always_xy=True).transform(X0, Y0)
    when = ["--start", "2018-01-01", "--end", "2018-06-30", "--no-figures"]
    forms = {
        "lonlat": ["--point", lon, lat],
        "crs": ["--point", X0, Y0, "--crs", "EPSG:3413"],
        "old": ["--point", X0, Y0],
    }
    ends = {}
    for name, args in forms.items():
        r = run_cli("track", cubes.a_path, *args, *when, "--out", tmp_path / name)
        assert r.exit_code == 0, r.output
        assert ("deprecated" in r.output) == (name == "old"), r.output
        ds = xr.open_dataset(tmp_path / name / "track" / "20180101_20180630" / "tracks.nc")
        ends[name] = (float(ds.x[0, -1]), float(ds.y[0, -1]))
    assert ends["lonlat"] == pytest.approx(ends["crs"], abs=1e-3)
    assert ends["old"] == pytest.approx(ends["crs"], abs=1e-9)


def test_track_seeds_geojson(cubes, tmp_path):
    """The help offers GeoJSON seeds: they are read (with their CRS and ids) and tracked."""
    import shapely.geometry as sg

    seeds = tmp_path / "stakes.geojson"
    gdf = gpd.GeoDataFrame({"id": ["S1", "S2"]}, geometry=[sg.Point(X0, Y0), sg.Point(X0, Y0)])
    gdf.set_crs(3413).to_crs(4326).to_file(seeds, driver="GeoJSON")
    r = run_cli("track", cubes.a_path, "--seeds", seeds, "--start", "2018-01-01", "--end",
                "2018-06-30", "--out", tmp_path, "--no-figures")  # fmt: skip
    assert r.exit_code == 0, r.output
    table = pd.read_csv(tmp_path / "track" / "20180101_20180630" / "tracks.csv")
    first = table.groupby("id").first()
    assert sorted(first.index) == ["S1", "S2"]
    assert first.x.to_numpy() == pytest.approx([X0, X0], abs=0.01)


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (
            [
                "--point",
                X0,
                Y0,
                "--crs",
                "EPSG:3413",
                "--start",
                "2019-01-01",
                "--end",
                "2018-01-01",
            ],
            "after --end",
        ),
        (
            [
                "--point",
                X0,
                Y0,
                "--crs",
                "EPSG:3413",
                "--start",
                "1990-01-01",
                "--end",
                "1991-01-01",
            ],
            "runs past the dates",
        ),
        (["--point", 0, 0, "--start", "2018-01-01", "--end", "2019-01-01"], "inside the cube"),
        (["--start", "2018-01-01", "--end", "2019-01-01"], "exactly one of"),
        (["--point", X0, Y0, "--crs", "EPSG:3413", "--start", "2018-01-01"], "--start and --end"),
        (
            [
                "--line",
                X0,
                Y0,
                X0,
                Y0,
                1.5,
                "--crs",
                "EPSG:3413",
                "--start",
                "2018-01-01",
                "--end",
                "2019-01-01",
            ],
            "N >= 2",
        ),
    ],
)
def test_track_bad_inputs(cubes, tmp_path, args, match):
    one_line_error(run_cli("track", cubes.a_path, *args, "--out", tmp_path), match=match)


def test_malformed_seed_csv(cubes, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("x,y\n1,abc\n")
    one_line_error(
        run_cli(
            "track",
            cubes.a_path,
            "--seeds",
            bad,
            "--start",
            "2018-01-01",
            "--end",
            "2019-01-01",
            "--out",
            tmp_path,
        ),
        match="not numbers",
    )


@pytest.mark.slow
def test_track_layer_filters_change_the_result_or_fail_cleanly(cubes, tmp_path):
    base = [
        "track",
        cubes.a_path,
        "--crs",
        "EPSG:3413",
        "--point",
        X0 - 1500,
        Y0,
        "--start",
        "2018-01-01",
        "--end",
        "2019-12-31",
    ]
    r = run_cli(*base, "--out", tmp_path / "all")
    assert r.exit_code == 0, r.output
    r = run_cli(*base, "--max-dt-days", 30, "--out", tmp_path / "short")
    assert r.exit_code == 0, r.output
    a = xr.open_dataset(tmp_path / "all" / "track" / "20180101_20191231" / "tracks.nc")
    b = xr.open_dataset(tmp_path / "short" / "track" / "20180101_20191231" / "tracks.nc")
    assert float(a.displacement[0]) != float(b.displacement[0]), "the filter is applied"
    one_line_error(
        run_cli(*base, "--sensor", "ZZ9", "--out", tmp_path / "z"), match="not a platform"
    )
    one_line_error(
        run_cli(*base, "--max-error", 0.0001, "--out", tmp_path / "e"), match="no layers"
    )


@pytest.mark.slow
def test_track_past_the_cube_dates(cubes, tmp_path):
    args = [
        "track",
        cubes.a_path,
        "--crs",
        "EPSG:3413",
        "--point",
        X0,
        Y0,
        "--start",
        "2021-06-01",
        "--end",
        "2023-12-31",
        "--out",
        tmp_path,
    ]
    one_line_error(run_cli(*args), match="--extrapolate")
    r = run_cli(*args, "--extrapolate")
    assert r.exit_code == 0, r.output
    summary = json.loads((tmp_path / "track" / "20210601_20231231" / "summary.json").read_text())
    assert summary["status"]["extrapolated"] == 1 and summary["status"]["ok"] == 0


def test_track_tables_have_clean_columns(cubes, tmp_path):
    r = run_cli(
        "track",
        cubes.a_path,
        "--crs",
        "EPSG:3413",
        "--line",
        X0 - 1500,
        Y0 - 500,
        X0 - 1500,
        Y0 + 500,
        3,
        "--start",
        "2018-01-01",
        "--end",
        "2018-12-31",
        "--out",
        tmp_path,
    )
    assert r.exit_code == 0, r.output
    folder = tmp_path / "track" / "20180101_20181231"
    table = pd.read_csv(folder / "tracks.csv")
    assert "mapping" not in table.columns and "point" not in table.columns
    assert table.columns[0] == "id" and table["id"].nunique() == 3
    pts = gpd.read_file(folder / "tracks.gpkg", layer="points")
    assert "mapping" not in pts.columns and "point" not in pts.columns


def test_area_repr_is_short():
    from itscube import bbox_area

    text = repr(bbox_area(-49.9, 69.1, -49.5, 69.25))
    assert text.startswith("Area('bbox_") and "EPSG:4326" in text and len(text) < 160


@pytest.mark.slow
def test_period_vocabulary_is_shared(cubes, tmp_path):
    """--period month works for strain as for tracking, and track takes --period too."""
    r = run_cli(
        "strain",
        cubes.a_path,
        "--start",
        "2019-01-01",
        "--end",
        "2019-03-31",
        "--period",
        "month",
        "--no-figures",
        "--no-progress",
        "--out",
        tmp_path,
    )
    assert r.exit_code == 0, r.output
    nc = xr.open_dataset(tmp_path / "strain" / "1_20190101_20190331" / "strain_period.nc")
    months = {"20190101-20190131", "20190201-20190228", "20190301-20190331"}
    assert nc.sizes["time"] >= 1 and set(map(str, nc.period.values)) <= months
    r = run_cli(
        "track",
        cubes.a_path,
        "--crs",
        "EPSG:3413",
        "--point",
        X0,
        Y0,
        "--start",
        "2019-01-01",
        "--end",
        "2019-12-31",
        "--period",
        "month",
        "--out",
        tmp_path,
    )
    assert r.exit_code == 0, r.output
    assert (
        json.loads((tmp_path / "track" / "20190101_20191231" / "summary.json").read_text())[
            "period"
        ]
        == "month"
    )
