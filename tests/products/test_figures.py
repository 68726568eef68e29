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
