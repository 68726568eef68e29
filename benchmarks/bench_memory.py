"""Benchmark: peak resident memory of a download against the decoded size of the subset.

Peak memory is the child process's own high-water mark (``VmHWM``: ``ru_maxrss`` would count
the memory of the parent it was forked from).

Writes one ITS_LIVE v2-layout image-pair cube (int16 ``vx, vy, v, v_error``, chunks
(20000, 10, 10), Blosc zlib-2, unsorted ``mid_date``) large enough for two subsets of about
2 GB and 8 GB decoded, then downloads each in a fresh process and reports its peak RSS. The
baseline, measured in the same run, is the usual xarray way of taking the same subset
(``xr.open_zarr(store).isel(...).load()``), which holds the whole subset in memory.

Run: ``python benchmarks/bench_memory.py [--layers 25000] [--folder /big/disk]``
(needs about 12 GB of free disk and, for the baseline, about 9 GB of memory).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

VARS = ["vx", "vy", "v", "v_error"]
CENTRE = (-150000.0, -2250000.0)

PEAK = """
def peak_mb():
    with open("/proc/self/status") as f:
        return int(f.read().split("VmHWM:")[1].split()[0]) / 1024
"""

CHILD_DOWNLOAD = (
    PEAK
    + f"""
import json, sys, time
from itscube import bbox_area
from itscube import download
x0, y0, x1, y1 = map(float, sys.argv[3:7])
t = time.perf_counter()
res = download(bbox_area(x0, y0, x1, y1, crs="EPSG:3413"), urls=[sys.argv[1]], out=sys.argv[2],
               variables={VARS!r}, start="1900-01-01", end="2100-01-01")
print(json.dumps({{"seconds": time.perf_counter() - t,
                  "peak_rss_mb": peak_mb(),
                  "layers": res.layers[0], "blocks": res.blocks_total}}))
"""
)

CHILD_XARRAY = (
    PEAK
    + f"""
import json, sys, time
import numpy as np, xarray as xr
x0, y0, x1, y1 = map(float, sys.argv[2:6])
t = time.perf_counter()
ds = xr.open_zarr(sys.argv[1], decode_timedelta=False)[{VARS!r}]
ds = ds.sel(x=slice(x0, x1), y=slice(y1, y0)).load()
print(json.dumps({{"seconds": time.perf_counter() - t,
                  "peak_rss_mb": peak_mb(),
                  "decoded_mb": ds.nbytes / 1e6}}))
"""
)


def make_cube(path: Path, n: int, size: int) -> None:
    """A large v2-layout cube written strip by strip (bounded memory), smooth + noise."""
    import pandas as pd
    import zarr

    from itscube._datasets.itslive import COMPRESSOR, FILL_INT16, mapping_attrs, tile_coords

    x, y = tile_coords(CENTRE, (size, size), y_offset=67.5)
    rng = np.random.default_rng(0)
    t0 = np.datetime64("2014-01-01")
    days = rng.uniform(0, 365 * 10, n)
    mid = t0 + (days * 86400e6).astype("timedelta64[us]")  # unsorted, as in real cubes
    root = zarr.open_group(str(path), mode="w", zarr_format=2)
    root.attrs.update(projection="3413", Conventions="CF-1.8", title="benchmark cube")

    def arr(name, data, dims, attrs, chunks=None, fill=None):
        a = root.create_array(
            name,
            shape=data.shape,
            dtype=data.dtype,
            chunks=chunks or data.shape,
            fill_value=fill,
            compressors=(COMPRESSOR,),
            attributes={**attrs, "_ARRAY_DIMENSIONS": list(dims)},
        )
        a[...] = data
        return a

    arr("x", x, ("x",), {"units": "m", "standard_name": "projection_x_coordinate"})
    arr("y", y, ("y",), {"units": "m", "standard_name": "projection_y_coordinate"})
    enc = (mid - np.datetime64("1970-01-01")) / np.timedelta64(1, "D")
    arr(
        "mid_date",
        enc.astype("f8"),
        ("mid_date",),
        {"units": "days since 1970-01-01", "calendar": "proleptic_gregorian"},
    )
    arr("date_dt", rng.uniform(5, 400, n).astype("f4"), ("mid_date",), {"units": "days"})
    m = root.create_array(
        "mapping",
        shape=(),
        dtype="<U1",
        fill_value=None,
        attributes={**mapping_attrs(3413, x, y), "_ARRAY_DIMENSIONS": []},
    )
    m[...] = np.array("")
    big = {}
    for v in VARS:
        big[v] = root.create_array(
            v,
            shape=(n, size, size),
            dtype="int16",
            chunks=(min(n, 20000), 10, 10),
            fill_value=FILL_INT16,
            compressors=(COMPRESSOR,),
            attributes={
                "units": "meter/year",
                "grid_mapping": "mapping",
                "_ARRAY_DIMENSIONS": ["mid_date", "y", "x"],
            },
        )
    X = np.arange(size)[None, None, :]
    for r0 in range(0, size, 10):
        rows = min(10, size - r0)
        base = (300 + 2 * X + 0 * np.arange(rows)[None, :, None]).astype("f4")
        noise = rng.normal(0, 5, (n, rows, size)).astype("f4")
        vx = np.round(base + noise).astype("i2")
        vy = np.round(noise * 0.5).astype("i2")
        big["vx"][:, r0 : r0 + rows, :] = vx
        big["vy"][:, r0 : r0 + rows, :] = vy
        big["v"][:, r0 : r0 + rows, :] = np.hypot(vx, vy).astype("i2")
        big["v_error"][:, r0 : r0 + rows, :] = np.full(vx.shape, 7, "i2")
    zarr.consolidate_metadata(str(path), zarr_format=2)
    del pd


def _child(code: str, *args: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=False
    )
    if out.returncode:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", type=int, default=25000)
    ap.add_argument("--folder", default=None, help="where to write (default: a temp folder)")
    ap.add_argument("--no-baseline", action="store_true", help="skip the xarray baseline")
    ap.add_argument("--keep", action="store_true", help="keep (and reuse) the source cube")
    args = ap.parse_args()
    n = args.layers
    # px side for ~2 GB and ~8 GB decoded (4 int16 variables)
    sides = [int(np.sqrt(gb * 1e9 / (n * 8))) for gb in (2, 8)]
    tmp = (
        Path(args.folder) / f"bench_memory_{n}"
        if args.keep
        else Path(tempfile.mkdtemp(dir=args.folder))
    )
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        cube = tmp / "cube.zarr"
        t = time.perf_counter()
        if not (cube / ".zmetadata").exists():
            make_cube(cube, n, max(sides) + 10)
        print(
            f"source cube {n} layers x {max(sides) + 10}^2 px ready in "
            f"{time.perf_counter() - t:.0f} s",
            flush=True,
        )
        from itscube._datasets.itslive import tile_coords

        x, y = tile_coords(CENTRE, (max(sides) + 10,) * 2, y_offset=67.5)
        rows = []
        for side in sides:
            box = (x[0], y[side - 1], x[side - 1], y[0])
            decoded = n * side * side * 8 / 1e9
            ours = _child(CHILD_DOWNLOAD, str(cube), str(tmp / f"out{side}"), *map(str, box))
            shutil.rmtree(tmp / f"out{side}", ignore_errors=True)
            row = {
                "decoded_gb": round(decoded, 2),
                "pixels": f"{side}x{side}",
                "layers": n,
                "itscube_peak_rss_mb": round(ours["peak_rss_mb"]),
                "itscube_s": round(ours["seconds"], 1),
                "blocks": ours["blocks"],
            }
            if not args.no_baseline:
                base = _child(CHILD_XARRAY, str(cube), *map(str, box))
                row.update(
                    xarray_peak_rss_mb=round(base["peak_rss_mb"]),
                    xarray_s=round(base["seconds"], 1),
                    rss_ratio_xarray_over_itscube=round(
                        base["peak_rss_mb"] / ours["peak_rss_mb"], 1
                    ),
                )
            rows.append(row)
            print(json.dumps(row), flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
