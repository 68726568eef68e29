"""Figure helpers: what they draw, checked on the artists."""

from __future__ import annotations

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np

from itscube.products.figures import annual_steps


def test_annual_composites_are_steps_over_whole_calendar_years():
    times = np.array(["2016-07-02", "2017-07-02", "2019-07-02"], dtype="datetime64[ns]")
    fig, ax = plt.subplots()
    lines = annual_steps(ax, times, np.array([100.0, 120.0, 90.0]))
    spans = [
        (
            mdates.num2date(seg[0][0]).date().isoformat(),
            mdates.num2date(seg[1][0]).date().isoformat(),
        )
        for seg in lines.get_segments()
    ]
    assert spans == [
        ("2016-01-01", "2017-01-01"),
        ("2017-01-01", "2018-01-01"),
        ("2019-01-01", "2020-01-01"),  # a missing year stays a gap
    ]
    assert [seg[0][1] for seg in lines.get_segments()] == [100.0, 120.0, 90.0]
    plt.close(fig)


def test_a_map_over_an_image_stays_translucent_on_any_scale():
    """Over a background the map is drawn with alpha 0.6, also on a diverging or fixed scale
    (the limits once replaced the keywords and dropped the translucency)."""
    import xarray as xr

    from itscube.products.figures import map_panel

    coords = {"y": [3.0, 2.0, 1.0], "x": [0.0, 1.0, 2.0, 3.0]}
    da = xr.DataArray(np.linspace(-2, 1, 12).reshape(3, 4), dims=("y", "x"), coords=coords)
    rgb = xr.DataArray(
        np.full((3, 3, 4), 90, "u1"), dims=("band", "y", "x"), coords={"band": [1, 2, 3], **coords}
    )
    for kw in ({"diverging": True}, {"limits": (-1.0, 1.0)}, {}):
        fig, ax = plt.subplots()
        map_panel(ax, da, "t", background=rgb, **kw)
        image, data = ax.get_images()
        assert image.get_array().shape == (3, 4, 3) and data.get_alpha() == 0.6, kw
        if kw:
            lo, hi = data.get_clim()
            assert lo == -hi and 1.0 <= hi <= 2.0, kw
        plt.close(fig)


def test_csv_bytes_reads_back_as_the_frame():
    """The series CSV writer (Arrow): every value reads back, times keep their microsecond
    token, text with commas and quotes survives, missing values stay missing."""
    import io

    import pandas as pd

    from itscube.products._outputs import csv_bytes

    frame = pd.DataFrame(
        {
            "id": ["a", "b,c", 'q"x'],
            "v": np.array([115.0, np.nan, 2.5e-7], "f4"),
            "x": [-150000.5, 1e-7, 123456789.123],
            "mid_date": pd.to_datetime(
                ["2015-01-14 11:55:22.150105", None, "2016-01-01 00:00:00"], format="ISO8601"
            ),
        }
    )
    text = csv_bytes(frame).decode()
    assert text.splitlines()[0] == "id,v,x,mid_date"
    assert ',2015-01-14 11:55:22.150105\n"b,c"' in text  # the token, and text quoted
    back = pd.read_csv(io.StringIO(text), parse_dates=["mid_date"], dtype={"id": str})
    assert list(back["id"]) == list(frame["id"])
    np.testing.assert_array_equal(back["v"].to_numpy("f4"), frame["v"].to_numpy())
    np.testing.assert_array_equal(back["x"].to_numpy(), frame["x"].to_numpy())
    assert back["mid_date"].isna().tolist() == [False, True, False]
    assert (back["mid_date"].dropna().to_numpy() == frame["mid_date"].dropna().to_numpy()).all()


def test_series_figure_draws_each_pair_from_its_first_to_its_second_image(monkeypatch, tmp_path):
    """Every image pair is a bar at its speed from its first to its second acquisition, in
    the colour of its separation's octave; every error bar spans v -/+ v_error at mid_date.
    (Drawn as broken lines, one per colour: read back segment by segment.)"""
    import xarray as xr

    from itscube.products.figures import series as fig_series

    t1 = np.array(
        ["2018-01-01", "2018-03-01", "2018-06-01", "2018-06-05", "2018-07-01"], "datetime64[ns]"
    )
    dt = np.array([5.0, 20.0, 100.0, 6.0, np.nan])  # octaves 4-8, 16-32, 64-128, 4-8 days, ?
    t2 = t1 + (np.nan_to_num(dt, nan=10.0) * 86400e9).astype("timedelta64[ns]")
    one = xr.Dataset(
        {
            "v": ("mid_date", [100.0, 120.0, np.nan, 90.0, 80.0]),
            "v_error": ("mid_date", [5.0, 7.0, 1.0, 3.0, 2.0]),
            "acquisition_date_img1": ("mid_date", t1),
            "acquisition_date_img2": ("mid_date", t2),
            "date_dt": ("mid_date", dt),
        },
        coords={"mid_date": t1 + (t2 - t1) / 2, "id": "p", "lon": -48.8, "lat": 69.4},
    )
    kept = {}
    monkeypatch.setattr(fig_series, "save", lambda fig, path: kept.setdefault("fig", fig))
    fig_series.series_figure(one, tmp_path / "s.png")
    ax, cbar = kept["fig"].axes
    lines = {}
    for line in ax.get_lines():
        x, y = (np.asarray(a, "f8").reshape(-1, 3)[:, :2] for a in line.get_data())
        lines[tuple(np.round(line.get_color(), 6)) if line.get_color() != "0.7" else "err"] = (x, y)
    ex, ey = lines.pop("err")
    mid = mdates.date2num(one["mid_date"].values[[0, 1, 3, 4]])
    np.testing.assert_allclose(ex, np.column_stack([mid, mid]))
    np.testing.assert_allclose(ey, [[95, 105], [113, 127], [87, 93], [78, 82]])
    cmap = plt.get_cmap("viridis", 3)  # 4..32 days: three octaves 4-8, 8-16, 16-32
    bars = lines
    assert len(bars) == 2  # no bar for the missing speed, nor for the unknown separation
    x4, y4 = bars[tuple(np.round(cmap(0), 6))]
    np.testing.assert_allclose(x4, mdates.date2num(np.stack([t1[[0, 3]], t2[[0, 3]]], 1)))
    np.testing.assert_allclose(y4, [[100, 100], [90, 90]])
    x16, y16 = bars[tuple(np.round(cmap(2), 6))]
    np.testing.assert_allclose(x16, mdates.date2num(np.stack([t1[[1]], t2[[1]]], 1)))
    np.testing.assert_allclose(y16, [[120, 120]])
    assert list(cbar.get_yticks()) == [4, 8, 16, 32]  # the octaves on the colorbar
    plt.close(kept["fig"])
