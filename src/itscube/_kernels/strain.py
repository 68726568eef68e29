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
    """atan2 by an 11th-order minimax polynomial (error < 2e-6 rad, 10x faster than libm),
    branch-free (selects only) so that a loop over pixels vectorises."""
    ax = abs(x)
    ay = abs(y)
    hi = ax if ax > ay else ay
    lo = ay if ax > ay else ax
    a = lo / (hi if hi > 0.0 else 1.0)
    s = a * a
    r = a * (
        0.99997726
        + s
        * (-0.33262347 + s * (0.19354346 + s * (-0.11643287 + s * (0.05265332 - s * 0.01172120))))
    )
    r = 1.5707963267948966 - r if ay > ax else r
    r = 3.141592653589793 - r if x < 0.0 else r
    r = -r if y < 0.0 else r
    return np.nan if np.isnan(x + y) else r


# Row kernels. Each pixel loop below touches few arrays, all 1-D row views indexed from 0:
# LLVM then proves the indices non-negative (no wrap-around selects) and needs few
# run-time alias checks, so the loops vectorise (AVX2: 4 pixels per instruction). One
# loop writing all 16 outputs does not: it exceeds LLVM's alias-check budget.


@njit(inline="always", cache=True, fastmath=FASTMATH)
def _invariants_row(exx, eyy, exy, out, t, i, j0):
    """``dilatation``, ``effective``, ``e1``, ``e2``, ``e1_angle`` of one row of pixels
    (``exx, eyy, exy``: float64 row buffers) into ``out[t, 4:9, i, j0:]``."""
    m = exx.shape[0]
    o4 = out[t, 4, i, j0 : j0 + m]
    o5 = out[t, 5, i, j0 : j0 + m]
    o6 = out[t, 6, i, j0 : j0 + m]
    o7 = out[t, 7, i, j0 : j0 + m]
    o8 = out[t, 8, i, j0 : j0 + m]
    for j in range(m):
        a = exx[j]
        b = eyy[j]
        c = exy[j]
        o4[j] = a + b
        o5[j] = np.sqrt(a * a + b * b + a * b + c * c)
        centre = 0.5 * (a + b)
        radius = np.sqrt(0.25 * (a - b) ** 2 + c * c)
        o6[j] = centre + radius
        o7[j] = centre - radius
        o8[j] = 28.64788975654116 * _atan2(2.0 * c, a - b)  # degrees


@njit(inline="always", cache=True, fastmath=FASTMATH)
def _flow_row(exx, eyy, exy, u, v, min2, out, t, i, j0):
    """``longitudinal``, ``transverse``, ``shear`` of one row into ``out[t, 9:12, i, j0:]``:
    the tensor rotated into the direction of ``(u, v)[t, i, j0:]``; NaN where the squared
    speed is below ``min2`` (no flow direction there) or zero."""
    m = exx.shape[0]
    uc_ = u[t, i, j0 : j0 + m]
    vc_ = v[t, i, j0 : j0 + m]
    o9 = out[t, 9, i, j0 : j0 + m]
    o10 = out[t, 10, i, j0 : j0 + m]
    o11 = out[t, 11, i, j0 : j0 + m]
    for j in range(m):
        a = exx[j]
        b = eyy[j]
        c = exy[j]
        uc = np.float64(uc_[j])
        vc = np.float64(vc_[j])
        s2 = uc * uc + vc * vc
        inv = 1.0 / s2 if (s2 > 0.0 and s2 >= min2) else np.nan
        cc = uc * uc * inv
        ss = vc * vc * inv
        sc = uc * vc * inv
        o9[j] = a * cc + 2.0 * c * sc + b * ss
        o10[j] = a * ss - 2.0 * c * sc + b * cc
        o11[j] = (b - a) * sc + c * (cc - ss)


@njit(inline="always", cache=True, fastmath=FASTMATH)
def _pixel_errors(vux, vuy, vvx, vvy, alx, aly, scale, p0, p1, p2, p3, j):
    """The four errors of pixel ``j`` from the summed squared errors at the stencil ends
    (``u`` along x and y, ``v`` along x and y) and the inverse baselines ``1/|L|``."""
    sexx = np.sqrt(vux) * alx
    seyy = np.sqrt(vvy) * aly
    p0[j] = scale * sexx
    p1[j] = scale * seyy
    p2[j] = scale * 0.5 * np.sqrt(vuy * aly * aly + vvx * alx * alx)
    p3[j] = scale * np.sqrt(sexx * sexx + seyy * seyy)


@njit(inline="always", cache=True, fastmath=FASTMATH)
def _errors_row(su, sv, inv_lx, inv_ly, k, scale, out, t, i):
    """Independent-error propagation through the centred differences (Poinar & Andrews
    2021), times ``scale`` (the error model's factor), for row ``i`` into
    ``out[t, NC:, i, k:-k]``. ``su``/``sv`` are whole maps, or ``(T, 1, 1)`` when the
    errors are one value per layer (ITS_LIVE's ``vx_error``)."""
    m = inv_lx.shape[0]
    p0 = out[t, NC, i, k : k + m]
    p1 = out[t, NC + 1, i, k : k + m]
    p2 = out[t, NC + 2, i, k : k + m]
    p3 = out[t, NC + 3, i, k : k + m]
    aly = abs(inv_ly)
    if su.shape[1] == 1 and su.shape[2] == 1:
        vu = 2.0 * np.float64(su[t, 0, 0]) ** 2
        vv = 2.0 * np.float64(sv[t, 0, 0]) ** 2
        for j in range(m):
            _pixel_errors(vu, vu, vv, vv, abs(inv_lx[j]), aly, scale, p0, p1, p2, p3, j)
        return
    uE, uW = su[t, i, 2 * k : 2 * k + m], su[t, i, :m]
    uN, uS = su[t, i + k, k : k + m], su[t, i - k, k : k + m]
    vE, vW = sv[t, i, 2 * k : 2 * k + m], sv[t, i, :m]
    vN, vS = sv[t, i + k, k : k + m], sv[t, i - k, k : k + m]
    for j in range(m):
        vux = np.float64(uE[j]) ** 2 + np.float64(uW[j]) ** 2
        vuy = np.float64(uN[j]) ** 2 + np.float64(uS[j]) ** 2
        vvx = np.float64(vE[j]) ** 2 + np.float64(vW[j]) ** 2
        vvy = np.float64(vN[j]) ** 2 + np.float64(vS[j]) ** 2
        _pixel_errors(vux, vuy, vvx, vvy, abs(inv_lx[j]), aly, scale, p0, p1, p2, p3, j)


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


@njit(cache=True)
def _inverse_baselines(x, k):
    """``1 / (x[j + 2k] - x[j])`` for the pixels ``j + k`` with a full ``±k`` stencil."""
    m = x.shape[0] - 2 * k
    inv = np.empty(max(m, 0))
    for j in range(m):
        inv[j] = 1.0 / (x[j + 2 * k] - x[j])
    return inv


@njit(parallel=True, cache=True, nogil=True, fastmath=FASTMATH)
def gradient_strain(u, v, su, sv, x, y, k, with_errors, out, min_speed=0.0, err_scale=1.0):
    """Strain rates from centred differences over ``±k`` pixels, all components at once.

    Parameters
    ----------
    u, v : (T, ny, nx) velocities (m/yr).
    su, sv : (T, ny, nx) velocity errors (m/yr), or ``(T, 1, 1)`` for one error per
        layer; ignored unless ``with_errors``.
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

    Each row of each layer is one task: the tensor (``exx, eyy, exy``, rotation) in one
    vectorised loop over the row, kept in float64 row buffers, then the invariants, the
    flow-aligned components and the errors in three more loops over the same row (which
    is still in cache). Differences are taken in float64; results are float32.
    """
    nt, ny = u.shape[0], u.shape[1]
    min2 = min_speed * min_speed
    inv_lx = _inverse_baselines(x, k)
    m = inv_lx.shape[0]
    for r in prange(nt * ny):
        t = r // ny
        i = r % ny
        if _edge_row(out, t, i, k):
            continue
        inv_ly = 1.0 / (y[i + k] - y[i - k])
        exx = np.empty(m)
        eyy = np.empty(m)
        exy = np.empty(m)
        uE, uW = u[t, i, 2 * k : 2 * k + m], u[t, i, :m]
        uN, uS = u[t, i + k, k : k + m], u[t, i - k, k : k + m]
        vE, vW = v[t, i, 2 * k : 2 * k + m], v[t, i, :m]
        vN, vS = v[t, i + k, k : k + m], v[t, i - k, k : k + m]
        o0 = out[t, 0, i, k : k + m]
        o1 = out[t, 1, i, k : k + m]
        o2 = out[t, 2, i, k : k + m]
        o3 = out[t, 3, i, k : k + m]
        for j in range(m):
            dudx = (np.float64(uE[j]) - uW[j]) * inv_lx[j]
            dvdx = (np.float64(vE[j]) - vW[j]) * inv_lx[j]
            dudy = (np.float64(uN[j]) - uS[j]) * inv_ly
            dvdy = (np.float64(vN[j]) - vS[j]) * inv_ly
            exx[j] = dudx
            eyy[j] = dvdy
            exy[j] = 0.5 * (dudy + dvdx)
            o0[j] = dudx
            o1[j] = dvdy
            o2[j] = exy[j]
            o3[j] = 0.5 * (dvdx - dudy)
        _invariants_row(exx, eyy, exy, out, t, i, k)
        _flow_row(exx, eyy, exy, u, v, min2, out, t, i, k)
        if with_errors:
            _errors_row(su, sv, inv_lx, inv_ly, k, err_scale, out, t, i)


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


@njit(parallel=True, cache=True, nogil=True, fastmath=FASTMATH)
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
    nt, ny = u.shape[0], u.shape[1]
    min2 = min_speed * min_speed
    dx = x[1] - x[0]
    dy = y[1] - y[0]
    h = abs(dx)
    L = k * h
    # stake offsets in metres: centre, N, E, S, W
    ox = np.array([0.0, 0.0, L, 0.0, -L])
    oy = np.array([0.0, L, 0.0, -L, 0.0])
    inv_lx = _inverse_baselines(x, k)
    m = inv_lx.shape[0]
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
        exx = np.full(m, np.nan)
        eyy = np.full(m, np.nan)
        exy = np.full(m, np.nan)
        inv_ly = 1.0 / (y[i + k] - y[i - k])
        for jj in range(m):
            j = jj + k
            # mean velocity of the square sets the integration time
            speed = _mean_speed(u, v, t, i, j, k)
            out[t, 3, i, j] = np.nan
            if not speed > 0.0:
                continue
            total = 0.1 * L / speed
            for s in range(5):
                px[s] = x[j] + ox[s]
                py[s] = y[i] + oy[s]
            if not _move_stakes(u, v, t, px, py, qx, qy, ku, kv, x[0], y[0], dx, dy, total):
                continue
            exx[jj], eyy[jj], exy[jj] = _stake_strain(px, py, L, total)
            dvdx = (np.float64(v[t, i, j + k]) - v[t, i, j - k]) * inv_lx[jj]
            dudy = (np.float64(u[t, i + k, j]) - u[t, i - k, j]) * inv_ly
            out[t, 3, i, j] = 0.5 * (dvdx - dudy)
        for jj in range(m):
            out[t, 0, i, jj + k] = exx[jj]
            out[t, 1, i, jj + k] = eyy[jj]
            out[t, 2, i, jj + k] = exy[jj]
        _invariants_row(exx, eyy, exy, out, t, i, k)
        _flow_row(exx, eyy, exy, u, v, min2, out, t, i, k)
        if with_errors:
            _errors_row(su, sv, inv_lx, inv_ly, k, err_scale, out, t, i)
            for jj in range(m):  # no strain, no error: where a stake failed
                if np.isnan(exx[jj]):
                    out[t, NC:, i, jj + k] = np.nan
