"""The benchmarks still run: each at a tiny size, as a whole process, printing its figures.

The figures they print at full size are the performance evidence of the README and the
closing notes; a benchmark that no longer runs would leave them unchecked. Only that
they run and report is checked here, never a time (the machine's speed is not a test).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"

pytestmark = pytest.mark.slow


def _run(script: str, *args: str, tmp_path: Path) -> str:
    out = subprocess.run(
        [sys.executable, str(BENCH / script), *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=240,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def test_track_benchmark_runs(tmp_path):
    out = json.loads(
        _run("bench_track.py", "--particles", "40", "--parcels-particles", "10", "--years",
             "0.2", "--max-scaling", "100", tmp_path=tmp_path)
    )  # fmt: skip
    assert out["itscube"]["particles"] == 40 and out["itscube"]["particle_steps_per_s"] > 0
    assert set(out["itscube_scaling_particle_steps_per_s_1yr"]) == {"100"}


def test_download_sizes_benchmark_runs(tmp_path):
    text = _run("bench_download_sizes.py", "--sizes", "4", "--layers", "40", "--latency", "0",
                "--cache", str(tmp_path), "--start-runs", "1", tmp_path=tmp_path)  # fmt: skip
    rows = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    assert set(rows[0]["start_s"]) == {"itscube", "xarray"}
    row = rows[-1]
    assert row["pixels"] == "4 x 4" and row["itscube_requests"] > 0 and row["speedup"] > 0
    assert row["itscube_mb"] > 0 and row["xarray_mb"] > 0


def test_strain_benchmark_runs(tmp_path):
    out = json.loads(
        _run("bench_strain.py", "--size", "64", "--layers", "4", "--naive-layers", "1",
             "--log-size", "32", "--skip-memory", tmp_path=tmp_path)
    )  # fmt: skip
    a = out["a_per_step_gradient"]
    assert a["cube"].startswith("64 x 64 x 4") and a["ratio_vs_floor_fresh_outputs"] > 0
    assert a["max_rel_difference_vs_naive"] < 1e-5  # the same strain rates as np.gradient


def test_series_benchmark_runs(tmp_path):
    out = json.loads(
        _run("bench_series.py", "--points", "3", "--layers", "40", "--size", "20", "--latency",
             "0", tmp_path=tmp_path)
    )  # fmt: skip
    assert out["points"] == 3 and out["same_values"] is True and out["speedup"] > 0


@pytest.mark.s3
def test_download_s3_benchmark_runs(tmp_path):
    text = _run("bench_download_s3.py", "--sizes", "4", "--layers", "40", "--latency", "0",
                "--cache", str(tmp_path), tmp_path=tmp_path)  # fmt: skip
    row = json.loads(text.splitlines()[-1])
    assert row["pixels"] == "4 x 4" and set(row["itscube_requests"]) == {"GET"}
    assert row["xarray_requests"]["GET"] > 0
