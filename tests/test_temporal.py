"""Period means, period bins, layer selection and the date window
(:mod:`itscube.temporal`, :mod:`itscube.window`)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from itscube import open_cube
from itscube._datasets.fields import field_dataset, finite
from itscube.errors import EmptySelectionError, InputError
from itscube.temporal import Filters, period_bins, period_mean, select_layers
from itscube.window import date_window


def test_period_mean_weights_and_bins():
    times = ["2018-12-15", "2019-01-20", "2019-07-01", "2020-03-01"]
    ds = field_dataset(lambda X, Y: 0 * X, lambda X, Y: 0 * X, ny=5, nx=5, times=times)
    ds["vx"][:] = np.array([100.0, 130.0, 200.0, 300.0], "f4")[:, None, None]
    ds["vx_error"] = ("mid_date", np.array([1.0, 2.0, 3.0, 4.0], "f4"))
    ds["vy_error"] = ("mid_date", np.array([1.0, 2.0, 3.0, 4.0], "f4"))
    allp = period_mean(ds, "all")
    w = 1 / np.array([1.0, 2, 3, 4]) ** 2
    want = (w * [100, 130, 200, 300]).sum() / w.sum()
    assert float(allp.vx[0, 2, 2]) == pytest.approx(want, rel=1e-6)
    assert float(allp.vx_error[0, 2, 2]) == pytest.approx(1 / np.sqrt(w.sum()), rel=1e-6)
    assert int(allp.n_layers[0, 2, 2]) == 4
    years = period_mean(ds, "year")
    assert list(years.period.values) == [
        "20180101-20181231",
        "20190101-20191231",
        "20200101-20201231",
    ]
    w2 = 1 / np.array([2.0, 3.0]) ** 2
    assert float(years.vx[1, 0, 0]) == pytest.approx((w2 * [130, 200]).sum() / w2.sum())
    seasons = period_bins(np.array(times, dtype="datetime64[ns]"), "season")
    assert [b.label for b in seasons] == [
        "20181201-20190228",
        "20190601-20190831",
        "20200301-20200531",
    ]
    assert list(seasons[0].index) == [0, 1]  # DJF 2018/19 holds December and January
    unweighted = period_mean(ds.drop_vars(["vx_error", "vy_error"]), "all")
    assert float(unweighted.vx[0, 0, 0]) == pytest.approx(182.5)
    assert "vx_error" not in unweighted
    with pytest.raises(InputError, match=r"^period .fortnightly-ish. is not"):
        period_bins(np.array(times, dtype="datetime64[ns]"), "fortnightly-ish")


def test_layer_filters(cubes):
    ds = open_cube(cubes.a_path)
    sel = select_layers(ds, "2017-01-01", "2018-12-31", Filters(min_dt_days=30, max_error=50))
    assert (sel.date_dt >= 30).all()
    assert (sel.mid_date >= np.datetime64("2017-01-01")).all()
    assert (sel.vx_error <= 50).all()
    with pytest.raises(EmptySelectionError, match="no layers"):
        select_layers(ds, "1990-01-01", "1990-12-31")


def test_period_mean_within_span_drops_pairs_crossing_the_bin():
    times = ["2019-06-01", "2019-07-01"]
    ds = field_dataset(lambda X, Y: 0 * X, lambda X, Y: 0 * X, ny=5, nx=5, times=times)
    ds["vx"][:] = np.array([100.0, 300.0], "f4")[:, None, None]
    ds["acquisition_date_img1"] = (
        "mid_date",
        np.array(["2019-05-20", "2018-12-01"], dtype="datetime64[ns]"),
    )
    ds["acquisition_date_img2"] = (
        "mid_date",
        np.array(["2019-06-12", "2020-01-10"], dtype="datetime64[ns]"),
    )
    both = period_mean(ds, "YS", estimator="pair-mean")
    inside = period_mean(ds, "YS", within_span=True)
    assert float(both.vx[0, 0, 0]) == pytest.approx(200.0)
    assert float(inside.vx[0, 0, 0]) == pytest.approx(100.0)  # the 13-month pair is out
    assert int(inside.n_layers[0, 0, 0]) == 1


def test_seasons_are_clipped_to_the_window():
    """A window ending 2020-12-31: the last season is 20201201-20201231 (bounds clipped),
    and every period reports how many layers it averages."""
    from itscube.temporal import period_mean

    times = ["2020-01-15", "2020-04-15", "2020-07-15", "2020-10-15", "2020-12-15"]
    ds = field_dataset(lambda X, Y: 0 * X + 100.0, lambda X, Y: 0 * X, times=times)
    pm = period_mean(ds, "season", start="2020-01-01", end="2020-12-31")
    assert next(iter(pm.period.values)) == "20200101-20200229"
    assert list(pm.period.values)[-1] == "20201201-20201231"
    assert pm.time_bnds.values[-1, 1] == np.datetime64("2021-01-01")
    assert pm.time_bnds.values[0, 0] == np.datetime64("2020-01-01")
    assert list(pm.layers.values) == [1, 1, 1, 1, 1]
    unclipped = period_mean(ds, "season")
    assert list(unclipped.period.values)[-1] == "20201201-20210228"


@pytest.mark.parametrize("bad", ["01/02/2018", "2018/01/02", "2/1/2018", "Jan 2018", "20180102"])
def test_dates_must_be_iso(bad):

    with pytest.raises(InputError, match=r"not an ISO date; use YYYY-MM-DD"):
        date_window(bad, None)


def test_partial_iso_dates_cover_the_whole_period():

    t0, t1 = date_window("2018", "2019")
    assert (t0, t1) == (pd.Timestamp("2018-01-01"), pd.Timestamp("2020-01-01"))
    assert date_window("2018-03", "2018-03")[1] == pd.Timestamp("2018-04-01")
    assert date_window(None, "2018-03-05")[1] == pd.Timestamp("2018-03-06")
    assert date_window(None, "2018-03-05T12:00")[1] == pd.Timestamp("2018-03-05T12:00")
    assert date_window(np.datetime64("2018-01-02"), None)[0] == pd.Timestamp("2018-01-02")
    assert date_window("2018-12", "2018-12")[1] == pd.Timestamp("2019-01-01")  # over New Year
    assert date_window(None, "2020-02")[1] == pd.Timestamp("2020-03-01")  # a leap February
    assert date_window("2018-06-01T12:00:00Z", None)[0] == pd.Timestamp("2018-06-01T12:00")


@pytest.mark.parametrize("bad", ["2018-13", "2018-02-30", "2018-00"])
def test_impossible_dates_are_one_line_errors(bad):
    with pytest.raises(InputError, match=r"not a valid date; use YYYY-MM-DD"):
        date_window(None, bad)


@pytest.mark.parametrize("missing", [pd.NaT, np.datetime64("NaT")])
def test_a_missing_date_object_is_refused(missing):
    from itscube.window import date_bounds, parse_date

    with pytest.raises(InputError, match=r"is not a date; use YYYY-MM-DD"):
        parse_date(missing, "start")
    with pytest.raises(InputError, match=r"is not a date"):
        date_bounds(None, missing)


def test_date_bounds_and_date_window_agree_without_pandas():
    """The download's pandas-free bounds are the same instants as the pandas ones."""
    from itscube.window import date_bounds

    for start, end in [("2018", "2019"), ("2018-03", "2018-12"), (None, "2018-03-05T12:00")]:
        b0, b1 = date_bounds(start, end)
        w0, w1 = date_window(start, end)
        assert type(b0).__module__ == "datetime"
        assert (pd.Timestamp(b0), pd.Timestamp(b1)) == (w0, w1)


def test_covering_layers_give_every_cell_the_same_pairs_and_remove_gap_edge_stripes():
    """Two pairs whose speeds differ (as seasons do), one with a cloud gap over the west
    half: averaging all pairs steps at the gap edge and the flux divergence shows a stripe
    there; averaging the pairs that cover the area does not."""
    import shapely.geometry as sg
    import xarray as xr

    from itscube._datasets.fields import FIELD_XC, FIELD_YC
    from itscube.flux import flux_divergence
    from itscube.temporal import covering_layers

    times = ["2019-03-01", "2019-08-01"]
    ds = field_dataset(lambda X, Y: 100 + 0.002 * (X - FIELD_XC), lambda X, Y: 0 * X, times=times)
    ds["vx"][1] = ds["vx"][1] * 1.2  # the summer pair is faster
    west = ds.x < FIELD_XC
    ds["vx"][1] = ds["vx"][1].where(~west)
    ds["vy"][1] = ds["vy"][1].where(~west)
    H = xr.DataArray(np.full((ds.sizes["y"], ds.sizes["x"]), 400.0), dims=("y", "x"))
    H = H.assign_coords(y=ds.y, x=ds.x)
    box = sg.box(FIELD_XC - 1500, FIELD_YC - 1000, FIELD_XC + 1500, FIELD_YC + 1000)
    X, Y = np.meshgrid(ds.x.values, ds.y.values)
    mask = (np.abs(X - FIELD_XC) < 1800) & (np.abs(Y - FIELD_YC) < 1300)
    edge = int(np.argmax(ds.x.values >= FIELD_XC))

    striped = flux_divergence(period_mean(ds, "all"), H, box)["flux_divergence"][0]
    clean = flux_divergence(period_mean(covering_layers(ds, mask), "all"), H, box)
    row = striped.sizes["y"] // 2
    assert abs(float(striped[row, edge]) - 400 * 0.002) > 5.0  # the stripe: > 5 m/yr off
    np.testing.assert_allclose(finite(clean["flux_divergence"]), 400 * 0.002, rtol=1e-4)
    assert covering_layers(ds, mask).sizes["mid_date"] == 1
    with pytest.raises(EmptySelectionError, match="whole area"):
        covering_layers(ds.isel(mid_date=[1]), mask)
