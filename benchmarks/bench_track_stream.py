"""Benchmark: ``itscube track`` on many points, written as the blocks complete.

For each number of points (a grid of seeds over a synthetic 300 x 300 px image-pair cube),
``run_track`` runs in a process of its own, ``--years`` of tracking with 5-day steps, keeping
every ``--output-every``-th position; reported: seconds, particle-steps per second and the
process's peak resident memory (issue 22's goal: under 2 GB at a million points).

Run: ``python benchmarks/bench_track_stream.py [--points 10000 100000 1000000]``
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
    import sys
    from itscube._datasets.itslive import OutletGlacier, make_subyearly_cube
    c = (-150000.0, -2250000.0)
    g = OutletGlacier(x_head=c[0] - 20000, y_c=c[1], half_width=15000)
    make_subyearly_cube(sys.argv[1], g, centre=c, shape=(300, 300), n_layers=200,
                        start="2016-01-01", end="2021-12-31", noise=False, gap_share=0.0)
    """
)

RUN = textwrap.dedent(
    """
    import resource, sys, time
    import numpy as np
    from itscube.products.track import run_track
    cube, out = sys.argv[1], sys.argv[2]
    n, years, every = int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
    side = int(np.ceil(np.sqrt(n)))
    g = np.linspace(-15000, 15000, side)
    X, Y = np.meshgrid(-150000.0 + g, -2250000.0 + g)
    seeds = np.column_stack([X.ravel(), Y.ravel()])[:n]
    end = f"{2017 + int(years) - 1}-12-31"
    t0 = time.perf_counter()
    p = run_track(cube, seeds=seeds, start="2017-01-01", end=end, out=out, figures=False,
                  output_every=every, estimator="pair-mean", period="year")
    s = time.perf_counter() - t0
    steps = round(years * 365.25 / 5.0)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(s, n * steps, rss)
    """
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--years", type=float, default=2.0)
    ap.add_argument("--output-every", type=int, default=73)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cube = str(Path(tmp) / "cube.zarr")
        subprocess.run([sys.executable, "-c", MAKE, cube], check=True)
        for n in args.points:
            out = subprocess.run(
                [sys.executable, "-c", RUN, cube, str(Path(tmp) / f"out{n}"), str(n),
                 str(args.years), str(args.output_every)],
                check=True, capture_output=True, text=True,
            ).stdout.split()  # fmt: skip
            seconds, steps, rss = float(out[0]), int(out[1]), float(out[2])
            print(json.dumps({"points": n, "seconds": round(seconds, 1),
                              "particle_steps_per_s": round(steps / seconds),
                              "peak_rss_mb": round(rss)}), flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
