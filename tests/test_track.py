"""Tracking against analytic flows (descending y, as ITS_LIVE stores it)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyproj
import pytest

from itscube._datasets.fields import FIELD_DX as DX
from itscube._datasets.fields import FIELD_XC as XC
from itscube._datasets.fields import FIELD_YC as YC
from itscube._datasets.fields import field_dataset
from itscube.errors import InputError
from itscube.track import track

YEARS = ["2017-07-01", "2018-07-01", "2019-07-01", "2020-07-01", "2021-07-01"]


def yearly(fu, fv, **kw):
    return field_dataset(fu, fv, times=YEARS, ny=61, nx=61, **kw)


def test_uniform_flow_exact_displacement():
    ds = yearly(lambda X, Y: 0 * X + 100.0, lambda X, Y: 0 * X - 50.0)
    r = track(ds, [[XC, YC], [XC - 600, YC + 300]], "2018-03-01", "2020-03-01", dt_days=7)
    years = (pd.Timestamp("2020-03-01") - pd.Timestamp("2018-03-01")).days / 365.25
    np.testing.assert_allclose(r.displacement_x, 100 * years, rtol=1e-9)
    np.testing.assert_allclose(r.displacement_y, -50 * years, rtol=1e-9)
    assert list(r.status.values) == ["ok", "ok"]
    assert r.time.values[-1] == np.datetime64("2020-03-01")  # end date hit exactly


def test_solid_body_rotation_rk4_keeps_the_circle():
    period_yr = 8.0
    om = 2 * np.pi / period_yr
    ds = yearly(lambda X, Y: -om * (Y - YC), lambda X, Y: om * (X - XC))
    r0 = 1500.0
    end = pd.Timestamp("2018-01-01") + pd.Timedelta(days=period_yr * 365.25)
    res = track(ds, [[XC + r0, YC]], "2018-01-01", str(end), dt_days=2, steady=True)
    radius = np.hypot(res.x.values[0] - XC, res.y.values[0] - YC)
    assert np.nanmax(np.abs(radius / r0 - 1)) < 1e-6
    # one period later the point is back where it started
    assert float(res.x[0, -1]) == pytest.approx(XC + r0, abs=1e-3)
    assert float(res.y[0, -1]) == pytest.approx(YC, abs=1e-3 * r0)
    euler = track(
        ds, [[XC + r0, YC]], "2018-01-01", str(end), dt_days=2, steady=True, method="euler"
    )
    r_e = np.hypot(euler.x.values[0, -1] - XC, euler.y.values[0, -1] - YC)
    assert r_e > r0 * 1.01  # forward Euler spirals outward, as it must


def test_piecewise_annual_fields_sum_exactly():
    ds = yearly(lambda X, Y: 0 * X, lambda X, Y: 0 * X)
    speeds = np.array([50.0, 100.0, 200.0, 300.0, 400.0], "f4")
    ds["vx"][:] = speeds[:, None, None]
    ds = ds.rename(mid_date="time")  # an annual cube: one field per calendar year
    r = track(ds, [[XC - 1000, YC]], "2018-07-01", "2020-07-01", dt_days=10)
    d = lambda a, b: (pd.Timestamp(b) - pd.Timestamp(a)).days / 365.25  # noqa: E731
    want = (
        100 * d("2018-07-01", "2019-01-01")
        + 200 * d("2019-01-01", "2020-01-01")
        + 300 * d("2020-01-01", "2020-07-01")
    )
    assert float(r.displacement_x[0]) == pytest.approx(want, rel=1e-9)  # round-off only


def test_forward_then_backward_returns_to_the_seed():
    ds = yearly(lambda X, Y: 150 + 0.01 * (Y - YC), lambda X, Y: 20 + 0.005 * (X - XC))
    seeds = np.array([[XC - 2000, YC + 500], [XC - 1000, YC - 800]])
    fwd = track(ds, seeds, "2018-01-01", "2020-01-01", dt_days=5)
    ends = np.column_stack([fwd.x.values[:, -1], fwd.y.values[:, -1]])
    back = track(ds, ends, "2018-01-01", "2020-01-01", dt_days=5, backward=True)
    np.testing.assert_allclose(back.x.values[:, -1], seeds[:, 0], atol=1e-4)
    np.testing.assert_allclose(back.y.values[:, -1], seeds[:, 1], atol=1e-4)
    assert back.time.values[0] > back.time.values[-1]


def test_gap_fallbacks_flags_and_stops():
    ds = yearly(lambda X, Y: 0 * X + 200.0, lambda X, Y: 0 * X)
    i = int(np.argmin(np.abs(ds.y.values - YC)))
    j = int(np.argmin(np.abs(ds.x.values - XC)))
    hole = (slice(i - 2, i + 3), slice(j - 2, j + 3))
    ds["vx"][(1, *hole)] = np.nan  # a 2018 hole: filled from the nearest year
    ds["vy"][(1, *hole)] = np.nan
    r = track(ds, [[XC - 300, YC]], "2018-01-01", "2018-12-31", dt_days=5)
    assert r.status.values[0] == "ok"
    assert (r.filled.values[0] & 1).any()
    assert float(r.displacement_x[0]) == pytest.approx(200 * 364 / 365.25, rel=1e-9)
    # a hole in every year: spatial fill within the radius, flagged 2
    ds2 = ds.copy(deep=True)
    ds2["vx"][(slice(None), *hole)] = np.nan
    r2 = track(ds2, [[XC - 300, YC]], "2018-01-01", "2018-12-31", dt_days=5)
    assert (r2.filled.values[0] & 2).any() and r2.status.values[0] == "ok"
    # a wide hole beyond the radius: the point stops with no_data, not a silent stall
    ds3 = ds.copy(deep=True)
    ds3["vx"][:, :, j + 1 : j + 15] = np.nan  # columns j+3.. stay empty with radius 2
    r3 = track(ds3, [[XC - 300, YC]], "2018-01-01", "2020-12-31", dt_days=5, gap_radius=2)
    assert r3.status.values[0] == "no_data"
    assert np.isnan(r3.x.values[0, -1]) and np.isfinite(r3.x.values[0, 0])
    # leaving the grid
    r4 = track(ds, [[float(ds.x.max()) - DX, YC]], "2018-01-01", "2019-12-31", dt_days=5)
    assert r4.status.values[0] == "out_of_domain"


def test_lonlat_seeds_and_outputs():
    ds = yearly(lambda X, Y: 0 * X + 100.0, lambda X, Y: 0 * X)
    lon, lat = pyproj.Transformer.from_crs(3413, 4326, always_xy=True).transform(XC, YC)
    a = track(ds, [[lon, lat]], "2018-01-01", "2019-01-01", seeds_crs="EPSG:4326")
    b = track(
        ds,
        pd.DataFrame({"lon": [lon], "lat": [lat], "id": ["stake-1"]}),
        "2018-01-01",
        "2019-01-01",
    )
    assert float(a.x[0, 0]) == pytest.approx(XC, abs=1e-6)
    assert float(b.x[0, -1]) == pytest.approx(float(a.x[0, -1]))
    assert b.id.values[0] == "stake-1"
    assert float(a.lon[0, 0]) == pytest.approx(lon) and float(a.lat[0, 0]) == pytest.approx(lat)
    assert a.rio.crs.to_epsg() == 3413


def test_bad_inputs():
    ds = yearly(lambda X, Y: 0 * X + 100.0, lambda X, Y: 0 * X)
    with pytest.raises(InputError, match="start 2019-01-01 is after end 2018-01-01"):
        track(ds, [[XC, YC]], "2019-01-01", "2018-01-01")
    with pytest.raises(InputError, match="runs past the dates"):
        track(ds, [[XC, YC]], "1990-01-01", "1991-01-01")
    with pytest.raises(InputError, match="inside the cube"):
        track(ds, [[0.0, 0.0]], "2018-01-01", "2019-01-01")
    with pytest.raises(InputError, match=r"^method must be one of rk4"):
        track(ds, [[XC, YC]], "2018-01-01", "2019-01-01", method="rk45")


def test_ensemble_spread_grows_as_error_times_time():
    from itscube.track import ensemble_spread

    ds = yearly(lambda X, Y: 0 * X + 100.0, lambda X, Y: 0 * X, sigma=10.0)
    sp = ensemble_spread(ds, [[XC, YC]], "2018-01-01", "2020-01-01", 400, steady=True, dt_days=10)
    t = 730 / 365.25
    sigma_mean = 10.0 / np.sqrt(2)  # error of the steady mean of the 2 layers in the window
    assert float(sp.spread_x[0]) == pytest.approx(sigma_mean * t, rel=0.12)
    assert float(sp.spread_y[0]) == pytest.approx(sigma_mean * t, rel=0.12)


def test_displacement_field_of_uniform_flow():
    from itscube.track import displacement_field

    ds = yearly(lambda X, Y: 0 * X + 100.0, lambda X, Y: 0 * X + 30.0)
    f = displacement_field(ds, "2018-01-01", "2019-01-01", grid_step=4)
    assert f.sizes == {"y": 16, "x": 16}
    ok = f.status.values == "ok"
    assert ok.sum() > 100 and (f.status.values[~ok] == "out_of_domain").all()
    np.testing.assert_allclose(f.dx.values[ok], 100 * 365 / 365.25, rtol=1e-9)
    np.testing.assert_allclose(f.dy.values[ok], 30 * 365 / 365.25, rtol=1e-9)
    assert f.rio.crs.to_epsg() == 3413


def test_window_past_the_cube_is_an_error_or_flagged_extrapolation():
    """Composites cover mid-2017..mid-2021 (bins with data); a window past that is refused
    by default, and with extrapolate the outside steps are flagged, never reported ok."""
    from itscube.track import EXTRAPOLATED

    ds = yearly(lambda X, Y: 0 * X + 100.0, lambda X, Y: 0 * X)
    with pytest.raises(InputError, match=r"runs past the dates .*\.\.2021-12-31\)"):
        track(ds, [[XC, YC]], "2021-06-01", "2023-12-31", dt_days=10)
    r = track(ds, [[XC, YC]], "2021-06-01", "2023-12-31", dt_days=10, extrapolate=True)
    assert list(r.status.values) == ["extrapolated"]
    t = pd.DatetimeIndex(r.time.values)
    flags = r.filled.values[0]
    late = t[1:] > pd.Timestamp("2022-01-01")
    assert np.all(flags[1:][late] & EXTRAPOLATED) and not np.any(flags[1:][~late] & EXTRAPOLATED)
    # the nearest (2021) field is held: uniform 100 m/yr all the way, but flagged
    years = (pd.Timestamp("2023-12-31") - pd.Timestamp("2021-06-01")).days / 365.25
    assert float(r.displacement_x[0]) == pytest.approx(100 * years, rel=1e-9)
    inside = track(ds, [[XC, YC]], "2018-01-01", "2020-12-31", dt_days=10, extrapolate=True)
    assert list(inside.status.values) == ["ok"] and not (inside.filled.values & EXTRAPOLATED).any()


def test_displacement_map_masks_truncated_tracks():
    """Points that leave the grid stop early: their truncated displacement is masked, and
    the status says why (no fake slowdown at the edge)."""
    from itscube.track import STATUS, displacement_field

    ds = yearly(lambda X, Y: 0 * X + 2000.0, lambda X, Y: 0 * X)
    f = displacement_field(ds, "2018-01-01", "2019-01-01", grid_step=4)
    left = f.status.values == "out_of_domain"
    assert left.any() and (~left).any()
    assert np.all(np.isnan(f.displacement.values[left]))
    np.testing.assert_allclose(f.displacement.values[~left], 2000.0 * 365 / 365.25, rtol=1e-9)
    assert np.all(f.status_code.values[left] == STATUS.index("out_of_domain"))


def test_tracking_is_lazy_on_dask_and_equals_the_eager_result():
    ds = yearly(lambda X, Y: 100 + 0.001 * (X - XC), lambda X, Y: 0 * X - 50.0)
    seeds = [[XC - 600, YC + 300], [XC, YC], [XC + 300, YC - 300]]
    eager = track(ds, seeds, "2018-03-01", "2020-03-01", dt_days=7)
    lazy = track(ds.chunk({"mid_date": 1}), seeds, "2018-03-01", "2020-03-01", dt_days=7,
                 chunk_points=2)  # fmt: skip
    assert lazy["x"].chunks == ((2, 1), (lazy.sizes["time"],))  # blocks of points, not run
    got = lazy.compute()
    np.testing.assert_allclose(got["x"].values, eager["x"].values)
    np.testing.assert_allclose(got["displacement"].values, eager["displacement"].values)
    assert list(got["status"].values) == list(eager["status"].values)


def test_output_every_keeps_fewer_positions_and_the_same_displacement():
    ds = yearly(lambda X, Y: 0 * X + 100.0, lambda X, Y: 0 * X - 50.0)
    full = track(ds, [[XC, YC]], "2018-03-01", "2020-03-01", dt_days=7)
    sparse = track(ds, [[XC, YC]], "2018-03-01", "2020-03-01", dt_days=7, output_every=10)
    assert sparse.sizes["time"] < full.sizes["time"] / 5
    assert sparse.time.values[-1] == full.time.values[-1]
    np.testing.assert_allclose(sparse.displacement, full.displacement, rtol=1e-12)
    np.testing.assert_allclose(sparse.x.values[0], full.sel(time=sparse.time).x.values[0])
    with pytest.raises(InputError, match=r"^output_every"):
        track(ds, [[XC, YC]], "2018-03-01", "2020-03-01", output_every=0)


def test_the_domain_reaches_the_outer_cell_edges():
    """Seeds on the outermost pixel centres stay in the grid while they move less than half a
    pixel outward (a pixel's value covers its cell); beyond the cell edge they leave."""
    ds = field_dataset(
        lambda X, Y: 0 * X + 100.0, lambda X, Y: 0 * X + 10.0,
        times=["2018-07-02", "2019-07-02"], ny=10, nx=10,
    )  # fmt: skip
    x, y = ds.x.values, ds.y.values
    edges = [[x[0], y[5]], [x[5], y[0]], [x[0], y[0]], [x[-1] - 300, y[-1]]]
    half_year = track(ds, edges, "2018-07-01", "2018-12-31", period="year")
    assert set(half_year.status.values) == {"ok"}  # 5 m up and 50 m right: inside the cells
    np.testing.assert_allclose(half_year.displacement_y, 10 * 183 / 365.25, rtol=1e-9)
    far = track(ds, [[x[-1], y[5]]], "2018-07-01", "2019-06-30", period="year")
    assert far.status.values[0] == "out_of_domain"  # 100 m right: past the 60 m half cell
    assert 0 < float(far.displacement_x[0]) <= 60.0


def test_lonlat_in_threads_equals_one_transform(monkeypatch):
    """Positions split over threads give what one PROJ transform gives, NaN kept."""
    import importlib

    import pyproj

    track_module = importlib.import_module("itscube.track")  # the module, not the function

    monkeypatch.setattr(track_module, "LONLAT_PART", 50)
    rng = np.random.default_rng(3)
    X = -150000 + 24000 * rng.random((40, 9))
    Y = -2250000 + 24000 * rng.random((40, 9))
    X[3, 5:] = Y[3, 5:] = np.nan  # a stopped track
    lon, lat = track_module._lonlat(X, Y, "EPSG:3413")
    want = pyproj.Transformer.from_crs(3413, 4326, always_xy=True).transform(X, Y)
    np.testing.assert_array_equal(np.isnan(lon), np.isnan(X))
    np.testing.assert_allclose(lon, want[0], rtol=0, atol=1e-12)
    np.testing.assert_allclose(lat, want[1], rtol=0, atol=1e-12)
