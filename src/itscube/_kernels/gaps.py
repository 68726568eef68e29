"""Gap filling of velocity maps: harmonic (Laplace) inpainting within a radius, and the
nearest-in-time fallback of composite series (numpy/scipy)."""

from __future__ import annotations

import numpy as np
import scipy.ndimage as ndi
import scipy.sparse as sp
import scipy.sparse.linalg as spla

__all__ = ["fill_gaps_2d", "fill_stack", "fill_time_space"]


def fill_gaps_2d(a: np.ndarray, radius: float) -> np.ndarray:
    """Fill NaN pixels lying within ``radius`` pixels of valid data; others stay NaN.

    Filled values solve Laplace's equation with the surrounding valid pixels as boundary
    values (4-neighbour stencil; neighbours that stay NaN or lie outside the grid impose a
    zero-gradient condition). Harmonic filling reproduces any linear field exactly and
    never overshoots the values around the gap.

    Parameters
    ----------
    a : 2-D array (NaN marks gaps).
    radius : largest Euclidean distance (pixels) from valid data at which a gap is filled.
    """
    a = np.asarray(a)
    gap = np.isnan(a)
    if not gap.any() or gap.all():
        return a.copy()
    dist = ndi.distance_transform_edt(gap)
    fill = gap & (dist <= radius)
    if not fill.any():
        return a.copy()
    ny, nx = a.shape
    idx = -np.ones(a.shape, dtype=np.int64)
    fi, fj = np.nonzero(fill)
    n = len(fi)
    idx[fi, fj] = np.arange(n)
    rows, cols, vals = [], [], []
    diag = np.zeros(n)
    rhs = np.zeros(n)
    known = ~gap
    for di, dj in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        ni, nj = fi + di, fj + dj
        inside = (ni >= 0) & (ni < ny) & (nj >= 0) & (nj < nx)
        ni_c, nj_c = np.clip(ni, 0, ny - 1), np.clip(nj, 0, nx - 1)
        is_known = inside & known[ni_c, nj_c]
        is_unknown = inside & fill[ni_c, nj_c]
        diag += is_known | is_unknown
        rhs += np.where(is_known, np.nan_to_num(a[ni_c, nj_c].astype("f8")), 0.0)
        sel = np.nonzero(is_unknown)[0]
        rows.append(sel)
        cols.append(idx[ni_c[sel], nj_c[sel]])
        vals.append(-np.ones(len(sel)))
    A = sp.csr_matrix(
        (
            np.concatenate([diag, *vals]),
            (np.concatenate([np.arange(n), *rows]), np.concatenate([np.arange(n), *cols])),
        ),
        shape=(n, n),
    )
    sol = spla.spsolve(A, rhs)
    out = a.astype("f8", copy=True)
    out[fi, fj] = sol
    return out.astype(a.dtype)


def fill_stack(a: np.ndarray, radius: float) -> np.ndarray:
    """:func:`fill_gaps_2d` on every map of a ``(..., ny, nx)`` stack."""
    flat = a.reshape(-1, *a.shape[-2:])
    out = np.stack([fill_gaps_2d(layer, radius) for layer in flat]) if len(flat) else flat
    return out.reshape(a.shape)


def fill_time_space(U: np.ndarray, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """Fill gaps: nearest composite in time first (flag 1), then space within ``radius``
    pixels (flag 2). Returns (filled fields, uint8 flags)."""
    U = np.array(U, dtype="f8")
    flags = np.zeros(U.shape, np.uint8)
    valid = np.isfinite(U)
    K = U.shape[0]
    if K > 1:
        idx = np.arange(K)[:, None, None]
        # index of the nearest valid composite in time at every pixel
        big = K * 10
        prev = np.where(valid, idx, -big)
        prev = np.maximum.accumulate(prev, axis=0)
        nxt = np.where(valid, idx, 2 * big)
        nxt = np.minimum.accumulate(nxt[::-1], axis=0)[::-1]
        choose = np.where(idx - prev <= nxt - idx, prev, nxt)
        ok = (choose >= 0) & (choose < K) & ~valid
        src = np.clip(choose, 0, K - 1)
        filled = np.take_along_axis(U, src, axis=0)
        U = np.where(ok, filled, U)
        flags[ok] = 1
    if radius and radius > 0:
        for k in range(K):
            gap = ~np.isfinite(U[k])
            if gap.any():
                U[k] = fill_gaps_2d(U[k], radius)
                flags[k][gap & np.isfinite(U[k])] = 2
    return U, flags
