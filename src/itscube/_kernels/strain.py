"""Numeric kernels (numba): pure functions on arrays, no xarray, no I/O.

Arrays are ``(T, ny, nx)`` stacks of layers; ``x`` (length nx) and ``y`` (length ny) are
the pixel-centre coordinates in metres, in the order stored (ITS_LIVE ``y`` decreases
with the row index, and every derivative here divides by coordinate differences, so the
sign is right for either order). Computation is in float64, results are float32.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = [
    "COMPONENTS",
    "ERROR_COMPONENTS",
    "FASTMATH",
    "LOG_STEPS",
    "NC",
    "NE",
    "gradient_strain",
    "log_strain",
]

COMPONENTS: tuple[str, ...] = (
    "exx",
    "eyy",
    "exy",
    "rotation",
    "dilatation",
    "effective",
    "e1",
    "e2",
    "e1_angle",
    "longitudinal",
    "transverse",
    "shear",
)
ERROR_COMPONENTS: tuple[str, ...] = ("exx_error", "eyy_error", "exy_error", "dilatation_error")
FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}
"""LLVM fast-math flags without ``nnan``/``ninf``: NaN must keep propagating through gaps."""

NC = len(COMPONENTS)
NE = len(ERROR_COMPONENTS)


@njit(inline="always", cache=True, fastmath=FASTMATH)
def _atan2(y, x):
    """atan2 by an 11th-order minimax polynomial (error < 2e-6 rad, 10x faster than libm)."""
    if np.isnan(x) or np.isnan(y):
        return np.nan
    ax = abs(x)
    ay = abs(y)
    hi = max(ax, ay)
    if hi == 0.0:
        return 0.0
    a = min(ax, ay) / hi
    s = a * a
    r = a * (
        0.99997726
        + s
        * (-0.33262347 + s * (0.19354346 + s * (-0.11643287 + s * (0.05265332 - s * 0.01172120))))
    )
    if ay > ax:
        r = 1.5707963267948966 - r
    if x < 0.0:
        r = 3.141592653589793 - r
    if y < 0.0:
        r = -r
    return r


@njit(inline="always", cache=True, fastmath=FASTMATH)
def _tensor_products(exx, eyy, exy, rot, uc, vc, min2, out, t, i, j):
    """Write every component of one pixel's strain-rate tensor into ``out[:, t, i, j]``;
    the flow-aligned ones are NaN where the squared speed is below ``min2`` (no flow
    direction there) or zero."""
    out[t, 0, i, j] = exx
    out[t, 1, i, j] = eyy
    out[t, 2, i, j] = exy
    out[t, 3, i, j] = rot
    out[t, 4, i, j] = exx + eyy
    out[t, 5, i, j] = np.sqrt(exx * exx + eyy * eyy + exx * eyy + exy * exy)
    centre = 0.5 * (exx + eyy)
    radius = np.sqrt(0.25 * (exx - eyy) ** 2 + exy * exy)
    out[t, 6, i, j] = centre + radius
    out[t, 7, i, j] = centre - radius
    out[t, 8, i, j] = 28.64788975654116 * _atan2(2.0 * exy, exx - eyy)  # degrees
    s2 = uc * uc + vc * vc
    if s2 > 0.0 and s2 >= min2:
        cc = uc * uc / s2
        ss = vc * vc / s2
        sc = uc * vc / s2
        out[t, 9, i, j] = exx * cc + 2.0 * exy * sc + eyy * ss
        out[t, 10, i, j] = exx * ss - 2.0 * exy * sc + eyy * cc
        out[t, 11, i, j] = (eyy - exx) * sc + exy * (cc - ss)
    else:
        out[t, 9, i, j] = np.nan
        out[t, 10, i, j] = np.nan
        out[t, 11, i, j] = np.nan


@njit(inline="always", cache=True, fastmath=FASTMATH)
def _gradient_errors(su, sv, x, y, k, scale, out, t, i, j):
    """Independent-error propagation through the centred differences (Poinar & Andrews 2021),
    times ``scale`` (the error model's factor for correlated errors)."""
    lx = x[j + k] - x[j - k]
    ly = y[i + k] - y[i - k]
    vux = su[t, i, j + k] ** 2 + su[t, i, j - k] ** 2
    vuy = su[t, i + k, j] ** 2 + su[t, i - k, j] ** 2
    vvx = sv[t, i, j + k] ** 2 + sv[t, i, j - k] ** 2
    vvy = sv[t, i + k, j] ** 2 + sv[t, i - k, j] ** 2
    sexx = np.sqrt(vux) / abs(lx)
    seyy = np.sqrt(vvy) / abs(ly)
    out[t, NC + 0, i, j] = scale * sexx
    out[t, NC + 1, i, j] = scale * seyy
    out[t, NC + 2, i, j] = scale * 0.5 * np.sqrt(vuy / (ly * ly) + vvx / (lx * lx))
    out[t, NC + 3, i, j] = scale * np.sqrt(sexx * sexx + seyy * seyy)


@njit(inline="always", cache=True)
def _edge_row(out, t, i, k):
    """NaN the ``k``-pixel frame of row ``i`` of ``out[t]``; True if the whole row lies in it."""
    ny, nx = out.shape[2], out.shape[3]
    if i < k or i >= ny - k:
        out[t, :, i, :] = np.nan
        return True
    out[t, :, i, :k] = np.nan
    out[t, :, i, nx - k :] = np.nan
    return False


@njit(parallel=True, cache=True, fastmath=FASTMATH)
def gradient_strain(u, v, su, sv, x, y, k, with_errors, out, min_speed=0.0, err_scale=1.0):
    """Strain rates from centred differences over ``±k`` pixels, all components at once.

    Parameters
    ----------
    u, v : (T, ny, nx) velocities (m/yr).
    su, sv : (T, ny, nx) velocity errors (m/yr), may be broadcast views; ignored unless
        ``with_errors``.
    x, y : (nx,), (ny,) coordinates (m).
    k : half-baseline in pixels (>= 1).
    out : (T, NC [+ NE], ny, nx) float32 array to fill (allocate it with numpy, whose
        large allocations use transparent huge pages: first touch is 2x faster than
        numba's allocator). Filled with :data:`COMPONENTS` (1/yr; angle in degrees),
        then :data:`ERROR_COMPONENTS` if ``with_errors``; NaN within ``k`` pixels of the
        edge and wherever the stencil touches NaN.
    min_speed : speed (m/yr) below which the flow-aligned components (longitudinal,
        transverse, shear) are NaN, in the same pass (0: only where the speed is 0).
    err_scale : factor on the propagated errors (the error model's), in the same pass.
    """
    nt, ny, nx = u.shape
    min2 = min_speed * min_speed
    for r in prange(nt * ny):
        t = r // ny
        i = r % ny
        if _edge_row(out, t, i, k):
            continue
        ly = y[i + k] - y[i - k]
        for j in range(k, nx - k):
            lx = x[j + k] - x[j - k]
            dudx = (np.float64(u[t, i, j + k]) - u[t, i, j - k]) / lx
            dvdx = (np.float64(v[t, i, j + k]) - v[t, i, j - k]) / lx
            dudy = (np.float64(u[t, i + k, j]) - u[t, i - k, j]) / ly
            dvdy = (np.float64(v[t, i + k, j]) - v[t, i - k, j]) / ly
            _tensor_products(
                dudx,
                dvdy,
                0.5 * (dudy + dvdx),
                0.5 * (dvdx - dudy),
                np.float64(u[t, i, j]),
                np.float64(v[t, i, j]),
                min2,
                out,
                t,
                i,
                j,
            )
            if with_errors:
                _gradient_errors(su, sv, x, y, k, err_scale, out, t, i, j)


@njit(inline="always", cache=True, fastmath=FASTMATH)
def _bilinear(a, t, fi, fj):
    """Bilinear value of ``a[t]`` at fractional (row, col); NaN outside the grid."""
    ny, nx = a.shape[1], a.shape[2]
    if not (fi >= 0.0 and fj >= 0.0 and fi <= ny - 1 and fj <= nx - 1):
        return np.nan
    i0 = min(int(fi), ny - 2) if ny > 1 else 0
    j0 = min(int(fj), nx - 2) if nx > 1 else 0
    wi = fi - i0
    wj = fj - j0
    top = a[t, i0, j0] * (1.0 - wj) + a[t, i0, j0 + 1] * wj
    bot = a[t, i0 + 1, j0] * (1.0 - wj) + a[t, i0 + 1, j0 + 1] * wj
    return top * (1.0 - wi) + bot * wi


LOG_STEPS = 8
"""Heun (RK2) steps used to move the virtual stakes of the logarithmic method."""


@njit(inline="always", cache=True, fastmath=FASTMATH)
def _mean_speed(u, v, t, i, j, k):
    """Speed of the mean velocity of the ``(2k+1)^2`` square (NaN if it has no data)."""
    su_ = 0.0
    sv_ = 0.0
    n = 0
    for ii in range(i - k, i + k + 1):
        for jj in range(j - k, j + k + 1):
            a = u[t, ii, jj]
            b = v[t, ii, jj]
            if not (np.isnan(a) or np.isnan(b)):
                su_ += a
                sv_ += b
                n += 1
    if n == 0:
        return np.nan
    return np.sqrt((su_ / n) ** 2 + (sv_ / n) ** 2)


@njit(inline="always", cache=True, fastmath=FASTMATH)
def _move_stakes(u, v, t, px, py, qx, qy, ku, kv, x0, y0, dx, dy, total):
    """Advect the five stakes for ``total`` years with :data:`LOG_STEPS` Heun steps, in
    place; False if one meets NaN or leaves the grid."""
    dt = total / LOG_STEPS
    for _ in range(LOG_STEPS):
        for s in range(5):
            ku[s] = _bilinear(u, t, (py[s] - y0) / dy, (px[s] - x0) / dx)
            kv[s] = _bilinear(v, t, (py[s] - y0) / dy, (px[s] - x0) / dx)
            qx[s] = px[s] + dt * ku[s]
            qy[s] = py[s] + dt * kv[s]
        for s in range(5):
            u2 = _bilinear(u, t, (qy[s] - y0) / dy, (qx[s] - x0) / dx)
            v2 = _bilinear(v, t, (qy[s] - y0) / dy, (qx[s] - x0) / dx)
            px[s] = px[s] + 0.5 * dt * (ku[s] + u2)
            py[s] = py[s] + 0.5 * dt * (kv[s] + v2)
            if np.isnan(px[s]) or np.isnan(py[s]):
                return False
    return True


@njit(inline="always", cache=True, fastmath=FASTMATH)
def _stake_strain(px, py, L, total):
    """``exx, eyy, exy`` from the logarithmic strain rates of the eight stake segments."""
    la = np.log(np.hypot(px[0] - px[1], py[0] - py[1]) / L) + np.log(
        np.hypot(px[0] - px[3], py[0] - py[3]) / L
    )
    lc = np.log(np.hypot(px[0] - px[4], py[0] - py[4]) / L) + np.log(
        np.hypot(px[0] - px[2], py[0] - py[2]) / L
    )
    d0 = L * np.sqrt(2.0)
    # 45-degree segments: W->N and S->E; 135-degree: E->N and S->W
    lb = np.log(np.hypot(px[1] - px[4], py[1] - py[4]) / d0) + np.log(
        np.hypot(px[2] - px[3], py[2] - py[3]) / d0
    )
    ld = np.log(np.hypot(px[1] - px[2], py[1] - py[2]) / d0) + np.log(
        np.hypot(px[3] - px[4], py[3] - py[4]) / d0
    )
    ea = 0.5 * la / total
    eb = 0.5 * lb / total
    ec = 0.5 * lc / total
    ed = 0.5 * ld / total
    exx = 0.25 * (eb + ed - ea) + 0.75 * ec
    eyy = 0.75 * ea + 0.25 * (eb + ed - ec)
    return exx, eyy, 0.5 * (eb - ed)


@njit(parallel=True, cache=True, fastmath=FASTMATH)
def log_strain(u, v, su, sv, x, y, k, with_errors, out, min_speed=0.0, err_scale=1.0):
    """Logarithmic ("virtual stake") strain rates of Alley et al. (2018).

    Five stakes (centre and ``k`` pixels N, E, S, W) move with the bilinearly interpolated
    velocity for ``T = 0.1 k |dx| / |v_mean|`` (``v_mean``: mean velocity of the
    ``(2k+1)^2`` square, as in the reference implementation), integrated with
    :data:`LOG_STEPS` Heun steps. The logarithmic strain rates ``ln(l/l0)/T`` of the
    eight segments (two each along x, y and the two diagonals) give

    ``exx = (eb + ed - ea)/4 + 3 ec/4``, ``eyy = 3 ea/4 + (eb + ed - ec)/4``,
    ``exy = (eb - ed)/2``

    with ``a`` along y, ``c`` along x, ``b`` along the 45-degree and ``d`` along the
    135-degree diagonal (geometry in metres, so y order does not matter). ``rotation``
    comes from the centred differences over the same baseline. Requires square pixels
    and a regular grid. Same signature and outputs as :func:`gradient_strain`; a
    pixel is NaN if a stake meets NaN, leaves the grid, or the mean speed is 0.
    """
    nt, ny, nx = u.shape
    min2 = min_speed * min_speed
    dx = x[1] - x[0]
    dy = y[1] - y[0]
    h = abs(dx)
    L = k * h
    # stake offsets in metres: centre, N, E, S, W
    ox = np.array([0.0, 0.0, L, 0.0, -L])
    oy = np.array([0.0, L, 0.0, -L, 0.0])
    for r in prange(nt * ny):
        t = r // ny
        i = r % ny
        if _edge_row(out, t, i, k):
            continue
        px = np.empty(5)
        py = np.empty(5)
        qx = np.empty(5)
        qy = np.empty(5)
        ku = np.empty(5)
        kv = np.empty(5)
        for j in range(k, nx - k):
            # mean velocity of the square sets the integration time
            speed = _mean_speed(u, v, t, i, j, k)
            if not speed > 0.0:
                out[t, :, i, j] = np.nan
                continue
            total = 0.1 * L / speed
            for s in range(5):
                px[s] = x[j] + ox[s]
                py[s] = y[i] + oy[s]
            if not _move_stakes(u, v, t, px, py, qx, qy, ku, kv, x[0], y[0], dx, dy, total):
                out[t, :, i, j] = np.nan
                continue
            exx, eyy, exy = _stake_strain(px, py, L, total)
            lx = x[j + k] - x[j - k]
            ly = y[i + k] - y[i - k]
            dvdx = (np.float64(v[t, i, j + k]) - v[t, i, j - k]) / lx
            dudy = (np.float64(u[t, i + k, j]) - u[t, i - k, j]) / ly
            _tensor_products(
                exx,
                eyy,
                exy,
                0.5 * (dvdx - dudy),
                np.float64(u[t, i, j]),
                np.float64(v[t, i, j]),
                min2,
                out,
                t,
                i,
                j,
            )
            if with_errors:
                _gradient_errors(su, sv, x, y, k, err_scale, out, t, i, j)
