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
