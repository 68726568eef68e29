"""open_cube on local stores and through real HTTP and S3 servers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from itscube import CubeFormatError, CubeNotFoundError, InputError, open_cube
from itscube.io.cube import normalise_cube
from tests.helpers import analytic


def _check_normalised(ds, cubes):
    mid = ds.indexes["mid_date"]
    assert mid.is_monotonic_increasing and mid.is_unique
    # the microsecond uniqueness token survives the float "days since" encoding
    np.testing.assert_array_equal(np.sort(cubes.layers.mid_date), mid.values)
    assert ds.vx.dtype == np.float32 and ds.vy.dtype == np.float32
    assert ds.vx.attrs["units"] == "m yr-1"
    assert ds.rio.crs.to_epsg() == 3413
    assert ds.vx.attrs["grid_mapping"] == "mapping"
    assert ds["mapping"].attrs["spatial_epsg"] == 3413
    assert float(ds.y[0]) > float(ds.y[-1])  # y kept descending
    assert ds.date_dt.dtype == np.float32 and ds.date_dt.attrs["units"] == "days"
    assert ds.attrs["itscube_kind"] == "subyearly"
    vx = ds.vx.values
    assert np.isnan(vx).any(), "fill values must become NaN"
    assert np.nanmin(vx) > -1000  # no -32767 left
    k = 10
    ex, ey = analytic(ds.x.values, ds.y.values, ds.date_center.values[k])
    valid = ~np.isnan(vx[k])
    np.testing.assert_allclose(vx[k][valid], ex[valid], atol=0.5)
    np.testing.assert_allclose(ds.vy.values[k][valid], ey[valid], atol=0.5)


def test_open_local(cubes):
    _check_normalised(open_cube(cubes.a_path), cubes)


def test_open_http(cubes, server):
    _check_normalised(open_cube(f"{server.url}/A.zarr"), cubes)


@pytest.mark.s3
@pytest.mark.slow
def test_open_s3(cubes, s3_server):
    _check_normalised(open_cube("s3://its-live-data/datacubes/A.zarr"), cubes)


@pytest.mark.s3
def test_s3_unconsolidated_is_an_error(s3_server):
    with pytest.raises(CubeFormatError, match="consolidated"):
        open_cube("s3://its-live-data/datacubes/unconsolidated.zarr")


def test_http_unconsolidated_is_a_clear_error(server):
    with pytest.raises(CubeFormatError, match="consolidated metadata"):
        open_cube(f"{server.url}/unconsolidated.zarr")


def test_missing_store(server, tmp_path):
    with pytest.raises(CubeNotFoundError):
        open_cube(f"{server.url}/nothing.zarr")
    with pytest.raises(CubeNotFoundError):
        open_cube(tmp_path / "nothing.zarr")


def test_time_window_and_variables(cubes):
    ds = open_cube(cubes.a_path, start="2018-01-01", end="2018-12-31", variables=["vx", "vy"])
    t = ds.indexes["mid_date"]
    assert t.min() >= pd.Timestamp("2018-01-01") and t.max() < pd.Timestamp("2019-01-01")
    expected = (
        (cubes.layers.mid_date >= np.datetime64("2018-01-01"))
        & (cubes.layers.mid_date < np.datetime64("2019-01-01"))
    ).sum()
    assert len(t) == expected
    assert set(ds.data_vars) == {"vx", "vy"} and "mapping" in ds.coords
    with pytest.raises(InputError, match="unknown variable"):
        open_cube(cubes.a_path, variables=["speed"])


def test_missing_velocity_is_an_error(cubes):
    ds = open_cube(cubes.a_path)
    with pytest.raises(CubeFormatError, match="lacks variable"):
        normalise_cube(ds.drop_vars("vx"))


def test_open_annual(cubes):
    ds = open_cube(cubes.root / "A_annual.zarr")
    assert ds.attrs["itscube_kind"] == "annual"
    assert ds.indexes["time"].is_monotonic_increasing
    assert ds.vx_error.dtype == np.float32 and float(ds.vx_error.max()) == 3.0
    ex, _ = analytic(ds.x.values, ds.y.values, ds.time.values[2])
    valid = ~np.isnan(ds.vx.values[2])
    # annual values are the field at mid-year (time coordinate is 2 July)
    np.testing.assert_allclose(ds.vx.values[2][valid], ex[valid], atol=0.1)


def test_open_netcdf(cubes, tmp_path):
    ds = open_cube(cubes.a_path, variables=["vx", "vy", "date_dt"])
    nc = tmp_path / "cube.nc"
    ds.drop_vars("mapping").assign_attrs(projection="3413").to_netcdf(nc)
    again = open_cube(nc)
    assert again.rio.crs.to_epsg() == 3413
    np.testing.assert_array_equal(again.vx.values, ds.vx.values)


@pytest.mark.s3
def test_s3_reads_keep_as_many_connections_as_requests_in_flight(s3_server):
    """s3fs's client holds botocore's 10 connections unless told otherwise, which would
    queue all but 10 of a reader's requests: the pool is sized to the requests in flight
    (the ``workers`` of a source, the ``concurrency`` setting by default), and a user's
    own ``config_kwargs`` win."""
    from itscube import options
    from itscube.io.remote import storage_options_for
    from itscube.io.stores.open import open_source, run_sync

    def pool(**kw) -> int:
        fs = open_source("s3://its-live-data/datacubes/A.zarr", **kw).store._store.fs
        client = run_sync(fs.set_session())  # the aiobotocore client the reads use
        return client._endpoint.http_session._max_pool_connections

    assert pool(workers=48) == 48
    with options.set_options(concurrency=96):  # open_cube's xarray reads take the setting
        opts = storage_options_for("s3://its-live-data/datacubes/A.zarr")
    assert opts["config_kwargs"] == {"max_pool_connections": 96}
    kw = {"config_kwargs": {"max_pool_connections": 7, "connect_timeout": 3}}
    assert pool(workers=48, storage_options=kw) == 7


@pytest.mark.s3
def test_s3_chunks_are_read_in_one_request_each(cubes, s3_requests):
    """One GET per chunk: no HEAD before it (s3fs asks an object's size first unless told
    not to, which doubles the round trips of every chunk)."""
    ds = open_cube("s3://its-live-data/datacubes/A.zarr")
    s3_requests.clear()
    ds.vx.isel(mid_date=slice(0, 5)).load()
    chunk_reads = [(m, p) for m, p in s3_requests if "/vx/" in p]
    assert chunk_reads and {m for m, _ in chunk_reads} == {"GET"}
    assert len(chunk_reads) == len({p for _, p in chunk_reads})  # each chunk read once


def test_http_reads_keep_as_many_connections_as_requests_in_flight(cubes, server):
    """aiohttp's session holds 100 connections: a source keeping more requests in flight
    (``workers``) gets a pool of that size; at or below 100, aiohttp's own is kept."""
    from itscube.io.stores.open import open_source, run_sync

    def pool(workers: int) -> int:
        fs = open_source(f"{server.url}/A.zarr", workers=workers).store._store.fs
        return run_sync(fs.set_session()).connector.limit

    assert pool(150) == 150
    assert pool(64) == 100
