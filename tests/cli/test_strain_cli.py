"""`itscube strain`: output folders, files that open with CRS, figures, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rioxarray
import xarray as xr

from tests.helpers import FIELD, one_line_error, run_cli


@pytest.fixture(scope="module")
def strain_out(cubes, tmp_path_factory):
    out = tmp_path_factory.mktemp("strain")
    r = run_cli(
        "strain",
        cubes.a_path,
        "--upscale",
        "1",
        "2",
        "--start",
        "2017-01-01",
        "--end",
        "2018-12-31",
        "--period",
        "year",
        "--per-step",
        "--out",
        out,
        "--no-progress",
    )
    assert r.exit_code == 0, r.output
    return out


@pytest.mark.slow
def test_folders_files_and_values(strain_out):
    folders = sorted(p.name for p in (strain_out / "strain").iterdir())
    assert folders == ["1_20170101_20181231", "2_20170101_20181231"]
    folder = strain_out / "strain" / "2_20170101_20181231"
    assert not list((strain_out / "strain").glob(".*partial*"))

    period = xr.open_dataset(folder / "strain_period.nc")
    assert period.attrs["Conventions"] == "CF-1.8"
    assert list(period.period.values) == ["20170101-20171231", "20180101-20181231"]
    assert period["exx"].attrs["units"] == "yr-1"
    assert period.rio.crs.to_epsg() == 3413
    # the test field is linear: exx = a, eyy = d everywhere (int16 rounding averages out)
    assert float(period["exx"].mean()) == pytest.approx(FIELD.a, abs=1e-4)
    assert float(period["eyy"].mean()) == pytest.approx(FIELD.d, abs=1e-4)
    assert float(period["rotation"].mean()) == pytest.approx(0.5 * (FIELD.c - FIELD.b), abs=1e-4)

    tif = rioxarray.open_rasterio(folder / "geotiff" / "exx.tif")
    assert tif.rio.crs.to_epsg() == 3413
    assert tif.sizes["band"] == 2
    assert tif.attrs["long_name"] == ("20170101-20171231", "20180101-20181231")
    np.testing.assert_allclose(tif.values[0], period["exx"].values[0], equal_nan=True)
    assert np.isnan(tif.values[0, 0, 0])  # edge pixels within k stay NaN
    with open(folder / "geotiff" / "exx.tif", "rb") as f:
        assert b"LAYOUT=IFDS_BEFORE_DATA" in f.read(4096)  # the COG ghost header

    steps = xr.open_dataset(folder / "strain_steps.nc")
    assert steps.sizes["mid_date"] > 10
    assert (steps.mid_date >= np.datetime64("2017-01-01")).all()
    assert (steps.mid_date < np.datetime64("2019-01-01")).all()
    assert float(steps["exx"].mean()) == pytest.approx(FIELD.a, abs=1e-4)

    figures = sorted(p.name for p in (folder / "figures").iterdir())
    assert len(figures) == 6 and all(f.endswith(".png") for f in figures)
    for f in (folder / "figures").iterdir():
        head = f.read_bytes()
        assert head[:8] == b"\x89PNG\r\n\x1a\n" and len(head) > 20_000

    summary = json.loads((folder / "summary.json").read_text())
    assert summary["upscale_px"] == 2 and summary["length_scale_m"] == 480.0
    assert summary["window"] == {"start": "20170101", "end": "20181231"}
    assert len(summary["periods"]) == 2


def test_existing_folder_needs_overwrite(cubes, tmp_path):
    args = [
        "strain",
        cubes.a_path,
        "--upscale",
        "2",
        "--start",
        "2017-01-01",
        "--end",
        "2018-12-31",
        "--out",
        tmp_path,
        "--no-progress",
        "--no-figures",
    ]
    assert run_cli(*args, "--per-step").exit_code == 0
    folder = tmp_path / "strain" / "2_20170101_20181231"
    assert (folder / "strain_steps.nc").exists()
    one_line_error(run_cli(*args), match="--overwrite")
    assert (folder / "strain_steps.nc").exists(), "a refused run leaves the folder as it was"
    r = run_cli(*args, "--overwrite")
    assert r.exit_code == 0, r.output
    assert not (folder / "strain_steps.nc").exists(), "the folder was replaced, not merged"
    assert (folder / "strain_period.nc").exists()


@pytest.mark.slow
def test_scheduler_option_uses_a_cluster(cubes, tmp_path):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=2, processes=False, dashboard_address=":0"
    ) as cluster:
        r = run_cli(
            "strain",
            cubes.a_path,
            "--upscale",
            "3",
            "--per-step",
            "--no-figures",
            "--start",
            "2020-01-01",
            "--end",
            "2020-12-31",
            "--out",
            tmp_path,
            "--scheduler",
            cluster.scheduler_address,
            "--no-progress",
        )
        assert r.exit_code == 0, r.output
        # the scheduler ran the per-step graph: it has seen tasks
        assert cluster.scheduler.transition_counter > 0
    steps = xr.open_dataset(tmp_path / "strain" / "3_20200101_20201231" / "strain_steps.nc")
    assert float(steps["exx"].mean()) == pytest.approx(FIELD.a, abs=1e-4)


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (["--upscale", "0"], "--upscale must be >= 1 pixel; got 0"),
        (["--upscale", "25"], "too large"),
        (["--upscale", "two"], "whole numbers"),
        (["--method", "spline"], "--method must be one of"),
        (["--start", "1990-01-01", "--end", "1990-12-31"], "no layers"),
        (
            ["--start", "2020-01-01", "--end", "2019-01-01"],
            "--start 2020-01-01 is after --end 2019-01-01",
        ),
        (["--period", "often"], "--period 'often' is not"),
        (["--sensor", "L8", "--start", "2015-01-01", "--end", "2015-01-02"], "no layers"),
    ],
)
def test_bad_inputs(cubes, tmp_path, extra, match):
    one_line_error(
        run_cli("strain", cubes.a_path, *extra, "--out", tmp_path, "--no-progress"), match=match
    )
    assert not (tmp_path / "strain").exists() or not any((tmp_path / "strain").iterdir())


def test_cube_without_velocity(cubes, tmp_path):
    ds = xr.open_zarr(cubes.a_path).drop_vars(["vy"])
    for v in ds.variables.values():
        v.encoding.pop("chunks", None)
        v.encoding.pop("preferred_chunks", None)
    ds.to_zarr(tmp_path / "novy.zarr", zarr_format=2, consolidated=True)
    one_line_error(run_cli("strain", tmp_path / "novy.zarr", "--out", tmp_path), match="vy")
    one_line_error(
        run_cli("strain", tmp_path / "missing.zarr", "--out", tmp_path), match="no such file"
    )
