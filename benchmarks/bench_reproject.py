"""Benchmark: reprojecting an image-pair cube with vectors turned, against rioxarray.

A cube of ``--size`` x ``--size`` px x ``--layers`` pairs in UTM zone 5N is put on a 120 m
grid of Alaska Albers (EPSG:3338) two ways, each in a process of its own (peak memory is
the process's maximum resident size):

* itscube: ``reproject_cube`` (NaN-aware bilinear + the per-pixel Jacobian) on
  ``vx, vy, v, v_error``, computed;
* baseline: ``ds[["vx", "vy", "v", "v_error"]].rio.reproject("EPSG:3338", resolution=120,
  resampling=bilinear)``, which resamples but does not turn the vectors.

Reported: seconds and peak MB of each, and the time ratio (issue 18's goal: at most 1.5).
Run: ``python benchmarks/bench_reproject.py [--size 300] [--layers 300]``
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

MAKE = textwrap.dedent(
    """
    import sys, numpy as np, pyproj
    from itscube._datasets.itslive import make_subyearly_cube
    size, layers, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    cx, cy = pyproj.Transformer.from_crs(4326, 32605, always_xy=True).transform(-150.5, 61.0)
    field = lambda x, y, t: (300.0 + 0.01 * (x - cx), -200.0 + 0.01 * (y - cy))
    make_subyearly_cube(path, field, epsg=32605, centre=(cx, cy), shape=(size, size),
                        n_layers=layers, noise=True, spatial_chunk=10)
    """
)

RUN = textwrap.dedent(
    """
    import resource, sys, time
    import numpy as np
    from rasterio.enums import Resampling
    from itscube import open_cube
    from itscube.io.reproject import reproject_cube, target_grid
    path, side = sys.argv[1], sys.argv[2]
    ds = open_cube(path, variables=["vx", "vy", "v", "v_error"]).load()
    t0 = time.perf_counter()
    if side == "itscube":
        b = ds.rio.transform_bounds("EPSG:3338")
        x, y = target_grid(b, 120.0)
        out = reproject_cube(ds, "EPSG:3338", x, y).compute()
    else:
        out = ds[["vx", "vy", "v", "v_error"]].rio.reproject(
            "EPSG:3338", resolution=120.0, resampling=Resampling.bilinear)
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(seconds, peak, int(np.isfinite(out.vx.values).sum()))
    """
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=300)
    ap.add_argument("--layers", type=int, default=300)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "utm.zarr")
        subprocess.run([sys.executable, "-c", MAKE, str(args.size), str(args.layers), path],
                       check=True)  # fmt: skip
        row = {"pixels": f"{args.size} x {args.size}", "layers": args.layers}
        for side in ("itscube", "rioxarray"):
            out = subprocess.run([sys.executable, "-c", RUN, path, side], check=True,
                                 capture_output=True, text=True).stdout.split()  # fmt: skip
            row[f"{side}_s"] = round(float(out[0]), 2)
            row[f"{side}_peak_mb"] = round(float(out[1]))
            row[f"{side}_valid"] = int(out[2])
        row["ratio"] = round(row["itscube_s"] / row["rioxarray_s"], 2)
        print(json.dumps(row))


if __name__ == "__main__":
    main()
