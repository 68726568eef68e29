"""Benchmark: velocity series at 100 points from a remote image-pair cube.

itscube (:func:`itscube.series.time_series`: the chunk columns of the points, read
concurrently) against what the ``itslive`` client does for each point:
``xr.open_dataset(url, engine="zarr").sel(x=..., y=..., method="nearest")[vars].load()``.
Both read ``vx`` and ``vy`` at the same 100 pixels of the same cube from the same local HTTP
server (concurrent, honouring byte ranges, as S3 does) with the same latency per request, in
the same run. Reported: wall-time ratio, bytes each transferred against the minimal chunk
set (the chunks of ``vx``/``vy`` holding the points, the coordinates and the per-layer
metadata itscube reads), and whether the values agree.

With ``--processes`` each side runs as a whole process, imports included (issue 22's
measure): ``itscube series CUBE --points pts.csv --crs EPSG:3413`` (which also writes its
CSV, NetCDF, Parquet and figures), and the same with ``--no-figures`` (the loop draws
nothing), against a script running the per-point loop.

Run: ``python benchmarks/bench_series.py [--latency 0.05] [--points 100] [--layers 2000]
[--processes]``
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

import numpy as np
import xarray as xr

from itscube._datasets.itslive import OutletGlacier, make_subyearly_cube
from itscube.geometry import point_targets
from itscube.io.stores import open_source
from itscube.series import time_series
from itscube.testing.server import Faults, StoreServer

CENTRE = (-150000.0, -2250000.0)
VARS = ["vx", "vy"]


def minimal_bytes(store: Path, rows: np.ndarray, cols: np.ndarray, extra: list[str]) -> int:
    """Bytes of the vx/vy chunks holding the pixels, plus whole small arrays read."""
    cube = open_source(store)
    total = 0
    for name in VARS:
        arr = cube[name]
        ct, cy, cx = arr.chunks
        for r, c in {(int(r) // cy, int(c) // cx) for r, c in zip(rows, cols, strict=True)}:
            for t in range(-(-arr.shape[0] // ct)):
                path = store / name / f"{t}.{r}.{c}"
                total += path.stat().st_size if path.exists() else 0
    for name in extra:
        total += sum(p.stat().st_size for p in (store / name).iterdir() if p.name[0].isdigit())
    return total + sum(p.stat().st_size for p in store.glob(".z*"))


LOOP = textwrap.dedent(
    """
    import sys
    import numpy as np, pandas as pd, xarray as xr
    pts = pd.read_csv(sys.argv[2])
    for x, y in zip(pts.x, pts.y):
        one = xr.open_dataset(sys.argv[1], engine="zarr", chunks=None)
        one.sel(x=x, y=y, method="nearest")[["vx", "vy"]].load()
    """
)


def _processes(url: str, xs, ys, root: Path) -> dict:
    """Both sides as whole processes, imports included."""
    csv = root / "points.csv"
    csv.write_text("x,y\n" + "".join(f"{x},{y}\n" for x, y in zip(xs, ys, strict=True)))

    def itscube_series(out: str, *extra: str) -> float:
        t0 = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "itscube.cli", "series", url, "--points", str(csv), "--crs",
             "EPSG:3413", "--no-progress", "--out", str(root / out), *extra],
            check=True, capture_output=True,
        )  # fmt: skip
        return time.perf_counter() - t0

    t_itscube = itscube_series("out")
    # the loop draws nothing: the same without the per-point figures (files still written)
    t_plain = itscube_series("out-no-figures", "--no-figures")
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", LOOP, url, str(csv)], check=True, capture_output=True)
    t_loop = time.perf_counter() - t0
    return {
        "itscube_series_process_s": round(t_itscube, 2),
        "itscube_series_no_figures_process_s": round(t_plain, 2),
        "per_point_loop_process_s": round(t_loop, 2),
        "speedup_processes": round(t_loop / t_itscube, 1),
        "speedup_processes_no_figures": round(t_loop / t_plain, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--latency", type=float, default=0.05)
    ap.add_argument("--points", type=int, default=100)
    ap.add_argument("--layers", type=int, default=2000)
    ap.add_argument("--size", type=int, default=200)
    ap.add_argument("--processes", action="store_true", help="whole processes, imports included")
    args = ap.parse_args()
    rng = np.random.default_rng(7)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        field = OutletGlacier(x_head=CENTRE[0] - 12000, y_c=CENTRE[1], half_width=8000)
        shape = (args.size, args.size)
        make_subyearly_cube(
            root / "cube.zarr", field, centre=CENTRE, shape=shape, n_layers=args.layers, seed=3
        )
        ds = xr.open_zarr(root / "cube.zarr")
        rows = rng.integers(0, args.size, args.points)
        cols = rng.integers(0, args.size, args.points)
        xs, ys = ds.x.values[cols], ds.y.values[rows]
        with StoreServer(root, Faults(latency=args.latency)) as srv:
            url = f"{srv.url}/cube.zarr"
            if args.processes:
                print(json.dumps({"points": args.points, **_processes(url, xs, ys, root)}))
                return
            srv.stats.reset()
            t0 = time.perf_counter()
            res = time_series(point_targets(np.column_stack([xs, ys]), crs="EPSG:3413"), url)
            t_itscube = time.perf_counter() - t0
            bytes_itscube = srv.stats.bytes_sent
            srv.stats.reset()
            t0 = time.perf_counter()
            naive = []
            for x, y in zip(xs, ys, strict=True):
                one = xr.open_dataset(url, engine="zarr", chunks=None)
                naive.append(one.sel(x=x, y=y, method="nearest")[VARS].load())
            t_naive = time.perf_counter() - t0
            bytes_naive = srv.stats.bytes_sent
        layers = [n for n in ("acquisition_date_img1", "acquisition_date_img2", "date_dt",
                              "mission_img1", "satellite_img1", "sensor_img1",
                              "roi_valid_percentage", "vx_error", "vy_error", "mid_date",
                              "x", "y") if (root / "cube.zarr" / n).exists()]  # fmt: skip
        minimum = minimal_bytes(root / "cube.zarr", rows, cols, layers)
        same = all(
            np.allclose(
                np.sort(naive[k]["vx"].values[np.isfinite(naive[k]["vx"].values)]),
                np.sort(res["vx"].values[k][np.isfinite(res["vx"].values[k])]),
            )
            for k in range(args.points)
        )
        report = {
            "cube": f"{args.size} x {args.size} px x {args.layers} image pairs, chunks "
            f"{tuple(ds['vx'].encoding.get('chunks', ()))}",
            "points": args.points,
            "latency_s": args.latency,
            "itscube_s": round(t_itscube, 2),
            "per_point_xarray_s": round(t_naive, 2),
            "speedup": round(t_naive / t_itscube, 1),
            "itscube_bytes_vs_minimal_chunk_set": round(bytes_itscube / minimum, 3),
            "per_point_xarray_bytes_vs_minimal": round(bytes_naive / minimum, 2),
            "same_values": bool(same),
        }
        print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
