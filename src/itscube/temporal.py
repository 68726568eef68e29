"""Time handling shared by strain, flux and tracking: layer filters and period means.

Conventions
-----------
* A sub-yearly layer belongs to the period that contains its ``mid_date``; an annual
  layer to the period that contains its ``time`` stamp (mid-year for ITS_LIVE composites).
* Period means are inverse-variance weighted: for ``vx`` the weight of a layer at a pixel
  is ``1 / max(vx_error, ERROR_FLOOR)**2`` (``vy`` likewise); layers whose velocity or
  error is missing there get weight 0. The error of the mean is ``1 / sqrt(sum(w))``,
  which assumes independent layer errors (an optimistic bound when errors are
  correlated in time). Without error variables the mean is unweighted and no error is
  reported.
* Periods: ``all`` (the whole window), ``year`` (calendar years), ``season``
  (meteorological DJF/MAM/JJA/SON, labelled by their first day, so DJF 2018/19 is
  ``2018-12-01``), or any pandas frequency alias (``6MS``, ``QS-DEC``, ``2YS``...).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import xarray as xr

from itscube.errors import EmptySelectionError, InputError
from itscube.grid import time_dim
from itscube.window import DateLike, Filters, date_window, layer_mask

__all__ = [
    "ERROR_FLOOR",
    "PERIOD_ALIASES",
    "PeriodBin",
    "covering_layers",
    "period_bins",
    "period_mean",
    "select_layers",
]

ERROR_FLOOR = 0.1
"""Smallest velocity error (m/yr) used as a weight; ITS_LIVE reports 0 for some pixels."""

PERIOD_ALIASES = {"year": "YS", "season": "QS-DEC", "month": "MS"}
"""Named periods, shared by strain and flux (``--period``) and tracking composites."""


def select_layers(
    ds: xr.Dataset,
    start: DateLike | None = None,
    end: DateLike | None = None,
    filters: Filters | None = None,
) -> xr.Dataset:
    """Layers of an opened cube inside ``[start, end]`` (inclusive dates) passing ``filters``.

    Raises
    ------
    InputError
        A filter needs a variable the cube lacks, or the dates are malformed.
    EmptySelectionError
        Nothing is left; the message says what the cube holds.
    """
    filters = filters or Filters()
    tdim = time_dim(ds)
    times = ds[tdim].values
    t0, t1 = date_window(start, end)
    mask = (times >= np.datetime64(t0)) & (times < np.datetime64(t1))
    need = filters.needed_variables()
    missing = [v for v in need if v not in ds.variables]
    if missing:
        raise InputError(
            f"the layer filters need {', '.join(missing)}, which the cube lacks; drop those filters"
        )
    if need:
        small = {v: ds[v].values for v in need}
        mask &= layer_mask(small, filters, len(times))
    scalar_err = [
        v for v in ("vx_error", "vy_error") if v in ds.variables and ds[v].dims == (tdim,)
    ]
    if filters.max_error is not None:
        for v in scalar_err:
            err = ds[v].values
            mask &= ~(err > filters.max_error)
    if not mask.any():
        span = f"{str(times.min())[:10]} .. {str(times.max())[:10]}" if len(times) else "nothing"
        raise EmptySelectionError(
            f"no layers between {t0.date()} and {(t1 - pd.Timedelta(days=1)).date()} pass the "
            f"filters; the cube holds {len(times)} layers ({span})"
        )
    out = ds.isel({tdim: np.nonzero(mask)[0]})
    if filters.max_error is not None:
        for comp in ("x", "y"):
            err = f"v{comp}_error"
            if err in out.variables and err not in scalar_err and f"v{comp}" in out:
                bad = out[err] > filters.max_error
                out[f"v{comp}"] = out[f"v{comp}"].where(~bad)
    return out


def covering_layers(ds: xr.Dataset, mask: np.ndarray) -> xr.Dataset:
    """The layers of ``ds`` with ``vx`` and ``vy`` at every cell of ``mask`` (y, x).

    Averaging only these gives every cell of ``mask`` a mean of the same image pairs. With
    all layers, a cloud-gap edge inside the area splits it into cells averaging different
    pairs; as pairs sample the seasonal cycle differently, the mean steps across the edge,
    and derivatives (strain, flux divergence) turn that step into a stripe one cell wide.

    Raises
    ------
    EmptySelectionError
        No layer covers the whole mask.
    """
    tdim = time_dim(ds)
    mask_da = xr.DataArray(np.asarray(mask, bool), dims=("y", "x"))
    gaps = (ds["vx"].isnull() | ds["vy"].isnull()).where(mask_da, False).any(("y", "x"))
    keep = np.nonzero(~np.asarray(gaps.values))[0]
    if len(keep) == 0:
        raise EmptySelectionError(
            f"none of the {ds.sizes[tdim]} layers has velocities over the whole area; drop "
            "common_layers (or use a smaller area)",
            params="common_layers",
        )
    return ds.isel({tdim: keep})


@dataclasses.dataclass(frozen=True)
class PeriodBin:
    """One averaging period: ``[start, end)`` and the indices of its layers."""

    label: str
    start: pd.Timestamp
    end: pd.Timestamp
    index: np.ndarray


def period_bins(times: np.ndarray, period: str, start=None, end=None) -> list[PeriodBin]:
    """Split layer times into averaging periods (see the module docstring for ``period``).

    ``start``/``end`` (inclusive dates) bound the ``all`` period; without them it spans
    the first to the last layer. Other periods are clipped to ``[start, end]`` when given:
    a season that starts before the window or ends after it is labelled and bounded by
    the part inside the window (``20201201-20201231``, not ``20201201-20210228``).
    """
    times = np.asarray(times, dtype="datetime64[ns]")
    if len(times) == 0:
        raise EmptySelectionError("no layers to average")
    if period == "all":
        t0, t1 = date_window(start, end)
        t0 = pd.Timestamp(times.min()).normalize() if start is None else t0
        t1 = (pd.Timestamp(times.max()).normalize() + pd.Timedelta(days=1)) if end is None else t1
        return [
            PeriodBin(
                f"{t0:%Y%m%d}-{t1 - pd.Timedelta(days=1):%Y%m%d}", t0, t1, np.arange(len(times))
            )
        ]
    freq = PERIOD_ALIASES.get(period, period)
    try:
        offset = pd.tseries.frequencies.to_offset(freq)
    except ValueError as exc:
        raise InputError(
            f"period {period!r} is not all, year, season or a pandas frequency such as 6MS",
            params="period",
        ) from exc
    series = pd.Series(np.arange(len(times)), index=pd.DatetimeIndex(times))
    w0, w1 = date_window(start, end)
    bins = []
    for label, part in series.resample(offset):
        if len(part) == 0:
            continue
        t0 = pd.Timestamp(label)
        t1 = t0 + offset
        if start is not None:
            t0 = max(t0, w0)
        if end is not None:
            t1 = min(t1, w1)
        name = f"{t0:%Y%m%d}-{t1 - pd.Timedelta(days=1):%Y%m%d}"
        bins.append(PeriodBin(name, t0, t1, np.asarray(part.values)))
    return bins


def _weighted(v: xr.DataArray, sigma: xr.DataArray | None, dim: str):
    valid = v.notnull()
    if sigma is None:
        n = valid.sum(dim)
        return v.mean(dim, skipna=True), None, n
    w = 1.0 / np.maximum(sigma, ERROR_FLOOR) ** 2
    w = w.where(valid & sigma.notnull(), 0.0)
    sw = w.sum(dim)
    positive = sw.where(sw > 0)  # NaN where no layer has data: no 0/0 warnings
    mean = (v.fillna(0.0) * w).sum(dim) / positive
    err = 1.0 / np.sqrt(positive)
    return mean, err, (w > 0).sum(dim)


def period_mean(
    ds: xr.Dataset,
    period: str = "all",
    *,
    start: DateLike | None = None,
    end: DateLike | None = None,
    weighted: bool = True,
    within_span: bool = False,
) -> xr.Dataset:
    """Mean velocity field per period.

    Parameters
    ----------
    ds : cube from :func:`itscube.open_cube` (already restricted to the wanted layers).
    period : ``all``, ``year``, ``season`` or a pandas frequency alias.
    start, end : bounds used to label the ``all`` period (inclusive dates).
    weighted : inverse-variance weights from ``vx_error``/``vy_error`` when present.
    within_span : keep only image pairs whose whole acquisition span
        (``acquisition_date_img1`` .. ``acquisition_date_img2``) lies inside the period
        (sub-yearly cubes that carry these dates; otherwise ``mid_date`` decides).

    Returns
    -------
    xarray.Dataset
        dims ``(time, y, x)`` with ``time`` the period start and ``time_bnds``;
        ``vx``, ``vy`` (m/yr), ``vx_error``, ``vy_error`` (m/yr, error of the weighted
        mean, when errors exist) and ``n_layers`` (layers contributing to ``vx``).

    Raises
    ------
    InputError
        ``period`` is not a known period or pandas frequency.
    EmptySelectionError
        ``ds`` has no layers.
    """
    tdim = time_dim(ds)
    bins = period_bins(ds[tdim].values, period, start, end)
    parts = []
    parts_layers: list[xr.Dataset] = []
    spans = None
    if within_span and {"acquisition_date_img1", "acquisition_date_img2"} <= set(ds.variables):
        d1 = ds["acquisition_date_img1"].values.astype("datetime64[ns]")
        d2 = ds["acquisition_date_img2"].values.astype("datetime64[ns]")
        spans = (np.minimum(d1, d2), np.maximum(d1, d2))
    for b in bins:
        index = b.index
        if spans is not None:
            lo = spans[0][index] >= np.datetime64(b.start)
            hi = spans[1][index] < np.datetime64(b.end)
            index = index[lo & hi]
        sub = ds.isel({tdim: index})
        parts_layers.append(sub)
        out = {}
        for comp in ("x", "y"):
            name, ename = f"v{comp}", f"v{comp}_error"
            sigma = sub[ename] if (weighted and ename in sub.variables) else None
            mean, err, n = _weighted(sub[name], sigma, tdim)
            out[name] = mean.astype("float32")
            if err is not None:
                out[ename] = err.astype("float32")
            if comp == "x":
                out["n_layers"] = n.astype("int32")
        parts.append(xr.Dataset(out))
    res = xr.concat(parts, dim="time", coords="minimal", compat="override", join="override")
    res = res.assign_coords(time=("time", [b.start.to_datetime64() for b in bins]))
    res["time_bnds"] = (
        ("time", "bnds"),
        np.array(
            [[b.start.to_datetime64(), b.end.to_datetime64()] for b in bins], dtype="datetime64[ns]"
        ),
    )
    res["time"].attrs.update(bounds="time_bnds", long_name="start of the averaging period")
    res["period"] = ("time", [b.label for b in bins])
    res["layers"] = (
        ("time",),
        np.array([p.sizes.get(tdim, 0) for p in parts_layers], "int32"),
        {"long_name": "layers (image pairs or composites) averaged in the period", "units": "1"},
    )
    for name in ("vx", "vy", "vx_error", "vy_error"):
        if name in res:
            res[name].attrs.update(
                units="m yr-1",
                long_name=(
                    f"{'error of ' if 'error' in name else ''}period-mean "
                    f"{name[:2]} velocity{' (inverse-variance weighted)' if weighted else ''}"
                ),
                grid_mapping="mapping",
            )
    res["n_layers"].attrs.update(long_name="layers contributing to the period mean", units="1")
    res.attrs.update(itscube_period=period, itscube_source_time_dim=tdim)
    res = res.assign_coords(mapping=ds["mapping"]) if "mapping" in ds.variables else res
    if ds.rio.crs is not None:
        res = res.rio.write_crs(ds.rio.crs, grid_mapping_name="mapping")
    return res
