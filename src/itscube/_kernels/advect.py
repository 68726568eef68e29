"""Advection of points through piecewise-constant-in-time velocity fields (numba).

Bilinear interpolation at pixel centres (signed spacings, so descending ``y`` works), out to
the outer edges of the edge pixels' cells;
Euler, midpoint RK2 or RK4 steps; one field per step (``field_of_step``).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = ["ORDERS", "advect", "output_steps"]

ORDERS = {"euler": 1, "rk2": 2, "rk4": 4}
"""Order of each time-stepping method."""


@njit(inline="always", cache=True)
def _sample(U, V, F, k, x, y, gx0, gdx, gy0, gdy):
    """Bilinear (u, v, flag, code) at (x, y) from field ``k``; code 1 outside, 2 NaN.

    The domain is the grid's cells out to their outer edges: in the outer half-cell the
    edge pixels' values hold (a pixel's value covers its whole cell)."""
    ny, nx = U.shape[1], U.shape[2]
    fj = (x - gx0) / gdx
    fi = (y - gy0) / gdy
    if not (fi >= -0.5 and fj >= -0.5 and fi <= ny - 0.5 and fj <= nx - 0.5):
        return np.nan, np.nan, np.uint8(0), 1
    fi = min(max(fi, 0.0), ny - 1.0)
    fj = min(max(fj, 0.0), nx - 1.0)
    i0 = min(int(fi), ny - 2)
    j0 = min(int(fj), nx - 2)
    wi = fi - i0
    wj = fj - j0
    u = (U[k, i0, j0] * (1 - wj) + U[k, i0, j0 + 1] * wj) * (1 - wi) + (
        U[k, i0 + 1, j0] * (1 - wj) + U[k, i0 + 1, j0 + 1] * wj
    ) * wi
    v = (V[k, i0, j0] * (1 - wj) + V[k, i0, j0 + 1] * wj) * (1 - wi) + (
        V[k, i0 + 1, j0] * (1 - wj) + V[k, i0 + 1, j0 + 1] * wj
    ) * wi
    f = np.uint8(F[k, i0, j0] | F[k, i0, j0 + 1] | F[k, i0 + 1, j0] | F[k, i0 + 1, j0 + 1])
    if np.isnan(u) or np.isnan(v):
        return np.nan, np.nan, f, 2
    return u, v, f, 0


@njit(inline="always", cache=True)
def _step(U, V, F, k, x, y, u1, v1, f1, h, order, gx0, gdx, gy0, gdy):
    """One step of length ``h`` (yr, signed) from (x, y), where field ``k`` gives
    ``(u1, v1)`` with flags ``f1`` (the caller's sample, shared with the previous step's
    end): new (x, y), fill flags and stop code."""
    if order == 1:
        return x + h * u1, y + h * v1, np.uint8(f1), 0
    u2, v2, f2, c2 = _sample(U, V, F, k, x + 0.5 * h * u1, y + 0.5 * h * v1, gx0, gdx, gy0, gdy)
    if order == 2:
        return x + h * u2, y + h * v2, np.uint8(f1 | f2), c2
    u3, v3, f3, c3 = _sample(U, V, F, k, x + 0.5 * h * u2, y + 0.5 * h * v2, gx0, gdx, gy0, gdy)
    u4, v4, f4, c4 = _sample(U, V, F, k, x + h * u3, y + h * v3, gx0, gdx, gy0, gdy)
    code = max(c2, max(c3, c4))
    nx_ = x + h * (u1 + 2 * u2 + 2 * u3 + u4) / 6.0
    ny_ = y + h * (v1 + 2 * v2 + 2 * v3 + v4) / 6.0
    return nx_, ny_, np.uint8(f1 | f2 | f3 | f4), code


def output_steps(s_count: int, every: int) -> np.ndarray:
    """Indices (0..s_count) of the positions kept: every ``every``-th step and the last.

    >>> output_steps(5, 2).tolist()
    [0, 2, 4, 5]
    """
    keep = np.arange(0, s_count + 1, max(1, every))
    return keep if keep[-1] == s_count else np.append(keep, s_count)


@njit(parallel=True, cache=True, nogil=True)
def advect(x0, y0, U, V, F, gx0, gdx, gy0, gdy, dt_yr, field_of_step, order, sign, keep):
    """Move points through piecewise-constant-in-time fields.

    Parameters
    ----------
    x0, y0 : (N,) start positions (m).
    U, V : (K, ny, nx) velocity fields (m/yr); F : (K, ny, nx) uint8 fill flags.
    gx0, gdx, gy0, gdy : coordinate of pixel (0, 0) and signed spacings (m).
    dt_yr : (S,) step lengths (yr, > 0); field_of_step : (S,) field index of each step.
    order : 1 (Euler), 2 (midpoint RK2) or 4 (RK4); sign : +1 forward, -1 backward.
    keep : (M,) increasing step indices (0..S) whose positions are returned (see
        :func:`output_steps`): memory is ``N x M``, not ``N x S``.

    Returns
    -------
    X, Y : (N, M) positions (NaN after a point stops); VX, VY : (N, M) velocity at each
    position; flags : (N, M) fill flags used since the previous kept position;
    status : (N,) 0 ok, 1 out_of_domain, 2 no_data; XE, YE : (N,) last valid position;
    NS : (N,) steps completed.
    """
    n = x0.shape[0]
    s_count = dt_yr.shape[0]
    m = keep.shape[0]
    X = np.full((n, m), np.nan)
    Y = np.full((n, m), np.nan)
    VX = np.full((n, m), np.nan)
    VY = np.full((n, m), np.nan)
    flags = np.zeros((n, m), np.uint8)
    status = np.zeros(n, np.uint8)
    XE = np.full(n, np.nan)
    YE = np.full(n, np.nan)
    NS = np.zeros(n, np.int64)
    for p in prange(n):
        x = x0[p]
        y = y0[p]
        k = field_of_step[0] if s_count > 0 else 0
        u, v, f, code = _sample(U, V, F, k, x, y, gx0, gdx, gy0, gdy)
        X[p, 0] = x
        Y[p, 0] = y
        VX[p, 0] = u
        VY[p, 0] = v
        flags[p, 0] = f
        XE[p] = x
        YE[p] = y
        if code != 0:
            status[p] = code
            continue
        r = 1
        fl = np.uint8(0)
        for s in range(s_count):
            k = field_of_step[s]
            h = sign * dt_yr[s]
            nx_, ny_, f1, code = _step(U, V, F, k, x, y, u, v, f, h, order, gx0, gdx, gy0, gdy)
            fl = np.uint8(fl | f1)
            ue = np.nan
            ve = np.nan
            if code == 0:  # the end's velocity, which the next step starts from
                k2 = field_of_step[min(s + 1, s_count - 1)]
                ue, ve, f, ce = _sample(U, V, F, k2, nx_, ny_, gx0, gdx, gy0, gdy)
                if ce != 0:
                    code = ce
            if code != 0:
                status[p] = code
                break
            x = nx_
            y = ny_
            u = ue
            v = ve
            XE[p] = x
            YE[p] = y
            NS[p] = s + 1
            if r < m and keep[r] == s + 1:
                X[p, r] = x
                Y[p, r] = y
                VX[p, r] = ue
                VY[p, r] = ve
                flags[p, r] = fl
                fl = np.uint8(0)
                r += 1
    return X, Y, VX, VY, flags, status, XE, YE, NS
