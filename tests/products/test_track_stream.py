"""Tracks written block by block are the files the one-block (in-memory) path writes."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from itscube.products.track import run_track
from tests.helpers import CENTRE_A

X0, Y0 = CENTRE_A


def _run(cubes, out, block_points):
    seeds = [[X0 - 1500 + 150 * i, Y0 - 700 + 100 * (i % 5)] for i in range(7)]
    seeds.append([X0 + 1e6, Y0])  # far outside: its block is all out of the domain
    return run_track(
        cubes.a_path, seeds=np.array(seeds), start="2018-01-01", end="2018-12-31", out=out,
        figures=False, block_points=block_points,
    )  # fmt: skip


@pytest.mark.slow
def test_streamed_blocks_write_the_same_files(cubes, tmp_path):
    one = _run(cubes, tmp_path / "one", 100_000)
    many = _run(cubes, tmp_path / "many", 3)  # blocks of 3, 3 and 2 points
    a, b = one.folder, many.folder
    assert (a / "tracks.csv").read_bytes() == (b / "tracks.csv").read_bytes()
    with xr.open_dataset(a / "tracks.nc") as ra, xr.open_dataset(b / "tracks.nc") as rb:
        assert ra.sizes == rb.sizes and ra.sizes["point"] == 8
        for name in ra.data_vars:
            np.testing.assert_array_equal(ra[name].values, rb[name].values, err_msg=name)
        np.testing.assert_array_equal(ra.point.values, np.arange(8))
        assert str(rb.status.values[-1]) == "out_of_domain"
    for layer in ("tracks", "points"):
        la = gpd.read_file(a / "tracks.gpkg", layer=layer)
        lb = gpd.read_file(b / "tracks.gpkg", layer=layer)
        pd.testing.assert_frame_equal(la.drop(columns="geometry"), lb.drop(columns="geometry"))
        same = la.geometry.geom_equals_exact(lb.geometry, 1e-9)
        assert (same | (la.geometry.isna() & lb.geometry.isna())).all()
    sa = json.loads((a / "summary.json").read_text())
    sb = json.loads((b / "summary.json").read_text())
    for key in ("points", "status", "points_with_gap_fallback", "median_displacement_m"):
        assert sa[key] == sb[key], key
    assert not (b / ".blocks").exists()


def test_ensemble_option_adds_the_spread(cubes, tmp_path):
    """``ensemble`` adds each point's 1-sigma end-position spread to the tables and the
    summary; without it there is none. The test cubes' errors are a few m/yr, so a year
    spreads the ends by metres, not by nothing and not by kilometres."""
    seeds = np.array([[X0 - 900.0, Y0 + 300.0], [X0 + 600.0, Y0 - 450.0]])
    opts = dict(seeds=seeds, start="2018-01-01", end="2018-12-31", figures=False)
    plain = run_track(cubes.a_path, out=tmp_path / "plain", **opts)
    spread = run_track(cubes.a_path, out=tmp_path / "spread", ensemble=30, **opts)
    assert plain.summary["median_spread_m"] is None
    assert 0.1 < spread.summary["median_spread_m"] < 500
    lines = gpd.read_file(spread.folder / "tracks.gpkg", layer="tracks")
    assert (lines["spread_m"] > 0).all() and "spread_m" not in gpd.read_file(
        plain.folder / "tracks.gpkg", layer="tracks"
    )
