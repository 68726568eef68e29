"""Time handling shared by strain, flux, tracking and series: layer filters, period means,
regular series and climatologies.

Estimators (``estimator=``)
---------------------------
* ``fit`` (the default wherever the cube has image-pair spans): each pair holds the mean
  velocity over its own span ``[acquisition_date_img1, acquisition_date_img2]``. Per pixel
  and component, a weighted least-squares fit of one mean per calendar year plus a common
  annual sinusoid models each pair as the **integral of that model over its span** divided
  by the span (ITS_LIVE's composite method; :mod:`itscube._kernels.lsqfit`). A period mean
  is the model's exact mean over the period, and its error the fit's formal error. Every
  pair counts for the time it covers, so long summer-centred pairs no longer pull a year
  toward summer speeds. Per-pixel fallbacks are flagged in ``fit_flag``: ``1`` where the
  valid pairs of at most 183 days sample fewer than ``min_months`` calendar months (annual
  means are fitted without a seasonal term), ``2`` where there are fewer valid pairs than
  parameters + :data:`FIT_MARGIN` (the ``pair-mean`` value below is used).
* ``pair-mean``: the layers whose ``mid_date`` lies in the period (with ``within_span``,
  whose whole span does) are averaged with inverse-variance weights. Annual cubes always
  use it: their layers already are ITS_LIVE's fitted composites.

Weights
-------
The weight of a layer at a pixel is ``1 / max(vx_error, ERROR_FLOOR)**2`` (``vy`` likewise);
layers whose velocity or error is missing there get weight 0. Errors are formal: they assume
independent pair errors of the stated size (the error model of the README's "Uncertainties"
section). Without error variables all layers weigh the same and no error is reported.

Periods
-------
``all`` (the whole window), ``year`` (calendar years), ``season`` (meteorological
DJF/MAM/JJA/SON, labelled by their first day, so DJF 2018/19 is ``2018-12-01``), or any
pandas frequency alias (``6MS``, ``QS-DEC``, ``2YS``...). The ``fit`` gives every period
between the first and the last layer (clipped to the window), also those no ``mid_date``
falls in; :func:`span_bins` reaches to the ends of the pairs' spans (tracking).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr

from itscube._kernels.lsqfit import (
    FIT_FEW_PAIRS,
    FIT_FULL,
    FIT_NO_SEASON,
    fit_span_model,
    model_means,
    span_design,
)
from itscube._typing import ESTIMATORS, Estimator, check_choice
from itscube.errors import EmptySelectionError, InputError
from itscube.grid import time_dim
from itscube.window import DateLike, Filters, date_window, layer_mask

__all__ = [
    "ERROR_FLOOR",
    "FIT_FLAGS",
    "MIN_MONTHS",
    "PERIOD_ALIASES",
    "ErrorModel",
    "PeriodBin",
    "bin_means",
    "climatology",
    "covering_layers",
    "pair_spans",
    "period_bins",
    "period_mean",
    "regularise",
    "resolve_estimator",
    "seasonal_cycle",
    "select_layers",
    "span_bins",
]

ERROR_FLOOR = 0.1
"""Smallest velocity error (m/yr) used as a weight; ITS_LIVE reports 0 for some pixels."""


@dataclasses.dataclass(frozen=True)
class ErrorModel:
    """The error model of velocity maps, one for every product (README, "Uncertainties").

    A map's error at a pixel with stated 1-sigma error ``s`` (m/yr) is
    ``s * (offset * d + sqrt(1 - offset**2) * n(x, y))``: ``d`` one standard-normal draw per
    image pair for the whole map (a residual per-pair offset, e.g. from co-registration),
    ``n`` a unit-variance noise field with Gaussian correlation ``exp(-r**2 / (2 L**2))``,
    ``L = correlation_m`` (feature tracking measures over chips of a few pixels). Pairs are
    independent, ``vx`` and ``vy`` errors independent. A period mean (a weighted sum of pairs
    with the same weights at every pixel) then has the same form with its own ``s``.
    Thickness errors are a separate term of the same form with ``thickness_offset`` and
    ``thickness_correlation_m``.

    Attributes
    ----------
    offset : share of the error's standard deviation that is one offset per map (0..1).
    correlation_m : correlation length (m) of the pixel noise; 0 for independent pixels.
    thickness_offset, thickness_correlation_m : the same for the thickness error.
    """

    offset: float = 0.5
    correlation_m: float = 360.0
    thickness_offset: float = 0.0
    thickness_correlation_m: float = 0.0

    def __post_init__(self) -> None:
        for name in ("offset", "thickness_offset"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise InputError(f"{name} must be in 0..1; got {getattr(self, name)}", params=name)
        for name in ("correlation_m", "thickness_correlation_m"):
            if not getattr(self, name) >= 0.0:
                raise InputError(f"{name} must be >= 0 m; got {getattr(self, name)}", params=name)


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
            ename = f"v{comp}_error"
            if ename in out.variables and ename not in scalar_err and f"v{comp}" in out:
                bad = out[ename] > filters.max_error
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


def period_bins(
    times: np.ndarray,
    period: str,
    start: DateLike | None = None,
    end: DateLike | None = None,
    keep_empty: bool = False,
) -> list[PeriodBin]:
    """Split layer times into averaging periods (see the module docstring for ``period``).

    With ``keep_empty`` every period from the first to the last layer is kept, also those
    no layer time falls in (their ``index`` is empty).

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
        if len(part) == 0 and not keep_empty:
            continue
        t0 = pd.Timestamp(label)
        t1 = t0 + offset
        if start is not None:
            t0 = max(t0, w0)
        if end is not None:
            t1 = min(t1, w1)
        if t1 <= t0:  # a bin of layers outside [start, end]
            continue
        name = f"{t0:%Y%m%d}-{t1 - pd.Timedelta(days=1):%Y%m%d}"
        bins.append(PeriodBin(name, t0, t1, np.asarray(part.values)))
    return bins


def _sigma(ds: xr.Dataset, comp: str, weighted: bool) -> xr.DataArray | None:
    name = f"v{comp}_error"
    return ds[name] if (weighted and name in ds.variables) else None


def pair_spans(ds: xr.Dataset) -> tuple[np.ndarray, np.ndarray] | None:
    """Start and end (datetime64) of every layer's image-pair span: the acquisition dates,
    else ``mid_date -/+ date_dt / 2``; None for annual cubes or cubes without them."""
    tdim = time_dim(ds)
    if tdim != "mid_date":
        return None
    if {"acquisition_date_img1", "acquisition_date_img2"} <= set(ds.variables):
        d1 = np.asarray(ds["acquisition_date_img1"].values).astype("datetime64[ns]")
        d2 = np.asarray(ds["acquisition_date_img2"].values).astype("datetime64[ns]")
        if not (np.isnat(d1).any() or np.isnat(d2).any()):
            return np.minimum(d1, d2), np.maximum(d1, d2)
    if "date_dt" in ds.variables:
        dt = np.asarray(ds["date_dt"].values)
        if not np.issubdtype(dt.dtype, np.timedelta64):
            dt = (dt.astype("f8") * 86400e9).astype("timedelta64[ns]")
        mid = ds[tdim].values.astype("datetime64[ns]")
        half = dt.astype("timedelta64[ns]") / 2
        if not np.isnat(half).any():
            return mid - half, mid + half
    return None


def _known_spans(ds: xr.Dataset) -> tuple[np.ndarray, np.ndarray]:
    """:func:`pair_spans` where the caller has checked that ``ds`` has them."""
    spans = pair_spans(ds)
    if spans is None:
        raise InputError("the cube has no image-pair spans (acquisition dates or date_dt)")
    return spans


def resolve_estimator(ds: xr.Dataset, estimator: Estimator) -> Estimator:
    """``fit`` or ``pair-mean`` for ``ds`` (see the module docstring); ``auto`` picks the
    fit where the layers are image pairs with known spans.

    Raises
    ------
    InputError
        ``fit`` asked for a cube without image-pair spans, or an unknown estimator.
    """
    check_choice(estimator, ESTIMATORS, "estimator")
    spans = pair_spans(ds) if estimator != "pair-mean" else None
    if estimator == "fit" and spans is None:
        raise InputError(
            "the span-aware fit needs image pairs with acquisition dates (or date_dt); "
            "annual composites already are fits: use estimator pair-mean or auto",
            params="estimator",
        )
    return "fit" if spans is not None else "pair-mean"


def _pair_means(ds: xr.Dataset, bins: list[PeriodBin], weighted: bool, within_span: bool):
    """Inverse-variance means of each bin's layers, for all bins at once: sums over the
    layers as products with the (bins x layers) membership matrix."""
    tdim = time_dim(ds)
    spans = pair_spans(ds) if within_span else None
    member = np.zeros((len(bins), ds.sizes[tdim]))
    for q, b in enumerate(bins):
        index = b.index
        if spans is not None:
            lo = spans[0][index] >= np.datetime64(b.start)
            hi = spans[1][index] < np.datetime64(b.end)
            index = index[lo & hi]
        member[q, index] = 1.0
    m = xr.DataArray(member, dims=("_period", tdim))  # renamed: annual cubes' tdim is time
    out = {}
    for comp in ("x", "y"):
        v = ds[f"v{comp}"]
        sigma = _sigma(ds, comp, weighted)
        valid = v.notnull()
        if sigma is None:
            w = valid.astype("f8")
        else:
            w = (1.0 / sigma.astype("f8").clip(min=ERROR_FLOOR) ** 2).where(
                valid & sigma.notnull(), 0.0
            )
        sw = xr.dot(m, w, dim=tdim)
        positive = sw.where(sw > 0)  # NaN where no layer has data: no 0/0 warnings
        out[f"v{comp}"] = (xr.dot(m, v.fillna(0.0) * w, dim=tdim) / positive).astype("float32")
        if sigma is not None:
            out[f"v{comp}_error"] = (1.0 / np.sqrt(positive)).astype("float32")
        if comp == "x":
            out["n_layers"] = xr.dot(m, (w > 0).astype("f8"), dim=tdim).astype("int32")
    res = xr.Dataset(out).rename(_period="time").transpose("time", ...)
    return res, member.sum(axis=1).astype("int32")


# ---------------------------------------------------------------- the span-aware fit

FIT_EPOCH = np.datetime64("2000-01-01", "ns")
"""Origin of the fit's time axis (years of 365.25 days); the seasonal phase counts from it."""
MIN_MONTHS = 6
"""Calendar months the short pairs must sample for the seasonal term to be fitted."""
FIT_MARGIN = 3
"""Valid pairs needed beyond the number of fitted parameters."""
FIT_TILE_BYTES = 64 * 2**20
"""Bytes of float64 velocities per dask task of the fit (all layers of a tile of pixels)."""
SEASON_PAIR_DAYS = 183
"""Pairs up to this long (days) resolve the season (count toward ``min_months``)."""
FIT_FLAGS = {
    FIT_FULL: "annual means and seasonal cycle fitted",
    FIT_NO_SEASON: "too few months sampled: annual means fitted without a seasonal term",
    FIT_FEW_PAIRS: "too few valid pairs for the fit: inverse-variance mean of the pairs",
}


def _years(t: np.ndarray) -> np.ndarray:
    t = np.asarray(t).astype("datetime64[ns]")
    return (t - FIT_EPOCH).astype("timedelta64[ns]").astype("f8") / (86400e9 * 365.25)


@dataclasses.dataclass(frozen=True)
class _FitSetup:
    design: np.ndarray  # (T, K)
    month: np.ndarray  # (T,) int, -1 for pairs too long to resolve the season
    edges: np.ndarray  # (K - 1,) year starts (fit years)
    t1: np.ndarray
    t2: np.ndarray

    @classmethod
    def of(cls, ds: xr.Dataset) -> _FitSetup:
        t1, t2 = _known_spans(ds)
        first = pd.Timestamp(t1.min()).year
        last = pd.Timestamp(t2.max()).year
        starts = np.array([f"{y}-01-01" for y in range(first, last + 2)], "datetime64[ns]")
        edges = _years(starts)
        design = span_design(_years(t1), _years(t2), edges)
        mid = pd.DatetimeIndex(t1 + (t2 - t1) / 2)
        short = (t2 - t1) <= np.timedelta64(SEASON_PAIR_DAYS, "D")
        month = np.where(short, mid.month.to_numpy() - 1, -1).astype(np.int64)
        return cls(design, month, edges, t1, t2)

    def rows(self, bins: list[PeriodBin]) -> np.ndarray:
        starts = np.array([b.start.to_datetime64() for b in bins], "datetime64[ns]")
        ends = np.array([b.end.to_datetime64() for b in bins], "datetime64[ns]")
        return span_design(_years(starts), _years(ends), self.edges)


N_SEASONAL = 5  # b, c, var(b), var(c), cov(b, c)


def _fit_block(v, sigma, *, design, month, rows, weighted, min_months):
    """The fit of a block of pixels: ``v`` (..., T), ``sigma`` broadcast to it. Returns
    (..., 2Q + N_SEASONAL + 3): Q period means, Q errors, the seasonal coefficients and
    their covariance, then flag, valid pairs and reduced chi-square."""
    shape, T = v.shape[:-1], v.shape[-1]
    V = np.ascontiguousarray(v.reshape(-1, T).T, dtype="f8")
    S = np.broadcast_to(sigma, v.shape).reshape(-1, T).T.astype("f8")
    ok = np.isfinite(V) & np.isfinite(S)
    W = np.where(ok, 1.0 / np.maximum(S, ERROR_FLOOR) ** 2, 0.0) if weighted else ok * 1.0
    beta, cov, covered, flag, n, chi2 = fit_span_model(
        V, np.ascontiguousarray(W), design, month, min_months, FIT_MARGIN
    )
    mean, err = model_means(beta, cov, covered, rows)
    k = design.shape[1] - 2
    seas = np.stack(
        [beta[:, k], beta[:, k + 1], cov[:, k, k], cov[:, k + 1, k + 1], cov[:, k, k + 1]], 1
    )
    out = np.concatenate(
        [mean.T, err.T, seas, flag[:, None].astype("f8"), n[:, None], chi2[:, None]], axis=1
    )
    return out.reshape(*shape, out.shape[1])


def _fit_component(ds, comp: str, setup: _FitSetup, rows, weighted, min_months) -> xr.Dataset:
    tdim = time_dim(ds)
    v = ds[f"v{comp}"]
    if v.chunks is not None:  # the fit needs every layer of a pixel: whole-time tiles
        side = max(1, int(np.sqrt(FIT_TILE_BYTES / (8 * max(1, ds.sizes[tdim])))))
        v = v.chunk({tdim: -1, "y": side, "x": side})
    sigma = _sigma(ds, comp, weighted)
    have_sigma = sigma is not None
    if sigma is None:
        sigma = xr.DataArray(np.ones(ds.sizes[tdim]), dims=(tdim,))
    elif sigma.chunks is not None:
        sigma = sigma.chunk({tdim: -1})
    q = rows.shape[0]
    size = 2 * q + N_SEASONAL + 3
    out = xr.apply_ufunc(
        _fit_block,
        v,
        sigma,
        input_core_dims=[[tdim], [tdim]],
        output_core_dims=[["fit_out"]],
        dask="parallelized",
        output_dtypes=["f8"],
        dask_gufunc_kwargs={"output_sizes": {"fit_out": size}, "allow_rechunk": True},
        kwargs={
            "design": setup.design,
            "month": setup.month,
            "rows": rows,
            "weighted": weighted and have_sigma,
            "min_months": int(min_months),
        },
    )

    def part(i0, i1, dim=None):
        sel = out.isel(fit_out=slice(i0, i1))
        return sel.rename(fit_out=dim) if dim else sel.isel(fit_out=0)

    b = 2 * q
    res = {
        "mean": part(0, q, "time"),
        "cos": part(b, b + 1),
        "sin": part(b + 1, b + 2),
        "var_cos": part(b + 2, b + 3),
        "var_sin": part(b + 3, b + 4),
        "cov_cs": part(b + 4, b + 5),
        "flag": part(b + 5, b + 6),
        "n": part(b + 6, b + 7),
        "chi2": part(b + 7, b + 8),
    }
    if have_sigma:
        res["err"] = part(q, 2 * q, "time")
    return xr.Dataset(res).transpose("time", ..., "y", "x", missing_dims="ignore")


def _fit_means(ds, bins, weighted: bool, min_months: int):
    tdim = time_dim(ds)
    setup = _FitSetup.of(ds)
    rows = setup.rows(bins)
    fallback, _ = _pair_means(ds, bins, weighted, within_span=False)
    starts = np.array([b.start.to_datetime64() for b in bins], "datetime64[ns]")
    ends = np.array([b.end.to_datetime64() for b in bins], "datetime64[ns]")
    overlap = (setup.t1[None, :] < ends[:, None]) & (setup.t2[None, :] > starts[:, None])
    overlap_da = xr.DataArray(overlap.astype("int32"), dims=("time", tdim))
    out, flags = {}, []
    for comp in ("x", "y"):
        fit = _fit_component(ds, comp, setup, rows, weighted, min_months)
        few = fit["flag"] == FIT_FEW_PAIRS
        name = f"v{comp}"
        out[name] = fit["mean"].where(~few, fallback[name]).astype("float32")
        if "err" in fit:
            ename = f"{name}_error"
            out[ename] = fit["err"].where(~few, fallback[ename]).astype("float32")
        flags.append(fit["flag"])
        if comp == "x":
            valid = ds[name].notnull().astype("int32")
            out["n_layers"] = xr.dot(overlap_da, valid, dim=tdim).astype("int32")
    out["fit_flag"] = xr.apply_ufunc(np.maximum, flags[0], flags[1], dask="allowed").astype("uint8")
    out["fit_flag"].attrs.update(
        long_name="span-aware fit: fallback used",
        flag_values=np.array(list(FIT_FLAGS), "uint8"),
        flag_meanings=" ".join(m.split(":")[0].replace(" ", "_") for m in FIT_FLAGS.values()),
        comment="; ".join(f"{k} {m}" for k, m in FIT_FLAGS.items()),
    )
    return xr.Dataset(out), overlap.sum(axis=1).astype("int32")


def period_mean(
    ds: xr.Dataset,
    period: str = "all",
    *,
    start: DateLike | None = None,
    end: DateLike | None = None,
    weighted: bool = True,
    within_span: bool = False,
    estimator: Estimator = "auto",
    min_months: int = MIN_MONTHS,
) -> xr.Dataset:
    """Mean velocity field per period.

    Parameters
    ----------
    ds : cube from :func:`itscube.open_cube` (already restricted to the wanted layers).
    period : ``all``, ``year``, ``season`` or a pandas frequency alias.
    start, end : bounds of the periods (inclusive dates); without them the periods run
        from the first to the last layer.
    weighted : inverse-variance weights from ``vx_error``/``vy_error`` when present.
    within_span : ``pair-mean`` only (``auto`` then means ``pair-mean``): keep only image
        pairs whose whole acquisition span lies inside the period.
    estimator : ``auto`` (default), ``fit`` or ``pair-mean`` (see the module docstring).
    min_months : ``fit`` only: calendar months the pairs of at most 183 days must sample
        at a pixel for its seasonal cycle to be fitted.

    Returns
    -------
    xarray.Dataset
        dims ``(time, y, x)`` with ``time`` the period start and ``time_bnds``;
        ``vx``, ``vy`` (m/yr), ``vx_error``, ``vy_error`` (m/yr, when errors exist),
        ``n_layers`` (layers contributing at the pixel: with the fit, valid pairs whose
        span overlaps the period), ``layers`` per period, and with the fit ``fit_flag``
        (y, x). The attribute ``itscube_estimator`` says which estimator was used.

    Raises
    ------
    InputError
        ``period`` is not a known period or pandas frequency, ``within_span`` with the
        fit, or the fit asked for a cube without pair spans.
    EmptySelectionError
        ``ds`` has no layers.
    """
    tdim = time_dim(ds)
    if within_span and estimator == "auto":  # a pair-mean option: auto means pair-mean
        estimator = "pair-mean"
    est = resolve_estimator(ds, estimator)
    if est == "fit" and within_span:
        raise InputError(
            "within_span selects pairs for the pair-mean estimator; the fit already counts "
            "every pair for its span: drop within_span or use estimator pair-mean",
            params=("within_span", "estimator"),
        )
    bins = period_bins(ds[tdim].values, period, start, end, keep_empty=est == "fit")
    return bin_means(
        ds,
        bins,
        estimator=est,
        weighted=weighted,
        within_span=within_span,
        min_months=min_months,
        period=period,
    )


def span_bins(ds: xr.Dataset, period: str) -> list[PeriodBin]:
    """Every period from the start of the first pair's span to the end of the last one,
    each with the layers whose ``mid_date`` it holds: the periods the pairs inform (tracking
    uses them to cover its whole window; :func:`period_mean` stops at the first and the last
    ``mid_date``, where edge periods are still well sampled).

    Raises
    ------
    InputError
        ``ds`` has no image-pair spans, or ``period`` is unknown.
    """
    resolve_estimator(ds, "fit")
    mid = ds[time_dim(ds)].values.astype("datetime64[ns]")
    t1, t2 = _known_spans(ds)
    last = t2.max() - np.timedelta64(1, "ns")  # spans are half-open
    reach = np.concatenate([mid, [t1.min(), last]])
    out = []
    for b in period_bins(reach, period, keep_empty=True):
        inside = (mid >= np.datetime64(b.start)) & (mid < np.datetime64(b.end))
        out.append(dataclasses.replace(b, index=np.nonzero(inside)[0]))
    return out


def bin_means(
    ds: xr.Dataset,
    bins: list[PeriodBin],
    *,
    estimator: Estimator = "auto",
    weighted: bool = True,
    within_span: bool = False,
    min_months: int = MIN_MONTHS,
    period: str = "custom",
) -> xr.Dataset:
    """:func:`period_mean` over given periods ``bins`` (``index``: the layers of each bin,
    used by ``pair-mean``; the fit evaluates its model over ``[start, end)``)."""
    est = resolve_estimator(ds, estimator)
    if est == "fit":
        res, counts = _fit_means(ds, bins, weighted, min_months)
    else:
        res, counts = _pair_means(ds, bins, weighted, within_span)
    return _label_periods(res, ds, bins, counts, period, est, weighted)


def _label_periods(res, ds, bins, counts, period: str, est: str, weighted: bool) -> xr.Dataset:
    tdim = time_dim(ds)
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
        counts,
        {"long_name": "layers (image pairs or composites) averaged in the period", "units": "1"},
    )
    how = (
        "span-aware fit of annual means and seasonal cycle"
        if est == "fit"
        else ("inverse-variance weighted mean" if weighted else "mean")
    )
    for name in ("vx", "vy", "vx_error", "vy_error"):
        if name in res:
            res[name].attrs.update(
                units="m yr-1",
                long_name=(
                    f"{'error of ' if 'error' in name else ''}period-mean "
                    f"{name[:2]} velocity ({how})"
                ),
                grid_mapping="mapping",
            )
    res["n_layers"].attrs.update(long_name="layers contributing to the period mean", units="1")
    res.attrs.update(itscube_period=period, itscube_source_time_dim=tdim, itscube_estimator=est)
    res = res.assign_coords(mapping=ds["mapping"]) if "mapping" in ds.variables else res
    if ds.rio.crs is not None:
        res = res.rio.write_crs(ds.rio.crs, grid_mapping_name="mapping")
    return res


def _amp_phase(b, c, vbb, vcc, vbc):
    """Amplitude (same units as b, c), day of year of the peak and their 1-sigma errors
    for ``b cos(2 pi t) + c sin(2 pi t)`` (t in years from :data:`FIT_EPOCH`)."""
    amp = np.hypot(b, c)
    safe = amp.where(amp > 0)
    amp_err = np.sqrt(np.maximum(b**2 * vbb + c**2 * vcc + 2 * b * c * vbc, 0)) / safe
    frac = (np.arctan2(c, b) / (2 * np.pi)) % 1.0
    phase_err = np.sqrt(np.maximum(c**2 * vbb + b**2 * vcc - 2 * b * c * vbc, 0)) / safe**2
    days = 365.25
    return amp, amp_err, 1.0 + frac * days, phase_err / (2 * np.pi) * days


def seasonal_cycle(
    ds: xr.Dataset,
    *,
    start: DateLike | None = None,
    end: DateLike | None = None,
    weighted: bool = True,
    min_months: int = MIN_MONTHS,
) -> xr.Dataset:
    """Mean velocity and seasonal cycle per pixel from the span-aware fit.

    Parameters
    ----------
    ds : sub-yearly cube (image pairs with acquisition dates or ``date_dt``), already
        restricted to the wanted layers.
    start, end : the window the mean is taken over (inclusive dates; default: the layers').
    weighted, min_months : as in :func:`period_mean`.

    Returns
    -------
    xarray.Dataset
        On ``(y, x)``: ``vx0``, ``vy0``, ``v0`` (m/yr, mean over the window) and errors;
        ``vx_amp``, ``vy_amp`` (m/yr, half the peak-to-trough range of each component),
        ``vx_phase``, ``vy_phase`` (day of year of the component's maximum, 1 = 1 January);
        ``v_amp``, ``v_phase``: the cycle of the component along the mean flow direction,
        as ITS_LIVE defines them; every amplitude and phase with ``_error`` (1 sigma, errors
        of x and y independent); ``fit_flag``; ``n_pairs``; ``chi2`` (reduced chi-square of
        the x fit: about 1 when the stated errors describe the scatter). Amplitudes and
        phases are NaN where ``fit_flag`` is not 0.

    Raises
    ------
    InputError
        The cube has no image-pair spans (annual composites carry ``v_amp`` already).
    """
    resolve_estimator(ds, "fit")
    tdim = time_dim(ds)
    bins = period_bins(ds[tdim].values, "all", start, end)
    setup = _FitSetup.of(ds)
    rows = setup.rows(bins)
    fx = _fit_component(ds, "x", setup, rows, weighted, min_months).isel(time=0)
    fy = _fit_component(ds, "y", setup, rows, weighted, min_months).isel(time=0)
    flag = xr.apply_ufunc(np.maximum, fx["flag"], fy["flag"], dask="allowed")
    seasonal = flag == FIT_FULL
    out = {}
    mps = {"units": "m yr-1", "grid_mapping": "mapping"}
    doy = {"units": "day of year", "grid_mapping": "mapping"}
    for comp, f in (("x", fx), ("y", fy)):
        amp, amp_e, ph, ph_e = _amp_phase(
            f["cos"], f["sin"], f["var_cos"], f["var_sin"], f["cov_cs"]
        )
        out[f"v{comp}0"] = (f["mean"], mps)
        if "err" in f:
            out[f"v{comp}0_error"] = (f["err"], mps)
        for name, val, attrs in (("amp", amp, mps), ("phase", ph, doy)):
            out[f"v{comp}_{name}"] = (val.where(seasonal), attrs)
        out[f"v{comp}_amp_error"] = (amp_e.where(seasonal), mps)
        out[f"v{comp}_phase_error"] = (ph_e.where(seasonal), {**doy, "units": "days"})
    speed = xr.apply_ufunc(np.hypot, fx["mean"], fy["mean"], dask="allowed")
    ux, uy = fx["mean"] / speed.where(speed > 0), fy["mean"] / speed.where(speed > 0)
    b = ux * fx["cos"] + uy * fy["cos"]
    c = ux * fx["sin"] + uy * fy["sin"]
    vbb = ux**2 * fx["var_cos"] + uy**2 * fy["var_cos"]
    vcc = ux**2 * fx["var_sin"] + uy**2 * fy["var_sin"]
    vbc = ux**2 * fx["cov_cs"] + uy**2 * fy["cov_cs"]
    amp, amp_e, ph, ph_e = _amp_phase(b, c, vbb, vcc, vbc)
    out["v0"] = (speed, mps)
    if "err" in fx:
        out["v0_error"] = (
            xr.apply_ufunc(np.hypot, ux * fx["err"], uy * fy["err"], dask="allowed"),
            mps,
        )
    out["v_amp"] = (amp.where(seasonal), mps)
    out["v_amp_error"] = (amp_e.where(seasonal), mps)
    out["v_phase"] = (ph.where(seasonal), doy)
    out["v_phase_error"] = (ph_e.where(seasonal), {**doy, "units": "days"})
    out["fit_flag"] = (
        flag.astype("uint8"),
        {"comment": "; ".join(f"{k} {m}" for k, m in FIT_FLAGS.items())},
    )
    out["n_pairs"] = (fx["n"].astype("int32"), {"units": "1"})
    out["chi2"] = (fx["chi2"].astype("float32"), {"units": "1"})
    res = xr.Dataset({k: xr.DataArray(v[0], attrs=v[1]) for k, v in out.items()})
    res = res.drop_vars("time", errors="ignore")
    res.attrs.update(
        itscube_estimator="fit",
        itscube_window=bins[0].label,
        itscube_phase_convention="day of year of the maximum (1 = 1 January; 365.25-day year)",
    )
    res = res.assign_coords(mapping=ds["mapping"]) if "mapping" in ds.variables else res
    if ds.rio.crs is not None:
        res = res.rio.write_crs(ds.rio.crs, grid_mapping_name="mapping")
    return res


def regularise(series: xr.Dataset, freq: str, estimator: Estimator = "auto") -> xr.Dataset:
    """Regular series: per bin of ``freq`` (``1MS``, ``QS``, ``YS`` or another pandas
    frequency) the mean velocity, its error and the pairs behind it, for every point at once
    (:func:`itscube.period_mean`). On image pairs the default is the span-aware fit (each
    pair counts for its own span; bins without a pair get the fitted cycle; ``fit_flag``
    per point); ``estimator="pair-mean"`` gives the ``1/error^2``-weighted mean of the
    pairs whose whole acquisition span lies inside the bin.

    Raises
    ------
    InputError
        ``freq`` is not a pandas frequency, or a bad estimator.
    """
    tdim = "mid_date" if "mid_date" in series.dims else "time"
    names = [v for v in series.data_vars if set(series[v].dims) in ({tdim}, {"point", tdim})]
    one = series[names].drop_vars(["id", "x", "y", "lon", "lat", "distance"], errors="ignore")
    for name in ("acquisition_date_img1", "acquisition_date_img2", "date_dt"):
        if name in one and "point" in one[name].dims:  # one pair: the same in every cube
            one[name] = one[name].max("point", skipna=True)
    est = resolve_estimator(one, estimator)
    try:
        mean = period_mean(one, freq, within_span=est == "pair-mean", estimator=est)
    except InputError as exc:
        if "period" not in exc.params:
            raise
        raise InputError(
            f"regularise {freq!r} is not a pandas frequency such as 1MS (months), QS or YS",
            params="regularise",
        ) from exc
    out = mean.drop_vars(["period", "mapping", "layers"], errors="ignore")
    out = out.transpose("point", "time", ...)
    for c in ("id", "x", "y", "lon", "lat", "distance"):
        if c in series.coords:
            out = out.assign_coords({c: series[c]})
    out["v"] = np.hypot(out["vx"], out["vy"])
    out["v"].attrs["units"] = "m yr-1"
    out.attrs.update(series.attrs, itscube_regularised=freq, itscube_estimator=est)
    return out


def climatology(series: xr.Dataset) -> xr.Dataset:
    """The mean annual cycle: monthly means (:func:`regularise` with ``1MS``) averaged by
    calendar month over the years, with their spread (standard deviation between years)
    and the number of years."""
    monthly = regularise(series, "MS")
    month = monthly["time"].dt.month
    grouped = monthly["v"].groupby(month)
    out = xr.Dataset(
        {
            "v": grouped.mean("time"),
            "v_spread": grouped.std("time", ddof=1),
            "years": monthly["v"].notnull().groupby(month).sum("time").astype("i4"),
        }
    ).rename({"month": "month"})
    for c in ("id", "x", "y", "lon", "lat", "distance"):
        if c in series.coords:
            out = out.assign_coords({c: series[c]})
    out["v"].attrs.update(units="m yr-1", long_name="mean speed of the calendar month")
    out["v_spread"].attrs.update(units="m yr-1", long_name="standard deviation between years")
    return out
