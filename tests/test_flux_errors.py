"""Monte Carlo check of the flux error model: noise drawn from the documented model
(per-pair offset + Gaussian-correlated pixel noise, pairs independent) on image pairs of an
analytic glacier, averaged and integrated by the product's own code at upscales 1, 2 and 4:
the reported ± must match the spread of the results within 20 %. The earlier per-cell
propagation (independent cells summed) fails the same test by an order of magnitude.

The test draws its correlated noise by Gaussian smoothing of white noise (scipy), not with the
covariance algebra the code uses to propagate it."""

from __future__ import annotations

import numpy as np
import pytest
import shapely.geometry as sg
import xarray as xr
from scipy.ndimage import gaussian_filter

from itscube._datasets.fields import FIELD_DX, OutletGlacier, glacier_thickness
from itscube.flux import flux_budget, flux_divergence
from itscube.temporal import ErrorModel, period_mean

pytestmark = pytest.mark.slow

NY, NX, PAIRS, DRAWS = 48, 84, 6, 80
X = -150000.0 + FIELD_DX * np.arange(NX)
Y = (-2250000.0 + FIELD_DX * np.arange(NY))[::-1]
YC = float(Y.mean())
FLOW = OutletGlacier(
    x_head=X[0] - 2000, y_c=YC, half_width=2600.0, u_head=300, grad=0.02, season_amp=0, trend=0
)
SIGMA = np.linspace(10.0, 30.0, PAIRS)  # stated pair errors, m/yr
BOUNDARY = sg.box(X[16], YC - 1900, X[64], YC + 1900)


def _noise(rng, model: ErrorModel) -> np.ndarray:
    """One error map per pair: s (offset d + sqrt(1 - offset^2) n), n unit-variance noise of
    correlation exp(-r^2 / 2L^2) (white noise smoothed by a Gaussian of width L / sqrt 2)."""
    width = model.correlation_m / FIELD_DX / np.sqrt(2)
    out = []
    for s in SIGMA:
        n = gaussian_filter(rng.normal(size=(NY, NX)), width, mode="wrap")
        n *= np.sqrt(4 * np.pi * width**2)  # unit variance
        out.append(s * (model.offset * rng.normal() + np.sqrt(1 - model.offset**2) * n))
    return np.array(out)


def _pairs(ex, ey) -> xr.Dataset:
    Xg, Yg = np.meshgrid(X, Y)
    u, v = FLOW(Xg, Yg, 2018.5)
    dims = ("mid_date", "y", "x")
    days = np.arange(PAIRS).astype("timedelta64[D]") * 20
    ds = xr.Dataset(
        {
            "vx": (dims, (u + ex).astype("f4")),
            "vy": (dims, (v + ey).astype("f4")),
            "vx_error": ("mid_date", SIGMA.astype("f4")),
            "vy_error": ("mid_date", SIGMA.astype("f4")),
        },
        coords={"mid_date": np.datetime64("2018-03-01", "ns") + days, "y": Y, "x": X},
    )
    return ds.rio.write_crs("EPSG:3413", grid_mapping_name="mapping")


@pytest.fixture(scope="module")
def thickness():
    Xg, Yg = np.meshgrid(X, Y)
    h = glacier_thickness(FLOW, Xg, Yg) + 50.0  # the boundary crosses ice on every side
    return xr.DataArray(h, coords={"y": Y, "x": X}, dims=("y", "x"))


@pytest.mark.parametrize("k", [1, 2, 4])
def test_reported_error_matches_the_monte_carlo_spread(thickness, k):
    model = ErrorModel(offset=0.5, correlation_m=360.0)
    rng = np.random.default_rng(k)
    zero = np.zeros((PAIRS, NY, NX))
    clean = flux_divergence(
        period_mean(_pairs(zero, zero), "all"), thickness, BOUNDARY, upscale=k, error_model=model
    )
    reported = float(clean.integrated_divergence_error[0])
    values = []
    for _ in range(DRAWS):
        mean = period_mean(_pairs(_noise(rng, model), _noise(rng, model)), "all")
        res = flux_divergence(mean, thickness, BOUNDARY, upscale=k, error_model=model)
        values.append(float(res.integrated_divergence[0]))
    spread = float(np.std(values, ddof=1))
    assert reported == pytest.approx(spread, rel=0.2)
    # the headline row carries it, ±1 sigma
    row = flux_budget(clean, clean.integrated_divergence, ["all"])[0]
    assert row["error_m3_yr"] == pytest.approx(reported)
    # the former propagation: per-cell errors of independent pixels, summed over the cells
    cell = FIELD_DX * k * FIELD_DX * k
    inside = clean["mask"].values.astype(bool)
    old = float(np.nansum(clean.flux_divergence_error[0].values[inside]) * cell)
    if k == 1:
        assert old > 5 * spread


def test_error_model_options_change_the_error(thickness):
    zero = np.zeros((PAIRS, NY, NX))
    mean = period_mean(_pairs(zero, zero), "all")

    def err(**kw):
        res = flux_divergence(mean, thickness, BOUNDARY, error_model=ErrorModel(**kw))
        return float(res.integrated_divergence_error[0])

    base = err()
    assert err(offset=0.0) != pytest.approx(base, rel=0.05)
    assert err(correlation_m=1200.0) > 1.5 * err(correlation_m=0.0)
    with_h = flux_divergence(
        mean,
        thickness,
        BOUNDARY,
        thickness_error=thickness * 0 + 20.0,
        error_model=ErrorModel(thickness_correlation_m=600.0),
    )
    independent_h = flux_divergence(mean, thickness, BOUNDARY, thickness_error=thickness * 0 + 20.0)
    assert float(with_h.integrated_divergence_error_thickness[0]) > 1.5 * float(
        independent_h.integrated_divergence_error_thickness[0]
    )
    assert float(independent_h.integrated_divergence_error_thickness[0]) > 0
