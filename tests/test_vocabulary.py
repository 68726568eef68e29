"""One name per concept in the public API; the old names still work for one release."""

from __future__ import annotations

import inspect
import warnings

import numpy as np
import pytest

import itscube
from itscube.errors import InputError
from itscube.geometry import line_targets, profile_targets
from itscube.products.flux import run_qdiv
from itscube.products.series import run_series
from itscube.products.strain import run_strain
from itscube.products.track import run_track
from itscube.series import line_from_file, time_series
from itscube.track import displacement_field, ensemble_spread, track, track_blocks

NAMES = {
    run_strain: ({"upscale"}, {"upscales"}),
    run_qdiv: ({"upscale"}, {"upscales"}),
    run_track: ({"period", "grid_step", "ensemble", "gap_radius"}, {"composite"}),
    run_series: (
        {"regularise", "climatology", "radius"},
        {"regular", "with_climatology", "buffer"},
    ),
    track: ({"period", "gap_radius"}, {"composite"}),
    track_blocks: ({"seeds", "start", "end"}, {"composite"}),
    ensemble_spread: ({"ensemble"}, {"n"}),
    time_series: ({"radius"}, {"buffer"}),
    displacement_field: ({"grid_step"}, {"step"}),
    profile_targets: ({"spacing"}, {"spacing_m"}),
    line_targets: ({"spacing"}, {"spacing_m"}),
    line_from_file: ({"spacing"}, {"spacing_m"}),
}


@pytest.mark.parametrize("fn", list(NAMES), ids=lambda f: f.__name__)
def test_signatures_use_the_one_name(fn):
    params = set(inspect.signature(fn).parameters)
    new, old = NAMES[fn]
    assert new <= params
    assert not (old & params)


def test_old_keyword_warns_and_gives_the_same_result():
    new = profile_targets(-150000, -2250000, -149000, -2250000, spacing=250.0, crs="EPSG:3413")
    with pytest.warns(FutureWarning, match=r"spacing_m=\.\.\.\) is deprecated.*use spacing="):
        old = profile_targets(
            -150000, -2250000, -149000, -2250000, spacing_m=250.0, crs="EPSG:3413"
        )
    np.testing.assert_array_equal(old.x, new.x)
    assert len(new) == 5  # 0, 250, ..., 1000 m: the spacing was applied, not the default 120


def test_old_and_new_keyword_together_is_an_error():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(InputError, match="give spacing only"):
            line_targets([(0, 0), (1000, 0)], spacing=100.0, spacing_m=200.0, crs="EPSG:3413")


def test_product_type_is_public():
    assert itscube.Product is itscube.products.Product
    assert inspect.signature(run_track).return_annotation in ("Product", itscube.Product)


def test_gap_radius_zero_is_off_and_negative_is_refused_alike(cubes):
    from itscube.strain import strain_rates

    ds = itscube.open_cube(cubes.a_path, start="2019-01-01", end="2019-03-31").isel(mid_date=[0])
    ds["vx"] = ds["vx"].where(ds.x != ds.x[10])  # a one-pixel-wide gap
    off = strain_rates(ds, 1, gap_radius=0)["exx"]
    assert off.isnull().sum() > strain_rates(ds, 1, gap_radius=2)["exx"].isnull().sum()
    assert off.identical(strain_rates(ds, 1, gap_radius=None)["exx"])
    seeds = [[float(ds.x[20]), float(ds.y[20])]]
    for call in (
        lambda: strain_rates(ds, 1, gap_radius=-1),
        lambda: track(ds, seeds, "2019-01-01", "2019-03-31", gap_radius=-1, extrapolate=True),
    ):
        with pytest.raises(InputError, match=r"gap_radius must be >= 0 pixels"):
            call()


def test_attributes_itscube_adds_carry_its_prefix(cubes, server):
    """Dataset attributes are the source cube's (names kept) or itscube's (``itscube_``)."""
    from itscube.geometry import point_targets
    from itscube.strain import strain_rates
    from itscube.temporal import period_mean, regularise

    ds = itscube.open_cube(cubes.a_path, start="2019-01-01", end="2019-06-30")
    source = set(ds.attrs)
    seeds = [[float(ds.x[20]), float(ds.y[20])]]
    series = time_series(
        point_targets(seeds, crs="EPSG:3413"), f"{server.url}/A.zarr", start="2019-01-01",
        end="2019-06-30",
    )  # fmt: skip
    results = {
        "strain_rates": strain_rates(period_mean(ds, "all"), 1),
        "track": track(ds, seeds, "2019-01-01", "2019-06-30", period="month"),
        "time_series": series,
        "regularise": regularise(series, "MS"),
    }
    for what, res in results.items():
        added = {k for k in res.attrs if k not in source and k != "source_description"}
        assert added, what
        assert all(k.startswith("itscube_") for k in added), (what, sorted(added))


def test_summary_head_keys_are_the_typed_ones(cubes):
    from itscube.products import Summary
    from itscube.products._common import summary_head
    from itscube.temporal import period_mean

    ds = itscube.open_cube(cubes.a_path, start="2019-01-01", end="2019-06-30")
    head = summary_head("strain_rates", cubes.a_path, ds, "20190101", "20190630", period_mean(ds))
    assert {"product", "window", "estimator", "fit_fallback_pixels"} <= set(head)
    assert set(head) <= set(Summary.__annotations__)
