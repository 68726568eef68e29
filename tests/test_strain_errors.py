"""Monte Carlo check of strain-rate errors under the error model: image pairs of a linear
field (exact strain rates) carry noise drawn from the model (per-pair offset + Gaussian-
correlated pixel noise, by Gaussian smoothing of white noise, not by the code's algebra);
the reported ``exx_error``/``exy_error`` must match the scatter of the results within 20 %."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from scipy.ndimage import gaussian_filter

from itscube.strain import strain_rates
from itscube.temporal import ErrorModel, period_mean

pytestmark = pytest.mark.slow

N, PAIRS, DRAWS, DX = 64, 4, 12, 120.0
SIGMA = np.array([15.0, 20.0, 25.0, 30.0])
EXX = 0.01  # vx = 100 + EXX x: exx = 0.01 /yr, exy = 0


def _noise(rng, model: ErrorModel) -> np.ndarray:
    width = model.correlation_m / DX / np.sqrt(2)
    out = []
    for s in SIGMA:
        n = rng.normal(size=(N, N))
        if width > 0:
            n = gaussian_filter(n, width, mode="wrap") * np.sqrt(4 * np.pi * width**2)
        out.append(s * (model.offset * rng.normal() + np.sqrt(1 - model.offset**2) * n))
    return np.array(out)


def _pairs(rng, model) -> xr.Dataset:
    x = DX * np.arange(N)
    y = (DX * np.arange(N))[::-1]
    X, _ = np.meshgrid(x, y)
    dims = ("mid_date", "y", "x")
    days = np.arange(PAIRS).astype("timedelta64[D]") * 30
    ds = xr.Dataset(
        {
            "vx": (dims, (100 + EXX * X + _noise(rng, model)).astype("f4")),
            "vy": (dims, _noise(rng, model).astype("f4")),
            "vx_error": ("mid_date", SIGMA.astype("f4")),
            "vy_error": ("mid_date", SIGMA.astype("f4")),
        },
        coords={"mid_date": np.datetime64("2019-01-01", "ns") + days, "y": y, "x": x},
    )
    return ds.rio.write_crs("EPSG:3413", grid_mapping_name="mapping")


@pytest.mark.parametrize(("method", "k"), [("gradient", 1), ("gradient", 2), ("gradient", 4),
                                           ("coarsen", 2)])  # fmt: skip
def test_strain_errors_match_the_monte_carlo_scatter(method, k):
    model = ErrorModel(offset=0.5, correlation_m=240.0)
    rng = np.random.default_rng(k + len(method))
    exx, exy, rep_xx, rep_xy = [], [], [], []
    for _ in range(DRAWS):
        res = strain_rates(period_mean(_pairs(rng, model), "all"), k, method,
                           min_speed=0, error_model=model).isel(time=0)  # fmt: skip
        inner = dict(y=slice(8, -8), x=slice(8, -8))
        exx.append(res.exx.isel(**inner).values.ravel() - EXX)
        exy.append(res.exy.isel(**inner).values.ravel())
        rep_xx.append(float(res.exx_error.isel(**inner).median()))
        rep_xy.append(float(res.exy_error.isel(**inner).median()))
    assert np.median(rep_xx) == pytest.approx(np.nanstd(np.concatenate(exx)), rel=0.2)
    assert np.median(rep_xy) == pytest.approx(np.nanstd(np.concatenate(exy)), rel=0.2)
    # the former independent-pixel propagation misses: too large over short baselines (the
    # correlated noise cancels in the difference), too small for block means (correlated
    # noise does not average down as 1/k)
    independent = strain_rates(period_mean(_pairs(rng, model), "all"), k, method,
                               min_speed=0, error_model=ErrorModel(0.0, 0.0))  # fmt: skip
    ratio = float(independent.exx_error.median()) / np.nanstd(np.concatenate(exx))
    if (method, k) == ("gradient", 1):
        assert ratio > 1.5
    if method == "coarsen":
        assert ratio < 0.8
