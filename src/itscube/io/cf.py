"""CF time coding in numpy: ``<unit> since <date>`` numbers to ``datetime64`` and back.

ITS_LIVE stores dates as float64 ``days since 1970-01-01`` (v2) or seconds since
1980-01-06 (v2.2) in the proleptic Gregorian calendar. Decoding them with xarray imports
pandas and dask (more than a second per process, most of a small download); this module
does the same arithmetic with numpy for the calendars ITS_LIVE uses and defers to xarray
for any other.

Decoded dates are rounded to the microsecond: ITS_LIVE's date tokens carry microseconds,
and the float64 day counts hold ~0.1 us of noise below them
(``2015-01-14 11:55:22.150105088`` is the token ``.150105``).
"""

from __future__ import annotations

import re

import numpy as np

from itscube.errors import CubeFormatError

__all__ = ["GREGORIAN", "decode_times", "encode_times", "parse_time_units", "timedelta_days"]

GREGORIAN = frozenset({"standard", "gregorian", "proleptic_gregorian"})
"""Calendars decoded here (the same on every date after 1582-10-15)."""

_US = {
    "microseconds": 1.0,
    "microsecond": 1.0,
    "us": 1.0,
    "milliseconds": 1e3,
    "millisecond": 1e3,
    "ms": 1e3,
    "seconds": 1e6,
    "second": 1e6,
    "secs": 1e6,
    "sec": 1e6,
    "s": 1e6,
    "minutes": 60e6,
    "minute": 60e6,
    "mins": 60e6,
    "min": 60e6,
    "hours": 3600e6,
    "hour": 3600e6,
    "hrs": 3600e6,
    "hr": 3600e6,
    "h": 3600e6,
    "days": 86400e6,
    "day": 86400e6,
    "d": 86400e6,
}
_SPAN_WORDS = frozenset({"day", "hour", "minute", "second", "millisecond", "microsecond"})
_SINCE = re.compile(
    r"^\s*(\w+)\s+since\s+(\d{1,4}-\d{1,2}-\d{1,2})(?:[T\s]+(\d{1,2}:\d{1,2}(?::\d{1,2}(?:\.\d*)?)?))?"
    r"\s*(?:Z|UTC|[+-]00:?00)?\s*$",
    re.IGNORECASE,
)


def parse_time_units(units: str) -> tuple[float, np.datetime64]:
    """Microseconds per step and the reference date of CF ``<unit> since <date>`` units.

    Raises
    ------
    ValueError
        For units this module does not read (a time zone other than UTC, an unknown unit).
    """
    m = _SINCE.match(str(units))
    if m is None or m.group(1).lower() not in _US:
        raise ValueError(f"unsupported time units {units!r}")
    y, mo, d = (int(v) for v in m.group(2).split("-"))
    ref = np.datetime64(f"{y:04d}-{mo:02d}-{d:02d}", "us")
    if m.group(3):
        hms = m.group(3).split(":")
        secs = int(hms[0]) * 3600 + int(hms[1]) * 60 + (float(hms[2]) if len(hms) > 2 else 0.0)
        ref = ref + np.timedelta64(round(secs * 1e6), "us")
    return _US[m.group(1).lower()], ref


def _numpy_codable(units: str | None, calendar: str | None) -> bool:
    if units is None or str(calendar or "standard").lower() not in GREGORIAN:
        return False
    try:
        parse_time_units(units)
    except ValueError:
        return False
    return True


def decode_times(
    values: np.ndarray, units: str, calendar: str | None = None, missing=None
) -> np.ndarray:
    """Numbers in CF time ``units`` as ``datetime64[ns]``, rounded to the microsecond.

    ``missing`` (the encoded fill value) and NaN decode to NaT.
    """
    raw = np.asarray(values)
    if not _numpy_codable(units, calendar):
        return _decode_with_xarray(raw, units, calendar, missing)
    step, ref = parse_time_units(units)
    num = raw.astype("f8")
    bad = ~np.isfinite(num)
    if missing is not None and not (isinstance(missing, float) and np.isnan(missing)):
        bad |= raw == missing
    us = np.round(np.where(bad, 0.0, num) * step)
    if np.any(np.abs(us) > 9.2e18):
        raise CubeFormatError(f"time values out of range for units {units!r}")
    out = (ref + us.astype(np.int64).astype("timedelta64[us]")).astype("datetime64[ns]")
    out[bad] = np.datetime64("NaT")
    return out


def encode_times(
    dates: np.ndarray, units: str, calendar: str | None = None, dtype=np.float64
) -> np.ndarray:
    """``datetime64`` values as numbers in CF time ``units`` (NaT as NaN); the inverse of
    :func:`decode_times` to the microsecond."""
    dates = np.asarray(dates, "datetime64[ns]")
    if not _numpy_codable(units, calendar):
        return _encode_with_xarray(dates, units, calendar, dtype)
    step, ref = parse_time_units(units)
    # nanoseconds over nanoseconds per unit, as the archive's writer (xarray) computes it
    ns = (dates.astype("datetime64[us]") - ref).astype("timedelta64[ns]").astype(np.int64)
    out = ns.astype("f8") / (step * 1000.0)
    out[np.isnat(dates)] = np.nan
    dtype = np.dtype(dtype)
    if dtype.kind in "iu":
        return np.round(np.nan_to_num(out)).astype(dtype)
    return out.astype(dtype)


def timedelta_days(values: np.ndarray, units: str, missing=None) -> np.ndarray | None:
    """A time span in ``units`` (``days``, ``seconds``, ...) as float days, NaN where
    missing; None when ``units`` is not a time unit."""
    unit = str(units).strip().lower()
    if unit.rstrip("s") not in _SPAN_WORDS:
        return None
    step = _US[unit]
    raw = np.asarray(values)
    out = raw.astype("f8") * (step / 86400e6)
    if missing is not None and not (isinstance(missing, float) and np.isnan(missing)):
        out[raw == missing] = np.nan
    return out


def _decode_with_xarray(raw, units, calendar, missing) -> np.ndarray:
    import xarray as xr

    attrs = {"units": units, "calendar": calendar or "standard"}
    if missing is not None:
        attrs["_FillValue"] = missing
    dims = tuple(f"d{i}" for i in range(raw.ndim))
    try:
        var = xr.conventions.decode_cf_variable("time", xr.Variable(dims, raw, attrs))
        values = np.asarray(var.values)
    except (ValueError, TypeError, ImportError, OverflowError) as exc:
        raise CubeFormatError(
            f"cannot decode times in units {units!r}, calendar {calendar!r} "
            f"({str(exc).splitlines()[0]})"
        ) from exc
    if not np.issubdtype(values.dtype, np.datetime64):
        raise CubeFormatError(f"cannot decode times in units {units!r}, calendar {calendar!r}")
    return values.astype("datetime64[ns]")


def _encode_with_xarray(dates, units, calendar, dtype) -> np.ndarray:
    import xarray as xr

    enc, _, _ = xr.coding.times.encode_cf_datetime(
        dates, units, calendar or "proleptic_gregorian", np.dtype(dtype)
    )
    return np.asarray(enc, dtype=dtype)
