"""The grid helpers: spacing, cell edges, EPSG detection, block means, upscale checks."""

from __future__ import annotations

import numpy as np
import pyproj
import pytest
import xarray as xr

from itscube.errors import CubeFormatError, InputError, MissingCRSError
from itscube.grid import (
    PIXEL_M,
    block_error,
    block_mean,
    check_upscale,
    cube_epsg,
    epsg_of,
    grid_bounds,
    half_cell,
    spacing,
    time_dim,
)


def test_spacing_and_edges():
    y = np.array([300.0, 180.0, 60.0])
    assert spacing(y, "y") == -120.0
    assert half_cell(y) == 60.0 and half_cell(np.array([5.0])) == PIXEL_M / 2
    assert grid_bounds(np.array([0.0, 120.0]), y) == (-60.0, 0.0, 180.0, 360.0)
    with pytest.raises(CubeFormatError, match="not regularly spaced"):
        spacing(np.array([0.0, 1.0, 3.0]), "x")


def test_one_epsg_detection_for_every_spelling():
    wkt = pyproj.CRS.from_epsg(3031).to_wkt()
    assert epsg_of(3413) == epsg_of("3413") == epsg_of("EPSG:3413") == 3413
    assert epsg_of(None, "", wkt) == 3031
    assert epsg_of("nonsense") is None
    ds = xr.Dataset(coords={"x": [0.0], "y": [0.0]})
    ds["mapping"] = ((), 0, {"spatial_epsg": 32607})
    assert cube_epsg(ds) == 32607
    assert cube_epsg(xr.Dataset(attrs={"projection": "3413"})) == 3413
    with pytest.raises(MissingCRSError):
        cube_epsg(xr.Dataset())


def test_block_means_and_their_errors():
    a = xr.DataArray(np.arange(16.0).reshape(4, 4), dims=("y", "x"))
    np.testing.assert_allclose(block_mean(a, 2).values, [[2.5, 4.5], [10.5, 12.5]])
    s = xr.DataArray(np.full((4, 4), 2.0), dims=("y", "x"))
    np.testing.assert_allclose(block_error(s, 2).values, 1.0)  # 2 / sqrt(4)
    a[0, 0] = np.nan
    assert np.isnan(block_mean(a, 2).values[0, 0])  # no silent skipping of gaps


def test_upscale_checks_name_the_parameter():
    assert check_upscale(3, 20, 20, "x", lambda k: 2 * k + 1) == 3
    with pytest.raises(InputError, match=r"^upscale must be >= 1") as err:
        check_upscale(0, 20, 20, "x")
    assert err.value.params == ("upscale",)
    with pytest.raises(InputError, match="use at most 4"):
        check_upscale(6, 9, 20, "a stencil", lambda k: 2 * k + 1)
    with pytest.raises(InputError, match="whole number"):
        check_upscale(1.5, 20, 20, "x")


def test_time_dim():
    assert time_dim(xr.Dataset(coords={"mid_date": [1]})) == "mid_date"
    assert time_dim(xr.Dataset(coords={"time": [1]})) == "time"
    with pytest.raises(CubeFormatError):
        time_dim(xr.Dataset(coords={"t": [1]}))
