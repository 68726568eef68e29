"""Image-pair cubes of an analytic, seasonally varying field, for the tests of the
span-aware fit and of tracking: each pair holds the field's exact mean over its own span.

>>> ds = seasonal_pairs(n=20, ny=3, nx=4, seed=1)
>>> dict(ds.sizes)
{'mid_date': 20, 'y': 3, 'x': 4}
"""

from __future__ import annotations

import dataclasses

import numpy as np
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr

from itscube._datasets.fields import FIELD_DX, decimal_year

__all__ = ["SeasonalFlow", "pair_errors", "seasonal_pairs"]


@dataclasses.dataclass(frozen=True)
class SeasonalFlow:
    """``vx = (1 + amp cos(2 pi (t - peak))) (u0 + grad (x - x0))``, ``vy = 0`` (m/yr; t in
    decimal years, x in m): uniform stretching whose speed peaks at ``peak`` each year.

    Along a line of constant y a point moves as ``u(x1) = u(x0) exp(grad * I)`` with ``I``
    the time integral (years) of the seasonal factor, and the span mean of the factor over
    ``[t1, t2]`` is ``1 + amp (sin 2 pi (t2 - peak) - sin 2 pi (t1 - peak)) / (2 pi (t2 - t1))``.
    """

    u0: float = 300.0
    grad: float = 0.02
    amp: float = 0.2
    peak: float = 0.54  # mid-July
    x0: float = -150000.0

    def factor_mean(self, t1: np.ndarray, t2: np.ndarray) -> np.ndarray:
        """Exact mean of the seasonal factor over ``[t1, t2]`` (decimal years)."""
        w = 2 * np.pi
        t1, t2 = np.asarray(t1, "f8"), np.asarray(t2, "f8")
        return 1 + self.amp * (np.sin(w * (t2 - self.peak)) - np.sin(w * (t1 - self.peak))) / (
            w * (t2 - t1)
        )

    def speed(self, x: np.ndarray) -> np.ndarray:
        """The speed law without the seasonal factor (m/yr)."""
        return self.u0 + self.grad * (np.asarray(x, "f8") - self.x0)


def pair_errors(dt_days: np.ndarray, pixel: float = 15.0) -> np.ndarray:
    """ITS_LIVE-like pair error (m/yr): 0.1 source pixel over the separation + 2 m/yr, so
    long pairs are the precise ones."""
    return 0.1 * pixel * 365.25 / np.asarray(dt_days, "f8") + 2.0


def seasonal_pairs(
    flow: SeasonalFlow | None = None,
    *,
    n: int = 400,
    start: str = "2016-01-01",
    end: str = "2022-01-01",
    dt_days: tuple[float, float] = (5.0, 544.0),
    ny: int = 9,
    nx: int = 25,
    noise: bool = False,
    seed: int = 0,
) -> xr.Dataset:
    """``n`` pairs of log-uniform separations in ``dt_days``, spread uniformly in time over
    ``[start, end]``, holding the exact span mean of ``flow`` on an EPSG:3413 grid of 120 m
    pixels starting at ``flow.x0``; errors from :func:`pair_errors`, and with ``noise``
    Gaussian noise of that size, independent per pixel and pair."""
    flow = flow or SeasonalFlow()
    rng = np.random.default_rng(seed)
    t0, t1 = np.datetime64(start, "s"), np.datetime64(end, "s")
    dt = np.exp(rng.uniform(np.log(dt_days[0]), np.log(dt_days[1]), n))
    room = (t1 - t0) / np.timedelta64(1, "s") - dt * 86400
    img1 = (t0 + (rng.uniform(0, 1, n) * room).astype("timedelta64[s]")).astype("datetime64[ns]")
    img2 = img1 + (dt * 86400e9).astype("timedelta64[ns]")
    mid = img1 + (img2 - img1) / 2
    x = flow.x0 + FIELD_DX * np.arange(nx)
    y = (-2250000.0 + FIELD_DX * np.arange(ny))[::-1]
    factor = flow.factor_mean(decimal_year(img1), decimal_year(img2))
    vx = factor[:, None, None] * flow.speed(x)[None, None, :] * np.ones((1, ny, 1))
    err = pair_errors(dt)
    if noise:
        vx = vx + rng.normal(size=vx.shape) * err[:, None, None]
    vy = rng.normal(size=vx.shape) * err[:, None, None] if noise else np.zeros_like(vx)
    dims = ("mid_date", "y", "x")
    ds = xr.Dataset(
        {
            "vx": (dims, vx.astype("f4"), {"units": "m/yr"}),
            "vy": (dims, vy.astype("f4"), {"units": "m/yr"}),
            "vx_error": ("mid_date", err.astype("f4")),
            "vy_error": ("mid_date", err.astype("f4")),
            "acquisition_date_img1": ("mid_date", img1),
            "acquisition_date_img2": ("mid_date", img2),
            "date_dt": ("mid_date", dt.astype("f4"), {"units": "days"}),
        },
        coords={"mid_date": mid, "y": y, "x": x},
    )
    return ds.rio.write_crs("EPSG:3413", grid_mapping_name="mapping")
