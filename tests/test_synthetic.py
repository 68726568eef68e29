"""The synthetic cubes follow the ITS_LIVE v2 schema (what the real access code expects)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from itscube._datasets import itslive as synthetic
from tests.helpers import FIELD


def _zarray(store, name):
    return json.loads((store / name / ".zarray").read_text())


def test_subyearly_schema(cubes):
    store = cubes.a_path
    meta = json.loads((store / ".zmetadata").read_text())["metadata"]
    assert meta[".zattrs"]["Conventions"] == "CF-1.8"
    assert meta[".zattrs"]["projection"] == "3413"
    n = len(cubes.layers.img1)
    for name in ("v", "vx", "vy", "v_error", "va", "vr", "M11", "M12"):
        z = _zarray(store, name)
        assert z["dtype"] == "<i2" and z["fill_value"] == -32767
        assert z["chunks"] == [n, 10, 10]
        assert z["compressor"]["cname"] == "zlib" and z["compressor"]["clevel"] == 2
        attrs = meta[f"{name}/.zattrs"]
        assert attrs["_ARRAY_DIMENSIONS"] == ["mid_date", "y", "x"]
        assert attrs["grid_mapping"] == "mapping"
    assert _zarray(store, "interp_mask")["dtype"] == "|u1"
    assert _zarray(store, "chip_size_height")["dtype"] == "<u2"
    for name in ("vx_error", "vy_error", "vx_error_slow", "date_dt", "roi_valid_percentage"):
        z = _zarray(store, name)
        assert z["dtype"] == "<f4" and z["shape"] == [n] and z["chunks"] == [n]
    assert meta["date_dt/.zattrs"]["units"] == "days"
    assert meta["mid_date/.zattrs"]["units"] == "days since 1970-01-01"
    mapping = meta["mapping/.zattrs"]
    assert mapping["spatial_epsg"] == 3413
    assert (
        "Polar Stereographic" in mapping["crs_wkt"] or "Polar_Stereographic" in mapping["crs_wkt"]
    )
    assert mapping["grid_mapping_name"] == "polar_stereographic"
    assert _zarray(store, "satellite_img1")["dtype"].startswith("<U")


def test_mid_date_unsorted_unique_with_token(cubes):
    mid = pd.DatetimeIndex(cubes.layers.mid_date)
    assert not mid.is_monotonic_increasing
    assert mid.is_unique
    # microsecond token = YYMMDD of the first acquisition
    token = pd.DatetimeIndex(cubes.layers.img1).strftime("%y%m%d").astype(int)
    np.testing.assert_array_equal(mid.microsecond, token)


def test_coordinates_on_lattice_and_descending_y(cubes):
    x = cubes.a.x.values
    y = cubes.a.y.values
    assert np.all(np.diff(x) == 120.0) and np.all(np.diff(y) == -120.0)
    assert np.all(np.isclose((x - synthetic.LATTICE_OFFSET) % 120.0, 0))
    assert str(x[0]).endswith(".5")


def test_values_are_rounded_analytic_field(cubes):
    ds = cubes.a
    k = 3
    vx = ds.vx.values[k].astype(float)
    X, Y = np.meshgrid(ds.x.values, ds.y.values)
    t = synthetic.decimal_year(cubes.layers.date_center[k : k + 1])[0]
    ex, _ = FIELD(X, Y, t)
    valid = vx != synthetic.FILL_INT16
    assert valid.any()
    np.testing.assert_array_equal(vx[valid], np.round(ex[valid]))


def test_annual_schema(cubes):
    store = cubes.a_path.with_name("A_annual.zarr")
    z = _zarray(store, "vx")
    assert z["dtype"] == "<f4" and z["fill_value"] == -32767.0 and z["chunks"] == [1, 40, 40]
    assert _zarray(store, "vx_error")["dtype"] == "<u2"
    assert _zarray(store, "vx_error")["fill_value"] == 32767
    assert _zarray(store, "count")["dtype"] == "<u4"
    meta = json.loads((store / ".zmetadata").read_text())["metadata"]
    assert meta["dt_max/.zattrs"]["_ARRAY_DIMENSIONS"] == ["sensor", "y", "x"]
    assert meta["v0/.zattrs"]["_ARRAY_DIMENSIONS"] == ["y", "x"]


def test_layers_have_varied_sensors_and_dt(cubes):
    lay = cubes.layers
    assert set(lay.mission) == {"L", "S"}
    assert len(set(lay.satellite)) >= 4
    assert lay.dt_days.min() < 20 and lay.dt_days.max() > 300
