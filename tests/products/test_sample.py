"""The bundled sample: it is what the generator makes, it follows the ITS_LIVE v2 schema,
and it is served like the real bucket (catalog included)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from itscube import find_cubes, load_catalog, open_cube
from itscube._datasets import itslive as synthetic
from itscube.geometry import bbox_area
from itscube.io.catalog import resolve_url
from itscube.sample import (
    SAMPLE_CENTRE,
    SAMPLE_FIELD,
    SAMPLE_LAYERS,
    SAMPLE_SHAPE,
    build_sample,
    bundle_path,
    ensure_sample,
    serve_sample,
)
from tests.helpers import same_dataset

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "Example_Qdiv"


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    return ensure_sample(tmp_path_factory.mktemp("bundled") / "sample")


def test_bundle_is_small_and_complete(sample):
    assert bundle_path().stat().st_size < 10e6  # "a few MB", well under 20 MB
    for path in (sample.subyearly, sample.annual, sample.catalog, sample.thickness):
        assert path.exists(), path
    assert sample.info["synthetic"] is True
    assert "NOT real ITS_LIVE data" in sample.info["description"]


@pytest.mark.slow
def test_bundle_equals_a_fresh_build(sample, tmp_path):
    """The shipped data are exactly what ``build_sample`` generates (documented by code)."""
    fresh = build_sample(tmp_path / "fresh")
    for store in ("subyearly", "annual"):
        a = xr.open_zarr(getattr(sample, store), mask_and_scale=False, decode_times=False)
        b = xr.open_zarr(getattr(fresh, store), mask_and_scale=False, decode_times=False)
        same_dataset(a, b)
        # attributes, dtypes, fill values, chunks and compressors are identical too
        meta_a = json.loads((getattr(sample, store) / ".zmetadata").read_text())
        meta_b = json.loads((getattr(fresh, store) / ".zmetadata").read_text())
        assert meta_a == meta_b
    assert json.loads(sample.catalog.read_text()) == json.loads(fresh.catalog.read_text())
    assert sample.boundary.read_text() == fresh.boundary.read_text()
    with (
        xr.open_dataarray(sample.thickness, engine="rasterio") as ta,
        xr.open_dataarray(fresh.thickness, engine="rasterio") as tb,
    ):
        np.testing.assert_array_equal(ta.values, tb.values)
        assert ta.rio.crs == tb.rio.crs
    # the repository's Example_Qdiv templates are the bundled ones
    assert (EXAMPLES / "Boundaries.csv").read_text() == sample.boundary.read_text()
    with xr.open_dataarray(EXAMPLES / "Thickness.tif", engine="rasterio") as te:
        np.testing.assert_array_equal(te.values, ta.values)


def test_subyearly_sample_schema(sample):
    raw = xr.open_zarr(sample.subyearly, mask_and_scale=False)
    assert raw.vx.dims == ("mid_date", "y", "x")
    assert raw.vx.dtype == np.int16 and raw.vx.attrs["_FillValue"] == -32767
    assert raw.vx.encoding["chunks"] == (SAMPLE_LAYERS, 10, 10)
    assert raw.sizes["mid_date"] == SAMPLE_LAYERS and raw.vx.shape[1:] == SAMPLE_SHAPE
    assert not (np.diff(raw.mid_date.values.astype("i8")) > 0).all()  # unsorted, as ITS_LIVE
    assert raw.vx_error.dims == ("mid_date",)
    sats = set(np.char.add(raw.mission_img1.values.astype(str), raw.satellite_img1.values))
    assert {"L8", "L9", "S1A", "S2A", "S2B"} <= sats
    dt = raw.date_dt.values
    assert dt.min() < 12 and dt.max() > 300
    assert (raw.roi_valid_percentage.values < 90).sum() > 20  # cloud gaps
    x, y = raw.x.values, raw.y.values
    assert (np.diff(y) < 0).all() and np.allclose(np.diff(x), 120)
    assert np.allclose((x - 52.5) % 120, 0)  # the global ITS_LIVE 120 m lattice


@pytest.mark.slow
def test_sample_noise_matches_its_stated_errors(sample):
    """Each layer = time-mean of the analytic field over the pair + N(0, vx_error) noise."""
    ds = open_cube(sample.subyearly)
    X, Y = np.meshgrid(ds.x.values, ds.y.values)
    t1 = synthetic.decimal_year(ds.acquisition_date_img1.values)
    t2 = synthetic.decimal_year(ds.acquisition_date_img2.values)
    z = []
    for k in range(0, ds.sizes["mid_date"], 7):
        truth, _ = synthetic.mean_velocity(SAMPLE_FIELD, X, Y, t1[k], t2[k])
        r = (ds.vx.values[k] - truth) / float(ds.vx_error[k])
        z.append(r[np.isfinite(r)])
    z = np.concatenate(z)
    assert abs(z.mean()) < 0.05
    assert 0.9 < z.std() < 1.1


def test_annual_sample_is_the_annual_mean(sample):
    ann = open_cube(sample.annual)
    assert ann.vx.dims == ("time", "y", "x") and ann.vx.dtype == np.float32
    X, Y = np.meshgrid(ann.x.values, ann.y.values)
    for k, t in enumerate(ann.time.values):
        year = int(str(t)[:4])
        truth, _ = synthetic.mean_velocity(SAMPLE_FIELD, X, Y, year, year + 1)
        resid = ann.vx.values[k] - truth
        assert np.nanstd(resid) < 4 and abs(np.nanmean(resid)) < 0.5


def test_sample_served_like_the_bucket():
    with serve_sample() as srv:
        cat = load_catalog(srv.catalog_url, cache=False)
        cx, cy = SAMPLE_CENTRE
        area = bbox_area(cx - 1000, cy - 1000, cx + 1000, cy + 1000, crs="EPSG:3413")
        (entry,) = find_cubes(area, cat)
        assert entry.url("subyearly") == srv.subyearly_url
        assert entry.url("annual") == srv.annual_url
        ds = open_cube(entry.url("subyearly"))
        assert ds.sizes["mid_date"] == SAMPLE_LAYERS
        assert np.isfinite(ds.vx.isel(mid_date=0).values).any()


def test_relative_catalog_urls(tmp_path):
    assert resolve_url("c.zarr", "http://h:1/a/catalog.json") == "http://h:1/a/c.zarr"
    assert resolve_url("s3://b/c.zarr", "http://h/catalog.json") == "s3://b/c.zarr"
    assert resolve_url("/data/c.zarr", str(tmp_path / "cat.json")) == "/data/c.zarr"
    assert resolve_url("sub/c.zarr", str(tmp_path / "cat.json")) == str(tmp_path / "sub/c.zarr")


def test_outlet_glacier_head_ramp_is_smooth_and_exact_below():
    f = SAMPLE_FIELD
    x = np.linspace(f.x_head - 500, f.x_head + f.head_ramp + 3000, 4001)
    y = np.full_like(x, f.y_c)
    vx, _ = f(x, y, 2018.0)
    jump = np.abs(np.diff(vx)).max() / (x[1] - x[0])
    top = f.u_head + f.grad * f.head_ramp
    assert jump < 1.6 * top / f.head_ramp * f.factor(2018.0)  # no step at the head
    below = x >= f.x_head + f.head_ramp
    law = f.factor(2018.0) * (f.u_head + f.grad * (x - f.x_head))
    np.testing.assert_allclose(vx[below], law[below], rtol=1e-12)
    assert (vx[x < f.x_head] == 0).all()


def test_mean_velocity_over_a_pair():
    lin = synthetic.LinearField(u0=100.0, accel=10.0, t0=2015.0)
    vx, _ = synthetic.mean_velocity(lin, np.zeros(1), np.zeros(1), 2016.0, 2017.5)
    assert vx[0] == pytest.approx(100.0 + 10.0 * 1.75, rel=1e-12)  # linear in t: exact
    glacier = synthetic.OutletGlacier(x_head=0.0, y_c=0.0, trend=0.0)
    vx, _ = synthetic.mean_velocity(glacier, np.array([0.0]), np.array([0.0]), 2018.0, 2019.0)
    assert vx[0] == pytest.approx(glacier.u_head, rel=1e-3)  # a full year: no seasonal bias


def test_synthetic_cubes_never_point_at_the_real_bucket(sample):
    """The sample is labelled synthetic: no attribute or granule URL names its-live-data."""
    for path in (sample.subyearly, sample.annual):
        ds = xr.open_zarr(path, decode_times=False)
        texts = [str(v) for v in ds.attrs.values()]
        for var in ds.variables.values():
            texts += [str(v) for v in var.attrs.values()]
        if "granule_url" in ds:
            texts += [str(u) for u in ds["granule_url"].values]
        assert not [t for t in texts if "its-live-data" in t or "amazonaws" in t], path
        assert "synthetic" in ds.attrs.get("author", "") + ds.attrs.get("institution", "")
    sub = xr.open_zarr(sample.subyearly)
    assert sub.attrs["url"].startswith("synthetic://") and sub.attrs["s3"].startswith(
        "synthetic://"
    )
