"""The kernels' machine code is cached in the user's cache folder, and reused."""

from __future__ import annotations

import json
import os
import subprocess
import sys

SCRIPT = """
import json, numpy as np
from itscube._kernels import kernel_cache_dir
from itscube._kernels.strain import _inverse_baselines
print(json.dumps({
    "value": _inverse_baselines(np.array([0.0, 1.0, 3.0, 7.0]), 1).tolist(),
    "hits": sum(_inverse_baselines.stats.cache_hits.values()),
    "dir": str(kernel_cache_dir()),
}))
"""


def _run(env):
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_kernels_cache_in_the_user_cache_folder_and_reuse_it(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env["ITSCUBE_CACHE_DIR"] = str(tmp_path)
    first = _run(env)
    assert first["value"] == [1 / 3, 1 / 6]
    assert first["dir"] == str(tmp_path / "numba")
    assert first["hits"] == 0
    written = [p.name for p in (tmp_path / "numba").rglob("*") if p.is_file()]
    assert any(n.startswith("strain._inverse_baselines") and n.endswith(".nbi") for n in written)
    assert any(n.endswith(".nbc") for n in written)
    second = _run(env)
    assert second["value"] == first["value"]
    assert second["hits"] == 1


def test_numba_cache_dir_set_by_the_user_wins(tmp_path):
    env = dict(os.environ)
    env["ITSCUBE_CACHE_DIR"] = str(tmp_path / "itscube")
    env["NUMBA_CACHE_DIR"] = str(tmp_path / "mine")
    _run(env)
    assert not (tmp_path / "itscube" / "numba").exists()
    assert any(p.suffix == ".nbi" for p in (tmp_path / "mine").rglob("*"))
