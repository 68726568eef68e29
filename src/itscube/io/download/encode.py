"""Source values to output encodings: each variable's :class:`VarSpec` (dtype, fill value,
attributes), CF times decoded to the microsecond, integer velocities kept as stored, and
the float64 ``mid_date`` of ITS_LIVE v2."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from itscube.errors import (
    CubeFormatError,
)
from itscube.io import cf
from itscube.io.stores import (
    SourceArray,
    decode_values,
    missing_mask,
)

__all__ = [
    "MID_DATE_ENCODING",
    "VarSpec",
    "decode_times",
    "keeps_values",
    "to_output",
]


def _place(out: np.ndarray, where, data: np.ndarray, spec: VarSpec, first: bool) -> None:
    """Put a cube's ``data`` at ``where``: the first cube writes everything, later cubes of
    a mosaic only fill the cells still missing."""
    if first:
        out[where] = data
    else:
        cur = out[where]
        out[where] = np.where(spec.is_missing(cur) & ~spec.is_missing(data), data, cur)


def decode_times(arr: SourceArray, raw: np.ndarray) -> np.ndarray:
    """CF-decode an encoded time variable to ``datetime64[ns]`` (NaT where missing)."""
    values = decode_values(arr, raw)
    if not np.issubdtype(values.dtype, np.datetime64):
        units = arr.attrs.get("units")
        raise CubeFormatError(f"{arr.name}: cannot decode as dates (units {units!r})")
    return values


_TIMEDELTA_UNITS = {"days": 86400.0, "day": 86400.0, "hours": 3600.0, "minutes": 60.0}


def to_output(values: np.ndarray, src: SourceArray, spec: VarSpec) -> np.ndarray:
    """Encoded ``values`` of ``src`` in the encoding of ``spec`` (cubes of a mosaic may
    differ: time units, missing markers, strings)."""
    if values.dtype == spec.dtype and keeps_values(src, spec):
        return values
    if spec.dtype.kind in "OUST":
        return np.asarray(values).astype(str).astype(object)
    if spec.time_like:
        if src.attrs.get("units") == spec.attrs.get("units") and src.dtype == spec.dtype:
            return _translate_missing(values, src, spec)
        dates = decode_times(src, values)
        enc = cf.encode_times(dates, spec.attrs["units"], spec.attrs.get("calendar"), spec.dtype)
        nat = np.isnat(dates)
        if nat.any():
            enc[nat] = np.nan if spec.missing is None else spec.missing
        return enc
    su, du = src.units.lower(), str(spec.attrs.get("units", "")).lower()
    if su != du and su in _TIMEDELTA_UNITS and du in _TIMEDELTA_UNITS:
        miss = missing_mask(values, src.missing)
        out = values.astype("f8") * (_TIMEDELTA_UNITS[su] / _TIMEDELTA_UNITS[du])
        out[miss] = np.nan
        return _encode_numeric(out, spec)
    if values.dtype == spec.dtype:
        return _translate_missing(values, src, spec)
    out = values.astype("f8")
    out[missing_mask(values, src.missing)] = np.nan
    return _encode_numeric(out, spec)


def keeps_values(src: SourceArray, spec: VarSpec) -> bool:
    """Whether :func:`to_output` hands ``src``'s encoded values on unchanged (the same
    dtype, missing marker and units): they may then be read straight into the output."""
    if spec.dtype.kind in "OUST" or src.dtype != spec.dtype:
        return False
    if not _missing_equal(src.missing, spec.missing):
        return False
    if spec.time_like:
        return src.attrs.get("units") == spec.attrs.get("units")
    su, du = src.units.lower(), str(spec.attrs.get("units", "")).lower()
    return not (su != du and su in _TIMEDELTA_UNITS and du in _TIMEDELTA_UNITS)


def _translate_missing(values: np.ndarray, src: SourceArray, spec: VarSpec) -> np.ndarray:
    if _missing_equal(src.missing, spec.missing):
        return values
    out = values.copy()
    out[missing_mask(values, src.missing)] = spec.missing if spec.missing is not None else 0
    return out


def _missing_equal(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return bool(a == b) or (bool(np.isnan(a)) and bool(np.isnan(b)))


def _encode_numeric(values: np.ndarray, spec: VarSpec) -> np.ndarray:
    nan = np.isnan(values)
    if spec.dtype.kind in "iu":
        values = np.where(nan, 0, np.round(values))
    out = values.astype(spec.dtype)
    if nan.any():
        out[nan] = np.nan if spec.missing is None else spec.missing
    return out


def _mid_date_values(src: SourceArray, raw: np.ndarray, times: np.ndarray) -> np.ndarray:
    """The output's ``mid_date`` numbers: the source's own, bit for bit, when it is stored
    as the output is (float64 days since 1970); else ``times`` encoded so."""
    same = (
        src.dtype == np.dtype("f8")
        and src.attrs.get("units") == MID_DATE_ENCODING["units"]
        and str(src.attrs.get("calendar", "standard")) in cf.GREGORIAN
        and _missing_equal(src.missing, np.nan)
    )
    return np.asarray(raw, "f8") if same else _encode_mid_date(times)


def _encode_mid_date(times: np.ndarray) -> np.ndarray:
    return cf.encode_times(times, MID_DATE_ENCODING["units"], MID_DATE_ENCODING["calendar"])


MID_DATE_ENCODING = {"units": "days since 1970-01-01", "calendar": "proleptic_gregorian"}
"""Encoding of the output ``mid_date`` (float64, as ITS_LIVE v2; keeps the microsecond token)."""


@dataclasses.dataclass
class VarSpec:
    """Output encoding of one variable (taken from the first cube that has it).

    ``role``: ``"tiled"`` (time, y, x: assembled in blocks), ``"layer"`` (time only),
    ``"static"`` (y, x without time: read whole at the end) or ``"other"``.
    """

    name: str
    dims: tuple[str, ...]
    dtype: np.dtype
    missing: Any
    attrs: dict
    role: str
    chunks: tuple[int, ...] = ()

    @property
    def time_like(self) -> bool:
        return " since " in str(self.attrs.get("units", ""))

    def filled(self, shape: tuple[int, ...]) -> np.ndarray:
        """An array of missing values (what no cube covers)."""
        if self.dtype.kind in "OUST":
            return np.full(shape, "", dtype=self.dtype)
        return np.full(shape, 0 if self.missing is None else self.missing, dtype=self.dtype)

    def is_missing(self, values: np.ndarray) -> np.ndarray:
        if self.dtype.kind in "OUST":
            return values == ""
        return missing_mask(values, self.missing)
