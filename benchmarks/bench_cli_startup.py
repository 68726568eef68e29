"""Benchmark: start-up of ``itscube --help`` against ``python -c "import typer, rich"``.

Help, ``--version`` and argument errors must not import the scientific stack (numpy,
matplotlib, xarray): the CLI's floor is the cost of its own framework. Both are timed as
whole processes, alternated, in the same run; reported is the ratio of the medians, and the
heavy modules ``itscube --help`` imported (none expected).

Run: ``python benchmarks/bench_cli_startup.py [--runs 15]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

HEAVY = ("numpy", "matplotlib", "xarray", "pandas", "dask", "zarr", "scipy")


def _wall(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    cli = [sys.executable, "-m", "itscube.cli", "--help"]
    floor = [sys.executable, "-c", "import typer, rich"]
    _wall(cli), _wall(floor)  # warm the file cache
    a, b = [], []
    for _ in range(args.runs):
        a.append(_wall(cli))
        b.append(_wall(floor))
    probe = (
        "import sys; from itscube.cli import app; "
        f"print([m for m in {HEAVY!r} if m in sys.modules])"
    )
    heavy = subprocess.run(
        [sys.executable, "-c", probe], check=True, capture_output=True, text=True
    ).stdout.strip()
    result = {
        "itscube_help_s": round(statistics.median(a), 3),
        "import_typer_rich_s": round(statistics.median(b), 3),
        "ratio": round(statistics.median(a) / statistics.median(b), 2),
        "heavy_modules_imported_by_the_cli": heavy,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
