"""Span-aware weighted least squares of image-pair velocities (numpy, vectorised over pixels).

Each image pair measures the velocity averaged over its own span ``[t1, t2]``. The model
is ITS_LIVE's "sinusoidal interannual" one (Gardner's error-weighted fit of discrete
interval data, used for ITS_LIVE's annual composites): one mean per calendar year plus a
common annual sinusoid,

    m(t) = a_k (t in year k) + b cos(2 pi t) + c sin(2 pi t),   t in years,

and a pair is modelled by the span average of ``m``: the row of the design matrix holds
the fraction of the span in each year, then ``(sin 2 pi t2 - sin 2 pi t1) / (2 pi L)`` and
``-(cos 2 pi t2 - cos 2 pi t1) / (2 pi L)`` with ``L = t2 - t1``. The fit is linear in the
parameters, so each pixel is one weighted least squares (weights ``1 / sigma**2``). The
mean of the model over any period is the same kind of row (:func:`span_design`) times
the parameters, and its variance the row's quadratic form with the covariance.

Times are in years of 365.25 days from an epoch chosen by the caller.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "FIT_FEW_PAIRS",
    "FIT_FULL",
    "FIT_NO_SEASON",
    "fit_span_model",
    "model_means",
    "span_design",
]

FIT_FULL = 0
"""Flag: annual means and the seasonal cycle were fitted."""
FIT_NO_SEASON = 1
"""Flag: too little seasonal sampling; annual means fitted without a seasonal term."""
FIT_FEW_PAIRS = 2
"""Flag: fewer valid pairs than parameters (plus the required margin); no fit."""

_TINY_SPAN = 1e-9


def span_design(t1: np.ndarray, t2: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Design rows (n, K) of spans ``[t1, t2]`` (years) for year columns bounded by
    ``edges`` (K - 2 + 1 increasing year starts, years) and the two seasonal columns.

    >>> d = span_design(np.array([0.0]), np.array([1.0]), np.array([0.0, 1.0]))
    >>> (np.round(d, 12) + 0.0).tolist()  # a whole year: all in year 0, the cycle averages out
    [[1.0, 0.0, 0.0]]
    """
    t1 = np.asarray(t1, dtype="f8")
    t2 = np.asarray(t2, dtype="f8")
    lo, hi = np.minimum(t1, t2), np.maximum(t1, t2)
    length = hi - lo
    short = length < _TINY_SPAN
    safe = np.where(short, 1.0, length)
    k = len(edges) - 1
    out = np.zeros((len(lo), k + 2))
    for j in range(k):
        overlap = np.clip(np.minimum(hi, edges[j + 1]) - np.maximum(lo, edges[j]), 0.0, None)
        inside = (lo >= edges[j]) & (lo < edges[j + 1])
        out[:, j] = np.where(short, inside.astype("f8"), overlap / safe)
    w = 2.0 * np.pi
    out[:, k] = np.where(short, np.cos(w * lo), (np.sin(w * hi) - np.sin(w * lo)) / (w * safe))
    out[:, k + 1] = np.where(short, np.sin(w * lo), -(np.cos(w * hi) - np.cos(w * lo)) / (w * safe))
    return out


def fit_span_model(v, w, design, month, min_months, margin):
    """Per-pixel weighted least squares of ``v`` (T, P) with weights ``w`` (T, P; 0 where
    a pair is missing) on ``design`` (T, K; the last two columns seasonal).

    ``month`` (T,) is the calendar month (0-11) of pairs short enough to resolve the
    season, else -1: a pixel whose valid short pairs sample fewer than ``min_months``
    months is fitted without the seasonal columns (flag 1). A pixel with fewer than
    ``n_params + margin`` valid pairs, or whose normal matrix is singular, is not fitted
    (flag 2). Year columns no valid pair touches are left out (``covered`` False).

    Vectorised over pixels: the normal matrices of all pixels are one matrix product
    (``w.T @ (d_k d_l)``) and one batched solve; no compilation at first use.

    Returns ``beta`` (P, K), ``cov`` (P, K, K), ``covered`` (P, K), ``flag`` (P,),
    ``n`` (P,) valid pairs and ``chi2`` (P,) the reduced chi-square of the fit.
    """
    v = np.asarray(v, dtype="f8")
    T, P = v.shape
    K = design.shape[1]
    ok = (np.asarray(w) > 0) & np.isfinite(v)
    W = np.where(ok, w, 0.0)
    V = np.where(ok, v, 0.0)
    n = ok.sum(axis=0)
    sampled = np.zeros(P, np.int64)
    for m in range(12):
        sel = month == m
        if sel.any():
            sampled += ok[sel].any(axis=0)
    seasonal = sampled >= min_months
    active = (np.abs(design).T @ ok) > 1e-9  # (K, P): columns some valid pair touches
    active[K - 2 :] = seasonal
    outer = (design[:, :, None] * design[:, None, :]).reshape(T, K * K)
    N = (W.T @ outer).reshape(P, K, K)
    r = (W * V).T @ design  # (P, K)
    off = ~active.T  # (P, K): columns held at zero
    N = np.where(off[:, :, None] | off[:, None, :], 0.0, N)
    N[:, np.arange(K), np.arange(K)] += off  # identity rows for the columns left out
    r = np.where(off, 0.0, r)
    fitted = (n >= active.sum(axis=0) + margin) & active.any(axis=0)
    cov = np.full((P, K, K), np.nan)
    cov[fitted] = _batched_inverse(N[fitted])
    fitted &= np.isfinite(cov).all(axis=(1, 2))
    cov = np.where(off[:, :, None] | off[:, None, :], 0.0, cov)
    beta = np.einsum("pkl,pl->pk", cov, r)
    beta[~fitted] = np.nan
    cov[~fitted] = np.nan
    resid = W * (v - design @ np.nan_to_num(beta).T) ** 2
    dof = n - active.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        chi2 = np.where(fitted & (dof > 0), np.where(ok, resid, 0.0).sum(axis=0) / dof, np.nan)
    covered = active.T.copy()
    covered[:, K - 2 :] = True
    flag = np.where(fitted, np.where(seasonal, FIT_FULL, FIT_NO_SEASON), FIT_FEW_PAIRS)
    return beta, cov, covered, flag.astype(np.uint8), n.astype(np.int32), chi2


def _batched_inverse(mats: np.ndarray) -> np.ndarray:
    """Inverses of (M, K, K) matrices; NaN for the singular ones."""
    try:
        return np.linalg.inv(mats)
    except np.linalg.LinAlgError:
        out = np.full(mats.shape, np.nan)
        for i, m in enumerate(mats):
            try:
                out[i] = np.linalg.inv(m)
            except np.linalg.LinAlgError:
                continue
        return out


def model_means(beta, cov, covered, rows):
    """Means (Q, P) and their standard errors of the fitted model over the periods whose
    design ``rows`` (Q, K) come from :func:`span_design`; NaN where a period touches a
    year column the pixel's pairs do not cover, or where the pixel was not fitted."""
    mean = rows @ beta.T
    var = np.einsum("qk,pkl,ql->qp", rows, cov, rows, optimize=True)
    k = rows.shape[1] - 2
    touches = (np.abs(rows[:, :k]) > 1e-12).astype("f8") @ (~covered[:, :k]).astype("f8").T
    bad = (touches > 0) | ~np.isfinite(mean)
    mean = np.where(bad, np.nan, mean)
    err = np.where(bad, np.nan, np.sqrt(np.clip(var, 0.0, None)))
    return mean, err
