"""CF time coding in numpy, checked against xarray's decoder and ITS_LIVE's tokens."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from itscube.errors import CubeFormatError
from itscube.io import cf


def _xarray_decode(values, units, calendar="proleptic_gregorian"):
    var = xr.Variable(("t",), values, {"units": units, "calendar": calendar})
    return xr.conventions.decode_cf_variable("t", var).values


@pytest.mark.parametrize(
    "units",
    ["days since 1970-01-01", "seconds since 1980-01-06T00:00:00Z", "hours since 2000-01-01 12:00"],
)
def test_decode_matches_xarray_to_the_microsecond(units):
    rng = np.random.default_rng(1)
    step, _ = cf.parse_time_units(units)
    values = rng.uniform(5000, 20000, 200) * 86400e6 / step  # 1983-2024
    ours = cf.decode_times(values, units, "proleptic_gregorian")
    theirs = _xarray_decode(values, units)
    assert np.abs((ours - theirs).astype("i8")).max() <= 1000  # ns: xarray keeps float noise
    assert (ours.astype("i8") % 1000 == 0).all(), "whole microseconds"


def test_microsecond_token_is_restored_and_round_trips():
    token = np.datetime64("2015-01-14T11:55:22.150105", "ns")
    days = (token - np.datetime64("1970-01-01", "ns")) / np.timedelta64(1, "D")
    noisy = _xarray_decode(np.array([days]), "days since 1970-01-01")
    assert str(noisy[0]) != str(token), "float days carry noise below the microsecond"
    ours = cf.decode_times(np.array([days]), "days since 1970-01-01")
    assert ours[0] == token
    back = cf.encode_times(ours, "days since 1970-01-01")
    assert back[0] == days, "the float64 the archive's writer computes from the token"


def test_missing_and_nan_decode_to_nat():
    raw = np.array([1.0, np.nan, -32767.0])
    out = cf.decode_times(raw, "days since 2000-01-01", None, -32767.0)
    assert out[0] == np.datetime64("2000-01-02") and np.isnat(out[1:]).all()
    enc = cf.encode_times(out, "days since 2000-01-01")
    assert enc[0] == 1.0 and np.isnan(enc[1:]).all()


def test_other_calendars_go_through_xarray():
    out = cf.decode_times(np.array([59.0]), "days since 2001-01-01 00:00 +05:00")
    assert str(out[0])[:16] == "2001-02-28T19:00"  # a time zone: xarray's decoder
    with pytest.raises(CubeFormatError, match="calendar 'noleap'"):
        cf.decode_times(np.array([59.0]), "days since 2001-01-01", "noleap")
    with pytest.raises(ValueError, match="unsupported time units"):
        cf.parse_time_units("days since 2000-01-01 +05:00")


def test_time_spans_in_days():
    np.testing.assert_allclose(cf.timedelta_days(np.array([86400, 43200]), "seconds"), [1, 0.5])
    assert np.isnan(cf.timedelta_days(np.array([-1.0]), "days", -1.0)[0])
    assert cf.timedelta_days(np.array([1.0]), "m/yr") is None
