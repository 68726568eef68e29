"""Analytic velocity fields (m/yr of projected x, y in m and decimal year) with known
derivatives, for the tests, the sample and the benchmarks.

>>> f = LinearField(u0=100.0, a=0.01)
>>> u, v = f(np.array([1000.0]), np.array([0.0]), 2020.0)
>>> float(u[0])
110.0
"""

from __future__ import annotations

import dataclasses
from typing import Protocol

import numpy as np
import pandas as pd
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr

__all__ = [
    "FIELD_DX",
    "FIELD_XC",
    "FIELD_YC",
    "LinearField",
    "OutletGlacier",
    "VelocityField",
    "decimal_year",
    "field_dataset",
    "finite",
    "glacier_thickness",
    "mean_velocity",
]


class VelocityField(Protocol):
    """A velocity field ``(x, y, t) -> (vx, vy)`` in m/yr (x, y in m, t in decimal years)."""

    def __call__(self, x: np.ndarray, y: np.ndarray, t: float) -> tuple[np.ndarray, np.ndarray]: ...


@dataclasses.dataclass(frozen=True)
class LinearField:
    """``vx = u0 + a (x-x0) + b (y-y0)``, ``vy = v0 + c (x-x0) + d (y-y0)`` (m/yr).

    Strain rates are exact: ``exx = a``, ``eyy = d``, ``exy = (b+c)/2`` (1/yr).
    ``accel`` (m/yr per yr) adds a uniform, time-linear speed-up along x from
    ``t0`` (decimal year).
    """

    u0: float = 100.0
    v0: float = 0.0
    a: float = 0.0
    b: float = 0.0
    c: float = 0.0
    d: float = 0.0
    x0: float = 0.0
    y0: float = 0.0
    accel: float = 0.0
    t0: float = 2015.0

    def __call__(self, x, y, t):
        dx = np.asarray(x, dtype="f8") - self.x0
        dy = np.asarray(y, dtype="f8") - self.y0
        vx = self.u0 + self.accel * (t - self.t0) + self.a * dx + self.b * dy
        vy = self.v0 + self.c * dx + self.d * dy
        return np.broadcast_to(vx, np.broadcast(dx, dy).shape), np.broadcast_to(
            vy, np.broadcast(dx, dy).shape
        )


@dataclasses.dataclass(frozen=True)
class OutletGlacier:
    """A plausible outlet glacier flowing toward +x, faster toward its calving front.

    On the centre line ``vx = u_head + grad (x - x_head)`` (m/yr), so the
    longitudinal strain rate there is ``grad`` (1/yr) before the transverse
    profile and seasonal factor are applied. Across the channel
    (half-width ``half_width``) speed falls as ``1 - eta**4``; the ice converges
    gently (``vy = -converge * (y - y_c) * profile``). Speed varies seasonally
    by ``season_amp`` (fraction) peaking at ``season_peak`` (fraction of year)
    and accelerates by ``trend`` (fraction per year) from ``t0``. Outside the
    channel the ground is stable (0 m/yr). With ``head_ramp > 0`` (m) the ice
    starts smoothly at its head: speed rises from 0 at ``x_head`` to the
    centre-line law at ``x_head + head_ramp`` (C1 smoothstep), and the analytic
    laws above hold exactly downstream of that point.
    """

    x_head: float
    y_c: float
    half_width: float = 4000.0
    u_head: float = 200.0
    grad: float = 0.05
    converge: float = 0.01
    season_amp: float = 0.15
    season_peak: float = 0.55
    trend: float = 0.02
    t0: float = 2015.0
    head_ramp: float = 0.0

    def onset(self, x: np.ndarray) -> np.ndarray:
        """Head onset factor (0 above the head, 1 from ``x_head + head_ramp``), dimensionless."""
        x = np.asarray(x, dtype="f8")
        if self.head_ramp <= 0:
            return (x >= self.x_head).astype("f8")
        s = np.clip((x - self.x_head) / self.head_ramp, 0.0, 1.0)
        return s * s * (3.0 - 2.0 * s)

    def factor(self, t: float) -> float:
        """Seasonal and secular multiplier at decimal year ``t`` (dimensionless)."""
        season = 1.0 + self.season_amp * np.cos(2 * np.pi * ((t % 1.0) - self.season_peak))
        return float(season * (1.0 + self.trend * (t - self.t0)))

    def __call__(self, x, y, t):
        x = np.asarray(x, dtype="f8")
        y = np.asarray(y, dtype="f8")
        eta = (y - self.y_c) / self.half_width
        profile = np.clip(1.0 - eta**4, 0.0, None) * self.onset(x)
        f = self.factor(t)
        vx = f * profile * (self.u_head + self.grad * (x - self.x_head))
        vy = -f * profile * self.converge * (y - self.y_c)
        return vx, vy


def decimal_year(t: np.ndarray) -> np.ndarray:
    """Decimal year of datetime64 values."""
    idx = pd.DatetimeIndex(np.atleast_1d(t))
    start = pd.to_datetime(idx.year.astype(str) + "-01-01")
    length = np.where(idx.is_leap_year, 366.0, 365.0)
    return np.asarray(idx.year + (idx - start) / pd.Timedelta(days=1) / length)


def mean_velocity(
    field: VelocityField, x: np.ndarray, y: np.ndarray, t1: float, t2: float, step: float = 0.02
) -> tuple[np.ndarray, np.ndarray]:
    """Time-mean of ``field`` over ``[t1, t2]`` (decimal years) at fixed x, y (m/yr): the
    midpoint rule with nodes at most ``step`` years (~1 week) apart, exact for fields
    linear in time."""
    m = max(1, int(np.ceil((t2 - t1) / step)))
    ts = t1 + (np.arange(m) + 0.5) / m * (t2 - t1)
    vx = np.zeros(np.broadcast(x, y).shape)
    vy = np.zeros_like(vx)
    for t in ts:
        u, v = field(x, y, float(t))
        vx += u
        vy += v
    return vx / m, vy / m


def glacier_thickness(field: OutletGlacier, X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """A plausible thickness (m) for :class:`OutletGlacier`: a parabolic cross-section,
    600 m on the centre line at the head thinning to 300 m 12 km down-glacier; 0 outside
    (thickening smoothly over the head ramp when the field has one)."""
    eta = np.abs(Y - field.y_c) / field.half_width
    along = np.clip((X - field.x_head) / 12000.0, 0, 1)
    centre = 600.0 - 300.0 * along
    h = centre * np.clip(1 - eta**2, 0, None)
    if field.head_ramp > 0:
        return h * np.sqrt(field.onset(X))
    return np.where(field.x_head <= X, h, 0.0)


FIELD_DX = 120.0
"""Pixel size (m) of :func:`field_dataset` grids."""
FIELD_XC, FIELD_YC = -150000.0 + 20 * FIELD_DX, -2250000.0 + 15 * FIELD_DX
"""Centre pixel (m) of the default :func:`field_dataset` grid."""


def field_dataset(fu, fv, ny=31, nx=41, times=None, sigma=None, descending=True) -> xr.Dataset:
    """A cube-like dataset (``vx``, ``vy`` in m/yr on ``mid_date, y, x``, EPSG:3413) from
    velocity functions of projected ``(X, Y)`` in metres; ``sigma`` adds per-layer errors.

    >>> ds = field_dataset(lambda X, Y: 0 * X + 100.0, lambda X, Y: 0 * X, ny=3, nx=4)
    >>> dict(ds.sizes), float(ds.vx.mean())
    ({'mid_date': 1, 'y': 3, 'x': 4}, 100.0)
    """
    x = -150000.0 + FIELD_DX * np.arange(nx)
    y = -2250000.0 + FIELD_DX * np.arange(ny)
    if descending:
        y = y[::-1]
    X, Y = np.meshgrid(x, y)
    times = np.array(times or ["2019-06-01"], dtype="datetime64[ns]")
    u = np.stack([np.broadcast_to(fu(X, Y), X.shape) for _ in times]).astype("f4")
    v = np.stack([np.broadcast_to(fv(X, Y), X.shape) for _ in times]).astype("f4")
    ds = xr.Dataset(
        {"vx": (("mid_date", "y", "x"), u), "vy": (("mid_date", "y", "x"), v)},
        coords={"x": x, "y": y, "mid_date": times},
    )
    if sigma is not None:
        ds["vx_error"] = ("mid_date", np.full(len(times), sigma, "f4"))
        ds["vy_error"] = ("mid_date", np.full(len(times), sigma, "f4"))
    return ds.rio.write_crs("EPSG:3413", grid_mapping_name="mapping")


def finite(da: xr.DataArray) -> np.ndarray:
    """The finite values of ``da`` (the interior of a result with a NaN rim), flattened."""
    vals = da.values
    return vals[np.isfinite(vals)]
