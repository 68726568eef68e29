"""The vectorised row kernel against a plain numpy transcription of the formulas (module
docstring of :mod:`itscube.strain`), on rough fields with gaps, uneven spacing and both
error layouts: the reference shares no code with the kernel."""

from __future__ import annotations

import numpy as np
import pytest

from itscube._kernels import strain as K


def _reference(u, v, su, sv, x, y, k, min_speed):
    """Every component and error by numpy slicing, in float64."""
    u, v, su, sv = (np.asarray(a, "f8") for a in (u, v, su, sv))
    c = (slice(None), slice(k, -k), slice(k, -k))
    lx = (x[2 * k :] - x[: -2 * k])[None, None, :]
    ly = (y[2 * k :] - y[: -2 * k])[None, :, None]
    dudx = (u[:, k:-k, 2 * k :] - u[:, k:-k, : -2 * k]) / lx
    dvdx = (v[:, k:-k, 2 * k :] - v[:, k:-k, : -2 * k]) / lx
    dudy = (u[:, 2 * k :, k:-k] - u[:, : -2 * k, k:-k]) / ly
    dvdy = (v[:, 2 * k :, k:-k] - v[:, : -2 * k, k:-k]) / ly
    exx, eyy, exy = dudx, dvdy, 0.5 * (dudy + dvdx)
    rad = np.sqrt(0.25 * (exx - eyy) ** 2 + exy**2)
    uc, vc = u[c], v[c]
    s2 = uc**2 + vc**2
    with np.errstate(divide="ignore", invalid="ignore"):
        cc, ss, sc = uc**2 / s2, vc**2 / s2, uc * vc / s2
    still = ~((s2 > 0) & (s2 >= min_speed**2))
    flow = [
        exx * cc + 2 * exy * sc + eyy * ss,
        exx * ss - 2 * exy * sc + eyy * cc,
        (eyy - exx) * sc + exy * (cc - ss),
    ]
    for f in flow:
        f[still] = np.nan
    sexx = np.sqrt(su[:, k:-k, 2 * k :] ** 2 + su[:, k:-k, : -2 * k] ** 2) / abs(lx)
    seyy = np.sqrt(sv[:, 2 * k :, k:-k] ** 2 + sv[:, : -2 * k, k:-k] ** 2) / abs(ly)
    vuy = su[:, 2 * k :, k:-k] ** 2 + su[:, : -2 * k, k:-k] ** 2
    vvx = sv[:, k:-k, 2 * k :] ** 2 + sv[:, k:-k, : -2 * k] ** 2
    return [
        exx,
        eyy,
        exy,
        0.5 * (dvdx - dudy),
        exx + eyy,
        np.sqrt(exx**2 + eyy**2 + exx * eyy + exy**2),
        0.5 * (exx + eyy) + rad,
        0.5 * (exx + eyy) - rad,
        np.degrees(0.5 * np.arctan2(2 * exy, exx - eyy)),
        *flow,
        sexx,
        seyy,
        0.5 * np.sqrt(vuy / ly**2 + vvx / lx**2),
        np.sqrt(sexx**2 + seyy**2),
    ]


@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("per_layer_errors", [True, False])
def test_row_kernel_matches_the_formulas(k, per_layer_errors):
    rng = np.random.default_rng(k)
    nt, ny, nx = 3, 23, 37
    u = rng.normal(50, 40, (nt, ny, nx)).astype("f4")
    v = rng.normal(-20, 40, (nt, ny, nx)).astype("f4")
    u[1, 7, 11] = np.nan  # a gap: every stencil touching it is NaN
    u[2, 5, 5] = v[2, 5, 5] = 0.0  # no flow direction
    x = np.cumsum(rng.uniform(80, 160, nx))  # uneven spacing, x ascending
    y = -np.cumsum(rng.uniform(80, 160, ny))  # y descending, as ITS_LIVE
    if per_layer_errors:
        layer = rng.uniform(1, 9, (nt, 1, 1)).astype("f4")
        su, sv = layer, (2 * layer).astype("f4")
        su_full, sv_full = (np.broadcast_to(a, u.shape) for a in (su, sv))
    else:
        su = su_full = rng.uniform(1, 9, u.shape).astype("f4")
        sv = sv_full = rng.uniform(1, 9, u.shape).astype("f4")
    out = np.full((nt, K.NC + K.NE, ny, nx), 7.0, "f4")  # no stale values survive
    K.gradient_strain(u, v, su, sv, x, y, k, True, out, 20.0, 0.5)
    ref = _reference(u, v, su_full, sv_full, x, y, k, 20.0)
    inner = out[:, :, k:-k, k:-k]
    assert np.isnan(out[:, :, :k]).all() and np.isnan(out[:, :, :, -k:]).all()
    for c, want in enumerate(ref):
        got = inner[:, c].astype("f8")
        want = want * (0.5 if c >= K.NC else 1.0)
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want), err_msg=f"component {c}")
        tol = 1e-4 if c == 8 else 2e-6 * np.nanmax(np.abs(want))  # e1_angle: polynomial atan2
        np.testing.assert_allclose(got, want, atol=tol, rtol=1e-6, err_msg=f"component {c}")
    gap = np.isnan(inner[1, 0])
    assert gap.sum() == 2  # the two x-stencils through (7, 11)
    assert np.isnan(inner[2, 9:12, 5 - k, 5 - k]).all()  # speed 0: no flow components
