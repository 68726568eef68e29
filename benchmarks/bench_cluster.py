"""Benchmark: itscube on a dask.distributed cluster, 1 worker against 2, and bounded memory.

Speed (default): an ITS_LIVE v2-layout image-pair cube (int16 ``vx, vy, v, v_error``,
chunks (n, 10, 10)) served over HTTP by a server in a process of its own that honours byte
ranges and answers every request after ``--latency`` seconds (50 ms). For 1 and then 2
single-thread workers (``LocalCluster(processes=True)``, a fresh cluster each):

* ``download(..., client=...)`` of the whole cube (the workers fetch and write the blocks);
* ``run_strain(..., per_step=True, client=...)`` over the downloaded store.

Reported per run: seconds, the tasks each worker executed and each worker's peak resident
memory (``VmHWM`` of the worker process), and the speed-up of 2 workers over 1, as ratios
from the same run. On a 2-core machine the client, the server and both workers share two
cores: the speed-up shows the work is spread, not what more machines give.

Memory (``--memory``): the 8 GB-decoded download of ``bench_memory.py`` (25,000 layers)
on two single-thread workers with ``memory_limit=1.5GiB``, then strain over the result;
reports each worker's peak and whether a worker was restarted (its address changed).

Run: ``python benchmarks/bench_cluster.py [--latency 0.05] [--size 200] [--layers 2000]``
or ``python benchmarks/bench_cluster.py --memory [--folder /big/disk]``
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

SERVER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from itscube.testing.server import Faults, StoreServer
    with StoreServer(Path(sys.argv[1])) as srv:
        srv.set_faults(Faults(latency=float(sys.argv[2])))
        print(srv.url, flush=True)
        sys.stdin.read()
    """
)


def _peak_mb() -> float:
    with open("/proc/self/status") as f:
        return int(f.read().split("VmHWM:")[1].split()[0]) / 1024


def _workers(client) -> dict:
    """Per worker: tasks executed and peak resident memory (MB)."""
    from itscube.cluster import executed_counts

    peaks = client.run(_peak_mb)
    done = executed_counts(client)
    return {w: {"tasks": done[w], "peak_mb": round(peaks[w])} for w in sorted(peaks)}


def _cluster(n: int, memory_limit: str | None = None):
    from distributed import Client, LocalCluster

    lc = LocalCluster(
        n_workers=n,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",
        memory_limit=memory_limit or "auto",
    )
    return lc, Client(lc)


def speed(args) -> None:
    from bench_memory import CENTRE, make_cube
    from itscube import bbox_area, download
    from itscube.products.strain import run_strain

    tmp = Path(tempfile.mkdtemp(dir=args.folder))
    cube = tmp / "cube.zarr"
    make_cube(cube, args.layers, args.size)
    srv = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(tmp), str(args.latency)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    url = srv.stdout.readline().strip() + "/cube.zarr"
    half = args.size * 60.0
    area = bbox_area(CENTRE[0] - half, CENTRE[1] - half, CENTRE[0] + half, CENTRE[1] + half,
                     crs="EPSG:3413")  # fmt: skip
    rows = {}
    try:
        for n in (1, 2):
            lc, client = _cluster(n)
            with lc, client:
                t = time.perf_counter()
                res = download(area, urls=[url], out=tmp / f"dl{n}", start="1900-01-01",
                               end="2100-01-01", variables=["vx", "vy", "v", "v_error"],
                               client=client, progress=False)  # fmt: skip
                t_dl = time.perf_counter() - t
                w_dl = _workers(client)
            lc, client = _cluster(n)
            with lc, client:
                t = time.perf_counter()
                run_strain(res.stores[0], upscale=[2], per_step=True, figures=False,
                           out=tmp / f"strain{n}", client=client)  # fmt: skip
                t_st = time.perf_counter() - t
                w_st = _workers(client)
            rows[n] = {
                "download_s": round(t_dl, 1),
                "download_workers": w_dl,
                "blocks": res.blocks_total,
                "strain_s": round(t_st, 1),
                "strain_workers": w_st,
            }
            print(json.dumps({"workers": n, **rows[n]}), flush=True)
        print(json.dumps({
            "cube": f"{args.layers} layers x {args.size}^2 px, latency {args.latency} s",
            "download_speedup_2_over_1": round(rows[1]["download_s"] / rows[2]["download_s"], 2),
            "strain_speedup_2_over_1": round(rows[1]["strain_s"] / rows[2]["strain_s"], 2),
        }), flush=True)  # fmt: skip
    finally:
        srv.stdin.close()
        srv.wait()
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)


def memory(args) -> None:
    import numpy as np

    from bench_memory import CENTRE, make_cube
    from itscube import bbox_area, download
    from itscube._datasets.itslive import tile_coords
    from itscube.products.strain import run_strain

    n = args.layers_memory
    side = int(np.sqrt(8e9 / (n * 8)))
    tmp = Path(args.folder or tempfile.gettempdir()) / f"bench_cluster_{n}"
    tmp.mkdir(parents=True, exist_ok=True)
    cube = tmp / "cube.zarr"
    t = time.perf_counter()
    if not (cube / ".zmetadata").exists():
        make_cube(cube, n, side + 10)
    print(f"source cube ready in {time.perf_counter() - t:.0f} s", flush=True)
    x, y = tile_coords(CENTRE, (side + 10,) * 2, y_offset=67.5)
    area = bbox_area(x[0], y[side - 1], x[side - 1], y[0], crs="EPSG:3413")
    lc, client = _cluster(2, "1.5GiB")
    with lc, client:
        before = sorted(client.scheduler_info()["workers"])
        t = time.perf_counter()
        res = download(area, urls=[str(cube)], out=tmp / "out", start="1900-01-01",
                       end="2100-01-01", variables=["vx", "vy", "v", "v_error"],
                       client=client, progress=False, overwrite=True)  # fmt: skip
        t_dl = time.perf_counter() - t
        w_dl = _workers(client)
        t = time.perf_counter()
        run_strain(res.stores[0], upscale=[2], figures=False, out=tmp / "strain",
                   client=client, overwrite=True)  # fmt: skip
        t_st = time.perf_counter() - t
        w_st = _workers(client)
        after = sorted(client.scheduler_info()["workers"])
    print(json.dumps({
        "decoded_gb": round(n * side * side * 8 / 1e9, 2),
        "pixels": f"{side}x{side}", "layers": n, "memory_limit": "1.5GiB",
        "download_s": round(t_dl, 1), "download_workers": w_dl,
        "strain_s": round(t_st, 1), "strain_workers_peak_since_start": w_st,
        "workers_restarted": before != after,
    }), flush=True)  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--latency", type=float, default=0.05)
    ap.add_argument("--size", type=int, default=200, help="cube side in pixels (speed)")
    ap.add_argument("--layers", type=int, default=2000, help="layers of the cube (speed)")
    ap.add_argument("--memory", action="store_true", help="the bounded-memory run instead")
    ap.add_argument("--layers-memory", type=int, default=25000)
    ap.add_argument("--folder", default=None, help="where to write (default: a temp folder)")
    args = ap.parse_args()
    memory(args) if args.memory else speed(args)


if __name__ == "__main__":
    main()
