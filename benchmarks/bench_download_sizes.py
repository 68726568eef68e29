"""Benchmark: ``itscube download`` against plain xarray at real request sizes, whole processes.

The setup of issue 22: an ITS_LIVE v2 image-pair cube of 1,000 pairs with chunks
(1000, 10, 10), served by an HTTP server in a process of its own that honours byte ranges
and answers every request after ``--latency`` seconds (50 ms: a far S3 region). Each side is
timed as a whole process, imports included, for areas of 40 x 40, 120 x 120 and 250 x 250
pixels, i.e. 64, 576 and 2,500 chunk requests for ``vx, vy, v, v_error``:

* ``itscube download --bbox ... --crs EPSG:3413 --url URL --start --end --variables ...``;
* a script doing ``xr.open_dataset(url, engine="zarr")``, ``.isel()``, ``.load()`` and
  ``.to_zarr()`` locally.

Reported: seconds of each, the ratio, the requests the server saw, the bytes it sent and
the mean number in flight (requests x latency / wall time). Where the time goes: each
side's start (a process that only imports what that side imports before its first
request: the command's modules and their libraries, or xarray's stack) is measured in
the same run and reported with the ratio of the times after it.

Run: ``python benchmarks/bench_download_sizes.py [--latency 0.05] [--sizes 40 120 250]``
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

CENTRE = (-150000.0, -2250000.0)
VARS = "vx,vy,v,v_error"

SERVER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from itscube.testing.server import Faults, StoreServer
    with StoreServer(Path(sys.argv[1])) as srv:
        srv.set_faults(Faults(latency=float(sys.argv[2])))
        print(srv.url, flush=True)
        for line in sys.stdin:
            if line.strip() == "stats":
                print(srv.stats.requests, srv.stats.bytes_sent, flush=True)
                srv.stats.reset()
    """
)

PLAIN = textwrap.dedent(
    """
    import json, os, sys
    import numpy as np, xarray as xr
    url, out, x0, x1, y0, y1 = sys.argv[1], sys.argv[2], *map(float, sys.argv[3:7])
    opts = json.loads(os.environ.get("BENCH_STORAGE_OPTIONS", "null"))  # s3fs's, for s3://
    ds = xr.open_dataset(url, engine="zarr", consolidated=True, decode_timedelta=False,
                         storage_options=opts)
    xi = np.nonzero((ds.x.values >= x0) & (ds.x.values <= x1))[0]
    yi = np.nonzero((ds.y.values >= y0) & (ds.y.values <= y1))[0]
    sub = ds[["vx", "vy", "v", "v_error"]].isel(x=xi, y=yi).load()
    for v in sub.variables.values():
        v.encoding = {}
    sub.to_zarr(out, mode="w", consolidated=True)
    """
)


def _make_cube(root: Path, size: int, layers: int) -> Path:
    from itscube._datasets.itslive import OutletGlacier, make_subyearly_cube

    store = root / f"cube_{size}_{layers}.zarr"
    if not store.exists():
        glacier = OutletGlacier(x_head=CENTRE[0] - 20000, y_c=CENTRE[1], half_width=10000)
        make_subyearly_cube(
            store, glacier, centre=CENTRE, shape=(size, size), n_layers=layers, noise=False
        )
    return store


STARTS = {
    "itscube": "import itscube.cli.app, itscube.cli.commands.download, itscube.io.download, "
    "aiohttp, typer._adapters",
    "xarray": "import numpy, xarray, zarr, fsspec, aiohttp",
}
"""What each side imports before its first request (typer's parser loads pydantic)."""


def _starts(runs: int = 7) -> dict[str, float]:
    """Median seconds of a process importing each side's modules (runs interleaved)."""
    times: dict[str, list[float]] = {k: [] for k in STARTS}
    for _ in range(runs):
        for side, code in STARTS.items():
            times[side].append(_timed([sys.executable, "-c", code]))
    return {side: sorted(t)[len(t) // 2] for side, t in times.items()}


def commands(url: str, out: str, size: int, plain: str) -> tuple[list[str], list[str]]:
    """``itscube download`` and the plain script ``plain`` for ``size`` x ``size`` pixels
    round the cube centre, writing under ``out``."""
    half = size * 120 / 2 - 1  # `size` pixel centres either side of the cube centre
    x0, x1, y0, y1 = CENTRE[0] - half, CENTRE[0] + half, CENTRE[1] - half, CENTRE[1] + half
    ours = [sys.executable, "-m", "itscube.cli", "download", "--bbox", str(x0), str(y0),
            str(x1), str(y1), "--crs", "EPSG:3413", "--url", url, "--start", "2000",
            "--end", "2030", "--variables", VARS, "--no-progress", "--out", out]  # fmt: skip
    theirs = [sys.executable, "-c", plain, url, f"{out}/plain.zarr", str(x0), str(x1),
              str(y0), str(y1)]  # fmt: skip
    return ours, theirs


def _timed(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--latency", type=float, default=0.05)
    ap.add_argument("--layers", type=int, default=1000)
    ap.add_argument("--sizes", type=int, nargs="+", default=[40, 120, 250])
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "itscube-bench")
    ap.add_argument("--start-runs", type=int, default=7, help="runs of each side's start")
    args = ap.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    store = _make_cube(args.cache, max(args.sizes) + 10, args.layers)
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(store.parent), str(args.latency)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    url = f"{server.stdout.readline().strip()}/{store.name}"

    def requests() -> tuple[int, int]:
        """Requests and bytes the server answered since the last call."""
        server.stdin.write("stats\n")
        server.stdin.flush()
        n, nbytes = server.stdout.readline().split()
        return int(n), int(nbytes)

    starts = _starts(args.start_runs)
    print(json.dumps({"start_s": {k: round(v, 2) for k, v in starts.items()}}), flush=True)
    rows = []
    try:
        for size in args.sizes:
            with tempfile.TemporaryDirectory() as out:
                ours_cmd, plain_cmd = commands(url, out, size, PLAIN)
                requests()
                ours = _timed(ours_cmd)
                n_ours, b_ours = requests()
                plain = _timed(plain_cmd)
                n_plain, b_plain = requests()
            rows.append(
                {
                    "pixels": f"{size} x {size}",
                    "itscube_s": round(ours, 2),
                    "xarray_s": round(plain, 2),
                    "speedup": round(plain / ours, 2),
                    "speedup_after_start": round(
                        (plain - starts["xarray"]) / (ours - starts["itscube"]), 2
                    ),
                    "itscube_requests": n_ours,
                    "xarray_requests": n_plain,
                    "itscube_mb": round(b_ours / 1e6, 2),
                    "xarray_mb": round(b_plain / 1e6, 2),
                    "itscube_mean_in_flight": round(n_ours * args.latency / ours, 1),
                    "xarray_mean_in_flight": round(n_plain * args.latency / plain, 1),
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    finally:
        server.terminate()


if __name__ == "__main__":
    main()
