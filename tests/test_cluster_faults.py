"""A worker killed (``kill -9``) in the middle of a cluster run: the run still completes,
with the result of a clean run."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest
import xarray as xr

from itscube import download
from itscube.geometry import point_area
from itscube.io.download import plan as download_plan
from itscube.sample import ensure_sample
from itscube.testing.server import Faults
from tests.helpers import CENTRE_A, same_dataset, same_files

distributed = pytest.importorskip("distributed")

pytestmark = [pytest.mark.timeout(600), pytest.mark.slow]


@pytest.fixture
def cluster():
    """A fresh cluster of two single-thread worker processes under nannies (which restart
    a killed worker, as on a real deployment)."""
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as lc, distributed.Client(lc, set_as_default=False) as client:  # fmt: skip
        yield client


def _kill_a_busy_worker(client, ready, timeout: float = 60.0) -> int:
    """Wait until ``ready()``, then kill -9 a worker process that is running a task;
    returns its pid."""
    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end:
        busy = [w for w, tasks in client.processing().items() if tasks]
        if ready() and busy:
            pid = client.run(os.getpid, workers=[busy[0]])[busy[0]]
            os.kill(pid, signal.SIGKILL)
            return pid
        time.sleep(0.02)
    raise AssertionError("the run never reached the point to kill a worker")


def _in_thread(fn):
    box = {}

    def run():
        try:
            box["result"] = fn()
        except BaseException as exc:  # pragma: no cover - reported by the test
            box["error"] = exc

    t = threading.Thread(target=run)
    t.start()
    return t, box


def test_download_survives_a_killed_worker(cluster, server, catalog_file, tmp_path, monkeypatch):
    # small blocks (one 10 x 10 px column of chunks each) and slow answers: many tasks,
    # each in flight long enough to be killed in the middle
    monkeypatch.setattr(download_plan, "BLOCK_BYTES", 100_000)
    area = point_area(*CENTRE_A, crs="EPSG:3413", buffer=2300)
    options = dict(start="2016-01-01", end="2020-12-31", catalog=catalog_file, progress=False)
    clean = download(area, out=tmp_path / "clean", **options)
    assert clean.blocks_total >= 9
    server.set_faults(Faults(latency=0.4, only_suffix="/v"))
    folder = tmp_path / "killed"
    t, box = _in_thread(lambda: download(area, out=folder, client=cluster, **options))

    def some_blocks_done() -> bool:
        done = list(folder.glob("*/.partial/done/*/*"))
        return 1 <= len(done) < clean.blocks_total

    pid = _kill_a_busy_worker(cluster, some_blocks_done)
    t.join(300)
    assert "error" not in box, box.get("error")
    assert pid not in cluster.run(os.getpid).values()  # that process is gone
    res = box["result"]
    assert res.blocks_total == clean.blocks_total
    with xr.open_zarr(clean.stores[0]) as a, xr.open_zarr(res.stores[0]) as b:
        same_dataset(a.load(), b.load())


def test_strain_survives_a_killed_worker(cluster, tmp_path):
    from itscube.cluster import executed_counts
    from itscube.products.strain import run_strain

    sample = ensure_sample()
    options = dict(
        upscale=[1, 3], per_step=True, figures=False, start="2017-01-01", end="2020-12-31"
    )
    clean = run_strain(sample.subyearly, out=tmp_path / "clean", **options)
    start = sum(executed_counts(cluster).values())
    t, box = _in_thread(
        lambda: run_strain(sample.subyearly, out=tmp_path / "killed", client=cluster, **options)
    )
    _kill_a_busy_worker(cluster, lambda: sum(executed_counts(cluster).values()) > start + 3)
    t.join(300)
    if "error" in box:  # the run may fail if the worker died writing: a re-run completes
        product = run_strain(sample.subyearly, out=tmp_path / "killed", client=cluster,
                             **options)  # fmt: skip
    else:
        product = box["result"]
    for a, b in zip(clean, product, strict=True):
        assert "strain_steps.nc" in same_files(a.folder, b.folder)
