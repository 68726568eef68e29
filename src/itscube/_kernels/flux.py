"""Finite-volume flux kernels on regular grids (numpy; see :mod:`itscube.flux` for the
discretisation and the conventions).

Arrays are ``(..., ny, nx)``; spacings ``dx``/``dy`` are signed (descending ``y`` works).
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import convolve1d

__all__ = [
    "boundary_face_flux",
    "boundary_weights",
    "correlated_variance",
    "divergence_error",
    "divergence_fv",
    "face_fluxes",
    "flux_cells",
]


def face_fluxes(h, u, v, dx, dy, scheme="centred"):
    """Physical face fluxes (m^2/yr): toward +x between columns j, j+1 (..., ny, nx-1) and
    toward +y between rows i, i+1 (..., ny-1, nx).

    >>> fx, fy = face_fluxes(np.full((3, 3), 100.0), np.full((3, 3), 10.0),
    ...                      np.zeros((3, 3)), 120.0, -120.0)
    >>> fx.shape, float(fx[0, 0]), float(abs(fy).max())
    ((3, 2), 1000.0, 0.0)
    """
    uf = 0.5 * (u[..., :, 1:] + u[..., :, :-1])
    vf = 0.5 * (v[..., 1:, :] + v[..., :-1, :])
    if scheme == "upwind":  # thickness of the cell the ice comes from
        hx = np.where(uf * dx > 0, h[..., :, :-1], h[..., :, 1:])
        hy = np.where(vf * dy > 0, h[..., :-1, :], h[..., 1:, :])
    else:
        hx = 0.5 * (h[..., :, 1:] + h[..., :, :-1])
        hy = 0.5 * (h[..., 1:, :] + h[..., :-1, :])
    return hx * uf, hy * vf


def divergence_fv(h, u, v, dx, dy, scheme="centred"):
    """Finite-volume ``div(h (u, v))`` (m/yr for h in m, u in m/yr).

    Returns ``(div, fx, fy)``: cell divergences (..., ny, nx) with a NaN outer ring, and the
    face fluxes of :func:`face_fluxes`. ``(fy[i+1/2] - fy[i-1/2]) / dy`` is the net outflow
    per area for either y order, because ``dy`` keeps its sign.

    >>> x = np.arange(5) * 100.0
    >>> u = np.tile(0.01 * x, (5, 1))          # du/dx = 0.01 /yr
    >>> div, _, _ = divergence_fv(np.ones((5, 5)), u, np.zeros((5, 5)), 100.0, 100.0)
    >>> float(div[2, 2])
    0.01
    """
    h, u, v = (np.asarray(a, "f8") for a in (h, u, v))
    fx, fy = face_fluxes(h, u, v, dx, dy, scheme)
    div = np.full(np.broadcast_shapes(h.shape, u.shape), np.nan)
    div[..., 1:-1, 1:-1] = (fx[..., 1:-1, 1:] - fx[..., 1:-1, :-1]) / dx + (
        fy[..., 1:, 1:-1] - fy[..., :-1, 1:-1]
    ) / dy
    return div, fx, fy


def divergence_error(h, u, v, sh, su, sv, dx, dy):
    """Uncertainty of the divergence (m/yr) from thickness and velocity errors: per cell
    ``s_q^2 = (h s_u)^2 + (u s_h)^2``, the two opposite faces combined as for a centred
    difference."""
    sqx2 = (h * su) ** 2 + (u * sh) ** 2
    sqy2 = (h * sv) ** 2 + (v * sh) ** 2
    out = np.full(np.broadcast_shapes(np.shape(h), np.shape(u), np.shape(su)), np.nan)
    out[..., 1:-1, 1:-1] = np.sqrt(
        (sqx2[..., 1:-1, 2:] + sqx2[..., 1:-1, :-2]) / (2 * dx) ** 2
        + (sqy2[..., 2:, 1:-1] + sqy2[..., :-2, 1:-1]) / (2 * dy) ** 2
    )
    return out


def boundary_face_flux(mask, fx, fy, dx, dy):
    """Net outflow (m^3/yr) through the faces between masked and unmasked cells.

    By the discrete Gauss theorem this equals the sum of ``divergence * cell area`` over
    ``mask`` (when no masked cell is NaN).
    """
    m = mask.astype("f8")
    ex = (m[..., :, :-1] - m[..., :, 1:]) * np.sign(dx)  # +1: the outside cell lies toward +x
    ey = (m[..., :-1, :] - m[..., 1:, :]) * np.sign(dy)
    tx = np.where(ex != 0, fx * ex, 0.0).sum(axis=(-2, -1))
    ty = np.where(ey != 0, fy * ey, 0.0).sum(axis=(-2, -1))
    return tx * abs(dy) + ty * abs(dx)


def flux_cells(h, u, v, sh, su, sv, *, mask, dx, dy, scheme, on_grid, with_errors):
    """Everything the flux products need from one stack of velocity maps, in one pass.

    Parameters
    ----------
    h, sh : thickness and its error (ny, nx), m.
    u, v, su, sv : velocities and errors (..., ny, nx), m/yr.
    mask : cells to integrate (ny, nx) bool, or None.
    dx, dy : signed spacings (m).
    scheme : ``"centred"`` or ``"upwind"``.
    on_grid : share of the boundary polygon's area on the grid (0..1).
    with_errors : compute the divergence error (else NaN).

    Returns
    -------
    tuple
        ``flux_x``, ``flux_y``, ``div``, ``div_error`` (..., ny, nx) float32, then per
        leading index ``integrated`` (m^3/yr), ``face_flux`` (m^3/yr), ``cells`` (number of
        cells integrated) and ``coverage`` (share of the polygon's area with data).
    """
    u, v = np.asarray(u, "f8"), np.asarray(v, "f8")
    h = np.asarray(h, "f8")
    div, fx, fy = divergence_fv(h, u, v, dx, dy, scheme)
    if with_errors:
        err = divergence_error(h, u, v, np.asarray(sh, "f8"), su, sv, abs(dx), abs(dy))
    else:
        err = np.full(div.shape, np.nan)
    lead = div.shape[:-2]
    integ, faces, cells, coverage = (np.full(lead, np.nan) for _ in range(4))
    if mask is not None:
        m = mask & np.isfinite(div)  # each map its own covered cells: exact Gauss
        cells = m.sum(axis=(-2, -1)).astype("f8")
        integ = np.where(m, div, 0.0).sum(axis=(-2, -1)) * abs(dx * dy)
        faces = boundary_face_flux(m, fx, fy, dx, dy)
        coverage = np.minimum(1.0, on_grid * cells / mask.sum())
    return (
        (h * u).astype("f4"),
        (h * v).astype("f4"),
        div.astype("f4"),
        err.astype("f4"),
        integ,
        faces,
        cells,
        coverage,
    )


def boundary_weights(mask, h, u, v, dx, dy, scheme="centred"):
    """Weights of the net boundary outflow (:func:`boundary_face_flux`) on the cell values
    (ny, nx): ``face_flux = sum(gu * u) + sum(gv * v)`` exactly for the centred scheme
    (for the upwind one, with the upwind cells held as they are), and a thickness change
    ``dh`` changes it by ``sum(gh * dh)`` (exactly: the flux is linear in h).

    >>> m = np.zeros((4, 4), bool); m[1:3, 1:3] = True
    >>> one, zero = np.ones((4, 4)), np.zeros((4, 4))
    >>> gu, gv, gh = boundary_weights(m, one, one, zero, 1.0, 1.0)
    >>> float((gu * 1.0).sum()), float(gu[1, 0]), float(gu[1, 2])
    (0.0, -0.5, 0.5)
    """
    m = mask.astype("f8")
    ex = (m[:, :-1] - m[:, 1:]) * np.sign(dx)  # outward +x face weight (see boundary_face_flux)
    ey = (m[:-1, :] - m[1:, :]) * np.sign(dy)
    uf = 0.5 * (u[:, 1:] + u[:, :-1])
    vf = 0.5 * (v[1:, :] + v[:-1, :])
    gu, gv, gh = np.zeros(m.shape), np.zeros(m.shape), np.zeros(m.shape)
    if scheme == "upwind":
        from_left = uf * dx > 0
        from_low = vf * dy > 0
        hx = np.where(from_left, h[:, :-1], h[:, 1:])
        hy = np.where(from_low, h[:-1, :], h[1:, :])
    else:
        hx = 0.5 * (h[:, 1:] + h[:, :-1])
        hy = 0.5 * (h[1:, :] + h[:-1, :])
    cx = np.where(ex != 0, ex * abs(dy), 0.0)
    cy = np.where(ey != 0, ey * abs(dx), 0.0)
    for g, c, hf in ((gu, cx, hx), (gv, cy, hy)):
        w = np.nan_to_num(c * hf) * 0.5
        if g is gu:
            g[:, :-1] += w
            g[:, 1:] += w
        else:
            g[:-1, :] += w
            g[1:, :] += w
    qx = np.nan_to_num(cx * uf)  # sensitivity of each face's flux to its thickness
    qy = np.nan_to_num(cy * vf)
    if scheme == "upwind":
        gh[:, :-1] += np.where(from_left, qx, 0.0)
        gh[:, 1:] += np.where(from_left, 0.0, qx)
        gh[:-1, :] += np.where(from_low, qy, 0.0)
        gh[1:, :] += np.where(from_low, 0.0, qy)
    else:
        gh[:, :-1] += 0.5 * qx
        gh[:, 1:] += 0.5 * qx
        gh[:-1, :] += 0.5 * qy
        gh[1:, :] += 0.5 * qy
    return gu, gv, gh


def correlated_variance(g, s, dx, dy, length, offset):
    """Variance of ``sum(g * e)`` for errors ``e = s * (offset * d + sqrt(1 - offset^2) * n)``:
    ``d`` one standard-normal draw for the whole map, ``n`` a unit-variance field with the
    Gaussian correlation ``exp(-r^2 / (2 length^2))`` (r and ``length`` in m; 0: independent
    pixels). ``g`` and ``s`` are (ny, nx) on a grid of spacings ``dx``, ``dy`` (m).

    >>> g = np.ones((1, 4)); s = np.ones((1, 4))
    >>> independent = correlated_variance(g, s, 1.0, 1.0, 0.0, 0.0)
    >>> float(independent), float(correlated_variance(g, s, 1.0, 1.0, 0.0, 1.0))
    (4.0, 16.0)
    """
    gs = np.nan_to_num(np.asarray(g, "f8") * np.asarray(s, "f8"))
    total = offset**2 * gs.sum() ** 2
    if length > 0:
        smooth = gs
        for axis, step in ((-1, abs(dx)), (-2, abs(dy))):
            r = int(np.ceil(4 * length / step))
            d = np.arange(-r, r + 1) * step
            smooth = convolve1d(
                smooth, np.exp(-(d**2) / (2 * length**2)), axis=axis, mode="constant"
            )
        noise = float((gs * smooth).sum())
    else:
        noise = float((gs**2).sum())
    return total + (1 - offset**2) * noise
