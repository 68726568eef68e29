"""Finite-volume flux kernels on plain arrays: exact on linear fields, discrete Gauss."""

from __future__ import annotations

import numpy as np
import pytest

from itscube._kernels.flux import boundary_face_flux, divergence_fv, flux_cells


@pytest.mark.parametrize("dy", [100.0, -100.0])
def test_divergence_of_a_linear_flux_is_exact(dy):
    x = np.arange(12) * 100.0
    y = np.arange(10) * dy
    X, Y = np.meshgrid(x, y)
    h = np.full(X.shape, 300.0)
    u = 50 + 0.002 * X + 0.001 * Y
    v = -20 + 0.0005 * X - 0.003 * Y
    div, _, _ = divergence_fv(h, u, v, 100.0, dy)
    np.testing.assert_allclose(div[1:-1, 1:-1], 300.0 * (0.002 - 0.003), rtol=1e-10)
    assert np.isnan(div[0]).all() and np.isnan(div[:, -1]).all()


def test_gauss_theorem_holds_on_any_mask():
    rng = np.random.default_rng(3)
    h, u, v = (rng.uniform(50, 500, (20, 25)) for _ in range(3))
    div, fx, fy = divergence_fv(h, u, v, 120.0, -120.0, "upwind")
    mask = np.zeros((20, 25), bool)
    mask[4:15, 3:9] = True
    mask[8:12, 9:20] = True  # an L-shaped region
    inside = div[mask].sum() * 120.0 * 120.0
    assert boundary_face_flux(mask, fx, fy, 120.0, -120.0) == pytest.approx(inside, rel=1e-12)


def test_flux_cells_integrates_each_map_over_its_own_coverage():
    x = np.arange(10) * 100.0
    X, _ = np.meshgrid(x, x)
    u = np.stack([0.01 * X, 0.01 * X])
    v = np.zeros_like(u)
    u[1, 4, 4] = v[1, 4, 4] = np.nan  # a gap in the second map only
    h = np.full(X.shape, 100.0)
    mask = np.zeros(X.shape, bool)
    mask[2:8, 2:8] = True
    *_, err, integ, faces, cells, coverage = flux_cells(
        h,
        u,
        v,
        np.zeros_like(h),
        np.zeros_like(u),
        np.zeros_like(u),
        mask=mask,
        dx=100.0,
        dy=100.0,
        scheme="centred",
        on_grid=1.0,
        with_errors=False,
    )
    assert cells.tolist() == [36.0, 31.0]  # the gap and its four neighbours drop out
    np.testing.assert_allclose(integ, cells * 1.0 * 100.0 * 100.0)  # div = 1 m/yr
    np.testing.assert_allclose(faces, integ, rtol=1e-12)
    assert coverage[0] == 1.0 and coverage[1] == pytest.approx(31 / 36)
    assert np.isnan(err).all()
