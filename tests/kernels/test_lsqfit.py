"""The span-aware least-squares kernel on plain arrays, against hand-computed integrals."""

from __future__ import annotations

import numpy as np
import pytest

from itscube._kernels.lsqfit import (
    FIT_FEW_PAIRS,
    FIT_FULL,
    FIT_NO_SEASON,
    fit_span_model,
    model_means,
    span_design,
)

EDGES = np.array([0.0, 1.0, 2.0, 3.0])  # three fit years


def _model(a, b, c, t1, t2):
    """Span mean of a_k + b cos 2 pi t + c sin 2 pi t by fine midpoint quadrature."""
    out = []
    for lo, hi in zip(t1, t2, strict=True):
        ts = lo + (np.arange(20000) + 0.5) / 20000 * (hi - lo)
        k = np.clip(np.searchsorted(EDGES, ts, side="right") - 1, 0, len(a) - 1)
        out.append(
            np.mean(np.asarray(a)[k] + b * np.cos(2 * np.pi * ts) + c * np.sin(2 * np.pi * ts))
        )
    return np.array(out)


def test_design_rows_are_span_integrals():
    t1 = np.array([0.1, 0.8, 0.25, 1.9])
    t2 = np.array([0.2, 1.3, 0.25, 2.95])
    d = span_design(t1, t2, EDGES)
    # year fractions: [0.8, 1.3] is 0.2/0.5 in year 0 and 0.3/0.5 in year 1
    np.testing.assert_allclose(d[1, :3], [0.4, 0.6, 0.0])
    assert d[2, :3].tolist() == [1.0, 0.0, 0.0]  # a zero-length span is a point in year 0
    np.testing.assert_allclose(d[:, :3].sum(axis=1), 1.0)
    for b, c in ((1.0, 0.0), (0.0, 1.0)):
        want = _model([0.0, 0.0, 0.0], b, c, t1, t2)
        got = d[:, 3] * b + d[:, 4] * c
        np.testing.assert_allclose(got, want, atol=1e-8)


def _pairs(n, seed=0, lo=0.0, hi=3.0):
    rng = np.random.default_rng(seed)
    L = np.exp(rng.uniform(np.log(5 / 365.25), np.log(1.5), n))
    t1 = lo + rng.uniform(0, 1, n) * (hi - lo - L)
    return t1, t1 + L


def _month(t1, t2):
    short = (t2 - t1) <= 0.5
    return np.where(short, (((t1 + t2) / 2 % 1) * 12).astype(int), -1).astype(np.int64)


def test_fit_recovers_annual_means_and_cycle_exactly():
    t1, t2 = _pairs(300)
    a, b, c = [100.0, 110.0, 95.0], 12.0, -7.0
    v = _model(a, b, c, t1, t2)[:, None].repeat(2, 1)
    w = np.ones_like(v)
    design = span_design(t1, t2, EDGES)
    beta, cov, covered, flag, n, chi2 = fit_span_model(v, w, design, _month(t1, t2), 6, 3)
    np.testing.assert_allclose(beta[0], [*a, b, c], atol=1e-4)  # quadrature of the reference
    assert flag.tolist() == [FIT_FULL, FIT_FULL] and n.tolist() == [300, 300]
    assert chi2[0] < 1e-6  # only the reference quadrature error is left
    # means over months are the model's exact integrals
    rows = span_design(np.array([0.5, 1.0]), np.array([0.5 + 1 / 12, 2.0]), EDGES)
    mean, err = model_means(beta, cov, covered, rows)
    np.testing.assert_allclose(
        mean[:, 0], _model(a, b, c, [0.5, 1.0], [0.5 + 1 / 12, 2.0]), atol=1e-4
    )
    assert np.all(err > 0)


def test_formal_errors_match_the_scatter_of_noisy_fits():
    t1, t2 = _pairs(200, seed=2)
    sigma = 2.0 + 3.0 / (t2 - t1) ** 0.5
    rng = np.random.default_rng(5)
    m = 400
    v = (
        _model([100.0, 100.0, 100.0], 10.0, 0.0, t1, t2)[:, None]
        + rng.normal(size=(200, m)) * sigma[:, None]
    )
    w = np.broadcast_to(1 / sigma[:, None] ** 2, v.shape).copy()
    design = span_design(t1, t2, EDGES)
    beta, cov, covered, _flag, *_ = fit_span_model(v, w, design, _month(t1, t2), 6, 3)
    rows = span_design(np.array([1.0]), np.array([2.0]), EDGES)
    mean, err = model_means(beta, cov, covered, rows)
    assert np.std(mean[0]) == pytest.approx(np.median(err[0]), rel=0.12)
    assert np.mean(mean[0]) == pytest.approx(100.0, abs=3 * np.median(err[0]) / np.sqrt(m))


def test_fallback_flags_and_uncovered_years():
    t1, t2 = _pairs(60, seed=3, lo=0.0, hi=2.0)  # nothing reaches year 2
    v = _model([100.0, 100.0, 100.0], 5.0, 0.0, t1, t2)
    design = span_design(t1, t2, EDGES)
    summer = np.full(60, 6, np.int64)  # every short pair in July: no seasonal sampling
    few = np.zeros(60)
    few[:4] = 1.0  # 4 pairs < 5 parameters + margin
    w = np.stack([np.ones(60), np.ones(60), few], 1)
    vv = np.stack([v, v, v], 1)
    months = _month(t1, t2)
    beta, cov, covered, flag, _n, _ = fit_span_model(vv, w, design, months, 6, 3)
    assert flag[0] == FIT_FULL and flag[2] == FIT_FEW_PAIRS and np.isnan(beta[2]).all()
    assert covered[0].tolist() == [True, True, False, True, True]
    _, _, _, flag_s, _, _ = fit_span_model(vv, w, design, summer, 6, 3)
    assert flag_s[0] == FIT_NO_SEASON
    rows = span_design(np.array([0.0, 2.0]), np.array([1.0, 3.0]), EDGES)
    mean, err = model_means(beta, cov, covered, rows)
    assert mean[0, 0] == pytest.approx(100.0, abs=1e-6)
    assert np.isnan(mean[1]).all() and np.isnan(err[1]).all()  # year 2: no pair, no value
