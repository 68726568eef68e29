"""Every product on a dask.distributed cluster of separate worker processes: the outputs
equal those of a run without a scheduler, value for value, and the workers did the work."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from itscube import download
from itscube.cluster import connect, executed_counts
from itscube.errors import InputError
from itscube.io.area import point_area
from itscube.sample import ensure_sample
from itscube.series import point_targets

from .conftest import CENTRE_A, one_line_error, run_cli

distributed = pytest.importorskip("distributed")

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def cluster():
    """Two single-thread workers, each its own process (as on a real cluster)."""
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        memory_limit="1.5GiB",
    ) as lc:
        yield lc


@pytest.fixture
def client(cluster):
    with distributed.Client(cluster, set_as_default=False) as c:
        yield c


@pytest.fixture(scope="module")
def sample():
    return ensure_sample()


def _work(client, before: dict[str, int]) -> int:
    after = executed_counts(client)
    return sum(after[w] - before.get(w, 0) for w in after)


def same_dataset(a: xr.Dataset, b: xr.Dataset) -> None:
    """The same variables, dims, dtypes and values (NaN where NaN), and attributes."""
    assert sorted(a.variables) == sorted(b.variables)
    for name in a.variables:
        va, vb = a[name].values, b[name].values
        assert a[name].dims == b[name].dims, name
        assert va.dtype == vb.dtype, name
        if va.dtype.kind == "f":
            np.testing.assert_array_equal(va, vb, err_msg=name)
        else:
            assert (va == vb).all(), name
    assert {k: v for k, v in a.attrs.items() if k not in ("history", "date_created")} == {
        k: v for k, v in b.attrs.items() if k not in ("history", "date_created")
    }


def same_files(a: Path, b: Path) -> list[str]:
    """Compare two product folders file by file (NetCDF and Zarr by value, tables by
    content, GeoTIFFs by pixels); the names compared."""
    import rioxarray

    names = sorted(
        str(p.relative_to(a)) for p in a.rglob("*") if p.is_file() and "figures" not in p.parts
    )
    other = sorted(
        str(p.relative_to(b)) for p in b.rglob("*") if p.is_file() and "figures" not in p.parts
    )
    assert names == other
    for name in names:
        pa, pb = a / name, b / name
        if pa.suffix == ".nc":
            with xr.open_dataset(pa) as da_, xr.open_dataset(pb) as db_:
                same_dataset(da_.load(), db_.load())
        elif pa.suffix == ".csv":
            pd.testing.assert_frame_equal(pd.read_csv(pa), pd.read_csv(pb))
        elif pa.suffix == ".tif":
            ra, rb = rioxarray.open_rasterio(pa), rioxarray.open_rasterio(pb)
            np.testing.assert_array_equal(ra.values, rb.values)
        elif pa.name == "summary.json":
            ja, jb = json.loads(pa.read_text()), json.loads(pb.read_text())
            for j in (ja, jb):
                j.pop("seconds", None)
            ja.pop("cube", None), jb.pop("cube", None)
            assert ja == jb
    return names


def test_download_on_the_cluster_equals_a_local_one(client, server, catalog_file, tmp_path):
    area = point_area(*CENTRE_A, crs="EPSG:3413", buffer=1500)
    options = dict(start="2017-01-01", end="2019-12-31", catalog=catalog_file, progress=False)
    local = download(area, out=tmp_path / "local", **options)
    before = executed_counts(client)
    remote = download(area, out=tmp_path / "cluster", client=client, **options)
    assert _work(client, before) >= 1  # the blocks were written by the workers
    assert [s.name for s in remote.stores] == [s.name for s in local.stores]
    for a, b in zip(local.stores, remote.stores, strict=True):
        with xr.open_zarr(a) as da_, xr.open_zarr(b) as db_:
            same_dataset(da_.load(), db_.load())
    prov = json.loads(remote.provenance.read_text())
    assert prov["complete"] and prov["transfer"]["chunks_fetched_this_run"] > 0
    assert not (remote.folder / ".partial").exists()


def test_strain_on_the_cluster_equals_a_local_run(client, sample, tmp_path):
    from itscube.products.strain import run_strain

    options = dict(upscales=[1, 3], start="2018-01-01", end="2019-12-31", per_step=True,
                   figures=False)  # fmt: skip
    local = run_strain(sample.subyearly, out=tmp_path / "local", **options)
    before = executed_counts(client)
    remote = run_strain(sample.subyearly, out=tmp_path / "cluster", client=client, **options)
    assert _work(client, before) > 4
    for a, b in zip(local, remote, strict=True):
        names = same_files(a.folder, b.folder)
        assert "strain_steps.nc" in names


def test_qdiv_on_the_cluster_equals_a_local_run(client, sample, tmp_path):
    from itscube.products.flux import run_qdiv

    options = dict(thickness=sample.thickness, boundary=sample.boundary, upscales=[2],
                   start="2018-01-01", end="2019-12-31", per_step=True, figures=False)  # fmt: skip
    local = run_qdiv(sample.subyearly, out=tmp_path / "local", **options)
    before = executed_counts(client)
    remote = run_qdiv(sample.subyearly, out=tmp_path / "cluster", client=client, **options)
    assert _work(client, before) > 2
    names = same_files(local[0].folder, remote[0].folder)
    assert "flux_timeseries.csv" in names


def test_track_on_the_cluster_equals_a_local_run(client, sample, tmp_path):
    from itscube.products.track import run_track

    options = dict(grid_step=4, start="2018-01-01", end="2019-06-30", figures=False,
                   block_points=40)  # fmt: skip
    local = run_track(sample.subyearly, out=tmp_path / "local", **options)
    before = executed_counts(client)
    remote = run_track(sample.subyearly, out=tmp_path / "cluster", client=client, **options)
    assert local.summary["points"] > 80  # several blocks of seeds
    assert _work(client, before) >= local.summary["points"] // 40
    names = same_files(local.folder, remote.folder)
    assert {"tracks.nc", "tracks.csv"} <= set(names)
    a = pd.read_csv(local.folder / "tracks.csv")
    b = pd.read_csv(remote.folder / "tracks.csv")
    assert len(a) == len(b) and (a["x"].to_numpy() == b["x"].to_numpy()).all()


def test_series_on_the_cluster_equals_a_local_run(client, sample, tmp_path):
    from itscube.products.series import run_series

    with xr.open_zarr(sample.subyearly) as ds:
        xs, ys = ds.x.values[2:-2:6], ds.y.values[2:-2:6]
        crs = ds.rio.crs if ds.rio.crs else "EPSG:3413"
    pts = [(x, y) for x in xs for y in ys]
    targets = point_targets(pts, crs)
    options = dict(start="2018-01-01", end="2019-12-31", figures=False)
    local = run_series(targets, str(sample.subyearly), out=tmp_path / "local", **options)
    before = executed_counts(client)
    remote = run_series(
        targets, str(sample.subyearly), out=tmp_path / "cluster", client=client, **options
    )
    assert _work(client, before) >= 2
    names = same_files(local.folder, remote.folder)
    assert "series.nc" in names


def test_scheduler_option_on_the_command_line(cluster, sample, tmp_path):
    args = ["strain", sample.subyearly, "--upscale", "2", "--start", "2018-01-01", "--end",
            "2018-12-31", "--no-figures", "--no-progress"]  # fmt: skip
    r = run_cli(*args, "--out", tmp_path / "cluster", "--scheduler", cluster.scheduler_address)
    assert r.exit_code == 0, r.output
    assert run_cli(*args, "--out", tmp_path / "local").exit_code == 0
    same_files(tmp_path / "local" / "strain", tmp_path / "cluster" / "strain")


def test_unreachable_scheduler_is_one_line(sample, tmp_path):
    r = run_cli("strain", sample.subyearly, "--upscale", "1", "--start", "2018-01-01",
                "--end", "2018-12-31", "--out", tmp_path, "--scheduler",
                "tcp://127.0.0.1:9")  # fmt: skip
    one_line_error(r, match="cannot connect")
    assert not (tmp_path / "strain").exists()


def test_workers_with_another_itscube_are_refused(client):
    import itscube.cluster

    def pretend(version):
        import itscube.cluster as c

        c.__version__ = version

    real = itscube.cluster.__version__
    client.run(pretend, "0.0.1")
    try:
        match = r"has itscube 0\.0\.1 \(here .*\); install itscube"
        with pytest.raises(InputError, match=match), connect(client=client):
            pass
    finally:
        client.run(pretend, real)
    with connect(client=client) as c:
        assert c is client


def test_workers_that_cannot_reach_the_output_or_input(client, tmp_path):
    from itscube.io.cluster_download import probe_workers

    missing = tmp_path / "no" / "such" / "folder"
    with pytest.raises(InputError, match="cannot write the output"):
        probe_workers(client, missing, "http://127.0.0.1:9/A.zarr", None)
    with pytest.raises(InputError, match=r"cannot open the source http://127\.0\.0\.1:9/A\.zarr"):
        probe_workers(client, tmp_path, "http://127.0.0.1:9/A.zarr", None)
