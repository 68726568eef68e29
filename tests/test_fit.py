"""The span-aware fit against an analytic seasonal flow: period means, seasonal amplitude and
phase, tracking over two years and in summer, the ensemble's calibration, and the
``pair-mean`` estimator's bias that the fit removes (the truth comes from
:class:`itscube._datasets.pairs.SeasonalFlow`'s closed forms, never from the code path)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from itscube._datasets.fields import decimal_year
from itscube._datasets.pairs import SeasonalFlow, seasonal_pairs
from itscube.errors import InputError
from itscube.temporal import ErrorModel, period_mean, seasonal_cycle
from itscube.track import ensemble_spread, track

FLOW = SeasonalFlow()


@pytest.fixture(scope="module")
def pairs():
    return seasonal_pairs(FLOW)


@pytest.fixture(scope="module")
def noisy():
    return seasonal_pairs(FLOW, noise=True, seed=3)


def true_mean(x, start, end):
    """The flow's exact mean speed (m/yr) over [start, end)."""
    t1, t2 = decimal_year(np.array([start, end], "datetime64[ns]"))
    return FLOW.factor_mean(t1, t2) * FLOW.speed(x)


def true_dx(x0, start, end):
    """Displacement (m) from x0 by the closed form u(x1) = u(x0) exp(grad I), with I the
    seasonal factor integrated over hourly nodes (years of 365.25 days, as tracking uses)."""
    hours = int((pd.Timestamp(end) - pd.Timestamp(start)) / pd.Timedelta(hours=1))
    nodes = np.datetime64(start, "ns") + ((np.arange(hours) + 0.5) * 3600e9).astype(
        "timedelta64[ns]"
    )
    f = 1 + FLOW.amp * np.cos(2 * np.pi * (decimal_year(nodes) - FLOW.peak))
    integral = f.sum() / 24 / 365.25
    u0 = FLOW.speed(x0)
    return (u0 * np.exp(FLOW.grad * integral) - u0) / FLOW.grad


def test_period_means_are_the_flows_means(pairs):
    years = period_mean(pairs, "year", start="2017", end="2020")
    assert years.attrs["itscube_estimator"] == "fit"
    x = pairs.x.values
    for i, y in enumerate(range(2017, 2021)):
        want = true_mean(x, f"{y}-01-01", f"{y + 1}-01-01")
        np.testing.assert_allclose(years.vx.values[i, 4], want, rtol=2e-4)
    months = period_mean(pairs, "month", start="2018", end="2018")
    assert len(months.time) == 12
    for i in range(12):
        t0, t1 = months.time_bnds.values[i]
        # 1e-3: the model's cycle is 365.25 days, the flow's the calendar year (<1 day apart)
        np.testing.assert_allclose(months.vx.values[i, 4], true_mean(x, t0, t1), rtol=1e-3)
    assert (months.fit_flag == 0).all()
    # the plain mean of the pairs lying inside each year runs fast: long in-year pairs are
    # centred on summer and carry the smallest errors
    plain = period_mean(pairs, "year", start="2017", end="2020", within_span=True)
    bias = plain.vx.values[:, 4, 0] / years.vx.values[:, 4, 0] - 1
    assert (bias > 0.02).all()


def test_seasonal_amplitude_and_phase(pairs, noisy):
    s = seasonal_cycle(pairs, start="2016", end="2021")
    x = pairs.x.values
    # mean over whole years 2016..2021 of (1 + amp cos) * u: the cycle averages out
    np.testing.assert_allclose(s.vx_amp.values[4], FLOW.amp * FLOW.speed(x), rtol=2e-3)
    np.testing.assert_allclose(s.v_amp.values[4], FLOW.amp * FLOW.speed(x), rtol=2e-3)
    peak_doy = 1 + FLOW.peak * 365.25
    np.testing.assert_allclose(s.vx_phase.values[4], peak_doy, atol=1.0)
    assert (s.fit_flag == 0).all()
    # with noise of the stated errors the amplitude error describes the scatter
    n = seasonal_cycle(noisy, start="2016", end="2021")
    z = (n.vx_amp - FLOW.amp * FLOW.speed(x)) / n.vx_amp_error
    assert 0.7 < float(z.std()) < 1.3
    assert float(np.abs(z.mean())) < 0.3
    assert 0.8 < float(n.chi2.median()) < 1.2


def test_options_change_the_result(pairs):
    base = period_mean(pairs, "all", start="2018", end="2019")
    no_season = period_mean(pairs, "month", start="2018-07", end="2018-07", min_months=13)
    full = period_mean(pairs, "month", start="2018-07", end="2018-07")
    assert (no_season.fit_flag == 1).all() and (full.fit_flag == 0).all()
    # without the seasonal term a July mean is the annual mean, about amp lower
    assert float(full.vx[0, 4, 0] / no_season.vx[0, 4, 0]) == pytest.approx(1.19, abs=0.02)
    unweighted = period_mean(pairs, "all", start="2018", end="2019", weighted=False)
    assert "vx_error" not in unweighted and "vx_error" in base
    with pytest.raises(InputError, match="estimator"):
        period_mean(pairs, "all", estimator="fit", within_span=True)
    with pytest.raises(InputError, match="acquisition dates"):
        period_mean(
            pairs.drop_vars(["acquisition_date_img1", "acquisition_date_img2", "date_dt"]),
            estimator="fit",
        )


def test_default_tracks_end_within_one_percent(pairs):
    """Two years, then one summer: the fit follows the season; pair-mean runs 7 % long."""
    xs = pairs.x.values[2:7]
    seeds = np.column_stack([xs, np.full(len(xs), pairs.y.values[4])])
    for start, end in (("2018-01-01", "2019-12-31"), ("2018-05-01", "2018-09-01")):
        want = true_dx(xs, start, end)
        r = track(pairs, seeds, start, end)
        assert r.attrs["itscube_estimator"] == "fit" and r.attrs["itscube_period"] == "month"
        np.testing.assert_allclose(r.displacement_x.values, want, rtol=0.01)
    want = true_dx(xs, "2018-01-01", "2019-12-31")
    steady = track(pairs, seeds, "2018-01-01", "2019-12-31", steady=True)
    np.testing.assert_allclose(steady.displacement_x.values, want, rtol=0.01)
    plain = track(pairs, seeds, "2018-01-01", "2019-12-31", estimator="pair-mean")
    assert (plain.displacement_x.values / want - 1 > 0.05).all()
    with pytest.raises(InputError, match="steady"):
        track(pairs, seeds, "2018-01-01", "2019-12-31", steady=True, period="year")


def test_ensemble_covers_the_truth(noisy):
    """The pairs carry independent pixel noise of their stated errors: with that error model
    the ensemble is calibrated (z-scores of spread near 1, >= 90 % within 2 sigma)."""
    ys = noisy.y.values[1:8:2]
    X, Y = np.meshgrid(noisy.x.values[2:20:3], ys)
    seeds = np.column_stack([X.ravel(), Y.ravel()])
    r = track(noisy, seeds, "2018-01-01", "2019-12-31")
    model = ErrorModel(offset=0.0, correlation_m=0.0)
    sp = ensemble_spread(noisy, seeds, "2018-01-01", "2019-12-31", 40, error_model=model)
    z = (r.displacement_x.values - true_dx(seeds[:, 0], "2018-01-01", "2019-12-31")) / sp.spread_x
    zy = r.displacement_y / sp.spread_y
    for scores in (np.asarray(z), np.asarray(zy)):
        assert float((np.abs(scores) <= 2).mean()) >= 0.9
        assert 0.5 < float(np.std(scores)) < 1.5
    # a model with more correlated errors than the data gives a wider (conservative) spread
    wide = ensemble_spread(noisy, seeds[:4], "2018-01-01", "2019-12-31", 20)
    assert (wide.spread_x.values > 1.5 * sp.spread_x.values[:4]).all()


def test_regular_series_of_points_follow_the_flow(pairs):
    """``regularise`` fits every point at once: monthly means are the flow's."""
    from itscube.temporal import regularise

    series = pairs.isel(y=4).rename(x="point")
    series = series.assign_coords(
        point=np.arange(series.sizes["point"]), x=("point", pairs.x.values)
    )
    reg = regularise(series, "MS")
    assert reg.attrs["itscube_estimator"] == "fit" and reg.vx.dims == ("point", "time")
    bounds = reg.time_bnds.values
    for i in range(0, len(bounds), 7):
        want = true_mean(pairs.x.values, bounds[i, 0], bounds[i, 1])
        np.testing.assert_allclose(reg.vx.values[:, i], want, rtol=1e-3)
