"""Every product on a dask.distributed cluster of separate worker processes: the outputs
equal those of a run without a scheduler, value for value, and the workers did the work."""

from __future__ import annotations

import json
import os

import pandas as pd
import pytest
import xarray as xr

from itscube import download
from itscube.cluster import connect, executed_counts
from itscube.errors import InputError
from itscube.geometry import point_area, point_targets
from itscube.sample import ensure_sample
from tests.helpers import CENTRE_A, one_line_error, run_cli, same_dataset, same_files

distributed = pytest.importorskip("distributed")

pytestmark = [pytest.mark.timeout(600), pytest.mark.slow]


@pytest.fixture(scope="module")
def cluster():
    """Two single-thread workers, each its own process (as on a real cluster)."""
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",
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

    options = dict(upscale=[1, 3], start="2018-01-01", end="2019-12-31", per_step=True,
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

    options = dict(thickness=sample.thickness, boundary=sample.boundary, upscale=[2],
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


def test_seasonal_on_the_cluster_equals_a_local_run(client, sample, tmp_path):
    from itscube.products.seasonal import run_seasonal

    options = dict(start="2016-01-01", end="2020-12-31", figures=False)
    local = run_seasonal(sample.subyearly, out=tmp_path / "local", **options)
    before = executed_counts(client)
    remote = run_seasonal(sample.subyearly, out=tmp_path / "cluster", client=client, **options)
    assert _work(client, before) > 2
    assert "seasonal.nc" in same_files(local.folder, remote.folder)


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
    from itscube.io.download.cluster import probe_workers
    from itscube.io.location import Location

    (tmp_path / "a-file").write_text("")
    blocked = Location.of(tmp_path / "a-file" / "out")  # no folder can be made there
    with pytest.raises(InputError, match="cannot write the output"):
        probe_workers(client, blocked, "http://127.0.0.1:9/A.zarr", None)
    with pytest.raises(InputError, match=r"cannot open the source http://127\.0\.0\.1:9/A\.zarr"):
        probe_workers(client, Location.of(tmp_path), "http://127.0.0.1:9/A.zarr", None)


S3_KEYS = {"key": "testing", "secret": "testing"}


@pytest.fixture
def out_bucket(s3_server):
    """An empty private bucket on the moto server (written with credentials)."""
    import uuid

    import boto3

    name = f"out-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", endpoint_url=s3_server, aws_access_key_id="testing",
                 aws_secret_access_key="testing", region_name="us-east-1").create_bucket(
        Bucket=name
    )  # fmt: skip
    return f"s3://{name}/runs"


def test_cluster_download_to_s3_feeds_the_next_command(
    client, server, catalog_file, out_bucket, tmp_path
):
    """Workers write the store straight into the bucket; it opens with open_cube and a
    strain run on it equals one on the local download."""
    from itscube import open_cube

    area = point_area(*CENTRE_A, crs="EPSG:3413", buffer=1500)
    options = dict(start="2017-01-01", end="2019-12-31", catalog=catalog_file, progress=False)
    local = download(area, out=tmp_path / "local", **options)
    before = executed_counts(client)
    remote = download(area, out=out_bucket, client=client, out_options=S3_KEYS, **options)
    assert _work(client, before) >= 1
    assert str(remote.stores[0]).startswith(out_bucket + "/")
    assert str(remote.provenance).endswith("provenance.json")
    opened = open_cube(str(remote.stores[0]), storage_options={"anon": False, **S3_KEYS})
    with xr.open_zarr(local.stores[0]) as a:
        same_dataset(a.load(), xr.open_zarr(
            str(remote.stores[0]), storage_options={"anon": False, **S3_KEYS,
                "client_kwargs": {"endpoint_url": os.environ["ITSCUBE_S3_ENDPOINT"]}}
        ).load())  # fmt: skip
    assert opened.sizes["mid_date"] == a.sizes["mid_date"]
    # nothing is left beside the store and the provenance
    import fsspec

    endpoint = {"endpoint_url": os.environ["ITSCUBE_S3_ENDPOINT"]}
    fs = fsspec.filesystem("s3", **S3_KEYS, client_kwargs=endpoint)
    folder = str(remote.folder).removeprefix("s3://")
    assert sorted(p.rsplit("/", 1)[-1] for p in fs.ls(folder)) == [
        "provenance.json", "subyearly_EPSG3413.zarr"]  # fmt: skip
    # a second run finds it complete
    again = download(area, out=out_bucket, client=client, out_options=S3_KEYS, **options)
    assert again.already_complete


def _set_env(values: dict) -> None:
    """Set (or with None, unset) environment variables; forget S3 clients made before."""
    import s3fs

    os.environ.update({k: v for k, v in values.items() if v is not None})
    for k in [k for k, v in values.items() if v is None]:
        os.environ.pop(k, None)
    s3fs.S3FileSystem.clear_instance_cache()


@pytest.fixture
def credentials(client, monkeypatch):
    """AWS credentials in this process and on the workers (as an instance role gives)."""
    keys = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    for k, v in keys.items():
        monkeypatch.setenv(k, v)
    client.run(_set_env, keys)
    yield
    client.run(_set_env, dict.fromkeys(keys))


def test_products_read_and_write_object_storage(
    cluster, credentials, server, catalog_file, out_bucket, tmp_path
):
    """The command line, on the cluster, from a store in a private bucket to a product in
    it: the product equals the local one on the local download."""
    import fsspec

    area = point_area(*CENTRE_A, crs="EPSG:3413", buffer=1500)
    options = dict(start="2017-01-01", end="2019-12-31", catalog=catalog_file, progress=False)
    local = download(area, out=tmp_path / "local", **options)
    remote = download(area, out=out_bucket, scheduler=cluster.scheduler_address, **options)
    args = ["--upscale", "2", "--no-figures", "--no-progress"]
    r = run_cli("strain", remote.stores[0], *args, "--out", out_bucket + "/products",
                "--scheduler", cluster.scheduler_address)  # fmt: skip
    assert r.exit_code == 0, r.output
    assert run_cli("strain", local.stores[0], *args, "--out", tmp_path / "p").exit_code == 0
    fs = fsspec.filesystem("s3", client_kwargs={"endpoint_url": os.environ["ITSCUBE_S3_ENDPOINT"]})
    fs.get(out_bucket.removeprefix("s3://") + "/products/strain", str(tmp_path / "got"),
           recursive=True)  # fmt: skip
    names = same_files(tmp_path / "p" / "strain", tmp_path / "got")
    assert any(n.endswith("summary.json") for n in names)
    assert any(n.endswith(".nc") for n in names)
    # and again: the product is there, so without overwrite it is refused in one line
    r = run_cli("strain", remote.stores[0], *args, "--out", out_bucket + "/products")
    one_line_error(r, match="already exists")


def test_workers_without_credentials_for_the_output(
    client, server, catalog_file, out_bucket, monkeypatch
):
    """Credentials here but not on the workers: refused up front, in one line naming the
    worker, and nothing is left in the bucket looking complete."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    area = point_area(*CENTRE_A, crs="EPSG:3413", buffer=1500)
    with pytest.raises(InputError, match=r"worker tcp://\S+ cannot write the output s3://") as e:
        download(area, out=out_bucket, client=client, start="2018-01-01", end="2018-12-31",
                 catalog=catalog_file, progress=False)  # fmt: skip
    assert "NoCredentialsError" in str(e.value) and "\n" not in str(e.value)
    import fsspec

    fs = fsspec.filesystem("s3", client_kwargs={"endpoint_url": os.environ["ITSCUBE_S3_ENDPOINT"]})
    assert not fs.find(out_bucket.removeprefix("s3://"), withdirs=False) or not any(
        p.endswith("provenance.json") for p in fs.find(out_bucket.removeprefix("s3://"))
    )
