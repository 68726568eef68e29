"""Every code block of the README runs as written.

The real-data examples read the official URLs; here ``ITSCUBE_MIRRORS`` sends those URLs to
the bundled sample laid out and served as the bucket (:func:`itscube.sample.serve_bucket`),
so the same text runs offline through the same code paths. Commands that set up the
environment itself are not run (listed in ``NOT_RUN`` with the reason); ``CUBE`` stands for
the cube that the README's own download command made.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
BLOCK = re.compile(r"```(\w+)\n(.*?)```", re.S)

NOT_RUN = {
    "pip install": "the environment this test runs in was installed so",
    "pytest": "this is the test run",
    "dask scheduler": "a LocalCluster stands in for the scheduler and workers",
    "dask worker": "a LocalCluster stands in for the scheduler and workers",
}

pytestmark = pytest.mark.slow


def blocks(lang: str) -> list[str]:
    return [body for kind, body in BLOCK.findall(README) if kind == lang]


def command_lines(block: str) -> list[str]:
    """Shell lines of a block: continuations joined, comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", block)
    lines = []
    for line in joined.splitlines():
        line = re.sub(r"\s+#.*$", "", line).strip()
        if line and not line.startswith("#"):
            lines.append(line)
    return lines


def test_the_readme_has_the_blocks_this_test_runs():
    assert len(blocks("python")) >= 2 and len(blocks("bash")) >= 5
    assert all(
        line.startswith(("itscube ", "DASK_SCHEDULER_ADDRESS=", "ITSCUBE_SCHEDULER=", *NOT_RUN))
        for block in blocks("bash")
        for line in command_lines(block)
    ), "a README command this test does not know how to run"


@pytest.fixture(scope="module")
def bucket(tmp_path_factory):
    from itscube.sample import serve_bucket

    work = tmp_path_factory.mktemp("readme")
    with serve_bucket(work / "bucket") as mirror:
        env = {**os.environ, "ITSCUBE_MIRRORS": mirror.mirrors}
        env["ITSCUBE_CACHE_DIR"] = str(work / "cache")
        yield work, env


@pytest.fixture(scope="module")
def scheduler():
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=1, threads_per_worker=2, processes=False, protocol="tcp", dashboard_address=":0"
    ) as cluster:
        yield cluster.scheduler_address


def _glob(work: Path, word: str) -> list[Path]:
    """What the shell makes of a relative path with ``*`` in it (relative to ``work``)."""
    if "*" not in word or word.startswith("/"):
        return []
    return sorted(p.relative_to(work) for p in work.glob(word))


def _run(argv: list[str], work: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=work, env=env, capture_output=True, text=True, timeout=600)


def _workdir(base: Path, name: str) -> Path:
    """A fresh working folder with the repository's ``examples/`` (the README's paths)."""
    work = base / name
    work.mkdir()
    (work / "examples").symlink_to(ROOT / "examples")
    return work


@pytest.mark.timeout(600)  # about twenty commands, each a whole process (230 s in CI)
def test_bash_blocks_run_as_written(bucket, scheduler):
    base, env = bucket
    work = _workdir(base, "shell")
    cube = None
    ran = []
    for block in blocks("bash"):
        for line in command_lines(block):
            if line.startswith(tuple(NOT_RUN)):
                continue
            line = line.replace("tcp://scheduler-host:8786", scheduler)
            if "CUBE" in line.split():
                cube = cube or next(work.glob("data/subyearly_*/subyearly_EPSG3413.zarr"))
                line = re.sub(r"\bCUBE\b", str(cube.relative_to(work)), line)
            line = line.replace("data/subyearly_.../", "data/subyearly_*/")
            run_env = dict(env)
            words = shlex.split(line)
            while "=" in words[0]:  # VAR=value before the command
                key, value = words.pop(0).split("=", 1)
                run_env[key] = value
            words = [str(p) for w in words for p in (_glob(work, w) or [w])]
            assert words[0] == "itscube"
            r = _run([sys.executable, "-m", "itscube.cli", *words[1:]], work, run_env)
            assert r.returncode == 0, f"{line}\n{r.stdout}\n{r.stderr}"
            ran.append(words[1])
    assert {"demo", "download", "strain", "qdiv", "track"} <= set(ran)


def test_python_blocks_run_as_written(bucket):
    base, env = bucket
    work = _workdir(base, "python")  # its own data/: the shell download used other filters
    for i, block in enumerate(blocks("python")):
        script = work / f"readme_block_{i}.py"
        script.write_text(block)
        r = _run([sys.executable, str(script)], work, env)
        assert r.returncode == 0, f"python block {i}:\n{block}\n{r.stderr[-3000:]}"
