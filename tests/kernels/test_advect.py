"""The advection kernel on plain arrays: uniform and rotating flows, kept output steps."""

from __future__ import annotations

import numpy as np
import pytest

from itscube._kernels.advect import ORDERS, advect, output_steps

GRID = (0.0, 100.0, 0.0, 100.0)  # x0, dx, y0, dy (m)


def _fields(u, v):
    U, V = np.asarray(u, "f8")[None], np.asarray(v, "f8")[None]
    return U, V, np.zeros(U.shape, np.uint8)


@pytest.mark.parametrize("method", list(ORDERS))
def test_uniform_flow_moves_points_exactly(method):
    U, V, F = _fields(np.full((20, 20), 120.0), np.full((20, 20), -60.0))
    steps = 10
    dt = np.full(steps, 0.1)  # yr
    keep = output_steps(steps, 1)
    out = advect(
        np.array([500.0]), np.array([1500.0]), U, V, F, *GRID, dt,
        np.zeros(steps, np.int64), ORDERS[method], 1.0, keep,
    )  # fmt: skip
    X, status, XE, YE, NS = out[0], out[5], out[6], out[7], out[8]
    assert status[0] == 0 and NS[0] == steps
    assert XE[0] == pytest.approx(620.0) and YE[0] == pytest.approx(1440.0)
    np.testing.assert_allclose(X[0], 500 + 12.0 * np.arange(steps + 1))


def test_rk4_keeps_a_point_on_its_circle():
    n = 41
    x = (np.arange(n) - 20) * 100.0
    X, Y = np.meshgrid(x, x)
    omega = 0.5  # rad/yr
    U, V, F = _fields(-omega * Y, omega * X)
    steps = 200
    dt = np.full(steps, 2 * np.pi / omega / steps)
    grid = (x[0], 100.0, x[0], 100.0)
    out = advect(
        np.array([1000.0]), np.array([0.0]), U, V, F, *grid, dt,
        np.zeros(steps, np.int64), 4, 1.0, output_steps(steps, 1),
    )  # fmt: skip
    r = np.hypot(out[0][0], out[1][0])
    np.testing.assert_allclose(r, 1000.0, rtol=1e-3)
    assert out[6][0] == pytest.approx(1000.0, abs=2.0)  # back where it started


def test_output_every_keeps_fewer_positions_and_the_same_end():
    U, V, F = _fields(np.full((20, 20), 100.0), np.zeros((20, 20)))
    steps = 9
    dt = np.full(steps, 0.1)
    args = (U, V, F, *GRID, dt, np.zeros(steps, np.int64), 4, 1.0)
    full = advect(np.array([200.0]), np.array([500.0]), *args, output_steps(steps, 1))
    sparse = advect(np.array([200.0]), np.array([500.0]), *args, output_steps(steps, 4))
    assert output_steps(steps, 4).tolist() == [0, 4, 8, 9]
    np.testing.assert_allclose(sparse[0][0], full[0][0][[0, 4, 8, 9]])
    assert sparse[6][0] == full[6][0] == pytest.approx(290.0)


def test_a_point_leaving_the_grid_stops_with_its_last_position():
    U, V, F = _fields(np.full((5, 5), 1000.0), np.zeros((5, 5)))
    steps = 10
    out = advect(
        np.array([100.0]), np.array([200.0]), U, V, F, *GRID, np.full(steps, 0.1),
        np.zeros(steps, np.int64), 1, 1.0, output_steps(steps, 1),
    )  # fmt: skip
    assert out[5][0] == 1  # out_of_domain
    assert out[6][0] == pytest.approx(400.0) and out[8][0] == 3
    assert np.isnan(out[0][0][4:]).all()
