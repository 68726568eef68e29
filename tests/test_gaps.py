"""Gap filling: harmonic inpainting within a radius (kernel and xarray), the nearest-in-time
fallback of composite series."""

from __future__ import annotations

import numpy as np
import pytest

from itscube import strain_rates
from itscube._datasets.fields import FIELD_XC as XC
from itscube._datasets.fields import FIELD_YC as YC
from itscube._datasets.fields import field_dataset
from itscube.gaps import fill_gaps_2d


def centre(da) -> float:
    return float(da.sel(x=XC, y=YC, method="nearest").squeeze())


def test_fill_gaps_is_bounded_and_exact_for_linear_fields():
    y, x = np.mgrid[0:30, 0:30].astype("f8")
    field = 3.0 + 0.5 * x - 0.25 * y
    holey = field.copy()
    holey[(x - 15) ** 2 + (y - 15) ** 2 <= 9] = np.nan  # radius-3 hole
    filled = fill_gaps_2d(holey, radius=5)
    np.testing.assert_allclose(filled, field, atol=1e-9)
    part = fill_gaps_2d(holey, radius=1.5)
    assert np.isnan(part[15, 15])  # 3 pixels from data: beyond the radius
    # partly filled gaps are harmonic: bounded by the surrounding data, no overshoot
    assert np.isfinite(part[15, 12])
    assert field[12:19, 10:13].min() <= part[15, 12] <= field[12:19, 10:13].max()
    ds = field_dataset(lambda X, Y: 100 + 0.002 * (X - XC), lambda X, Y: 0 * X + 1.0)
    ds["vx"][0, 14:17, 19:22] = np.nan
    assert np.isnan(centre(strain_rates(ds, 1)["exx"]))
    assert centre(strain_rates(ds, 1, gap_radius=2)["exx"]) == pytest.approx(0.002, rel=1e-4)
