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
