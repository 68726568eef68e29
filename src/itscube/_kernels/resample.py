"""Resampling of gridded stacks at fractional pixel positions (numpy, no xarray).

Positions are fractional row/column indices into the source grid (pixel centres at
integers). A position more than half a pixel outside the grid is outside (NaN).
"""

from __future__ import annotations

import numpy as np

__all__ = ["bilinear", "nearest"]

MIN_WEIGHT = 0.5
"""NaN-aware bilinear: the least share of the four weights that must fall on valid
pixels; below it the output is NaN (no extrapolation into gaps or past edges)."""


def _outside(ri: np.ndarray, ci: np.ndarray, ny: int, nx: int) -> np.ndarray:
    return ~((ri >= -0.5) & (ri <= ny - 0.5) & (ci >= -0.5) & (ci <= nx - 0.5))


def bilinear(values: np.ndarray, ri: np.ndarray, ci: np.ndarray) -> np.ndarray:
    """NaN-aware bilinear values of ``values`` (``(..., ny, nx)``) at positions ``(ri, ci)``
    (any shape ``S``); returns ``(..., *S)`` float32.

    The weights of NaN neighbours are dropped and the rest renormalised, where they hold at
    least :data:`MIN_WEIGHT` of the total; else NaN. Exact for fields linear in x and y.
    """
    values = np.asarray(values)
    ny, nx = values.shape[-2:]
    r0 = np.floor(ri).astype(np.int64)
    c0 = np.floor(ci).astype(np.int64)
    fr, fc = ri - r0, ci - c0
    lead = values.shape[:-2]
    num = np.zeros((*lead, *ri.shape), "f8")
    den = np.zeros((*lead, *ri.shape), "f8")
    for dr, wr in ((0, 1 - fr), (1, fr)):
        for dc, wc in ((0, 1 - fc), (1, fc)):
            rr = np.clip(r0 + dr, 0, ny - 1)
            cc = np.clip(c0 + dc, 0, nx - 1)
            v = values[..., rr, cc].astype("f8")
            w = np.broadcast_to(wr * wc, v.shape)
            ok = np.isfinite(v)
            num += np.where(ok, v * w, 0.0)
            den += np.where(ok, w, 0.0)
    out = np.where(den >= MIN_WEIGHT, num / np.where(den > 0, den, 1.0), np.nan)
    out[..., _outside(ri, ci, ny, nx)] = np.nan
    return out.astype("f4")


def nearest(values: np.ndarray, ri: np.ndarray, ci: np.ndarray) -> np.ndarray:
    """Values of the pixel holding each position (``(..., *S)``, the input dtype; positions
    outside the grid take the fill: NaN for floats, the first value otherwise)."""
    values = np.asarray(values)
    ny, nx = values.shape[-2:]
    rr = np.clip(np.floor(ri + 0.5).astype(np.int64), 0, ny - 1)
    cc = np.clip(np.floor(ci + 0.5).astype(np.int64), 0, nx - 1)
    out = values[..., rr, cc]
    if out.dtype.kind == "f":
        out = out.copy()
        out[..., _outside(ri, ci, ny, nx)] = np.nan
    return out
