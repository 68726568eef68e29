"""The example notebooks run top to bottom on the bundled sample (so they cannot rot)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
NOTEBOOKS = sorted(EXAMPLES.glob("*.ipynb"))


def test_there_are_two_notebooks():
    assert [p.name for p in NOTEBOOKS] == ["01_download.ipynb", "02_strain_track_flux.ipynb"]


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path, tmp_path):
    nb = nbformat.read(path, as_version=4)
    assert "USE_REAL_DATA = False" in nb.cells[1].source  # the one-line switch, offline default
    assert not any(c.get("outputs") for c in nb.cells if c.cell_type == "code")  # stored clean
    shutil.copy(path, tmp_path / path.name)
    client = nbclient.NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()  # raises CellExecutionError on the first failing cell
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
    figures = [
        o for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})
    ]
    assert len(figures) >= 1
    printed = "".join(
        o.get("text", "")
        for c in nb.cells
        for o in c.get("outputs", [])
        if o.output_type == "stream"
    )
    CHECKS[path.stem](printed)


def _download_printed(text: str) -> None:
    """What the download notebook printed: the catalog, its cubes, a subset actually fetched."""
    assert int(re.search(r"^(\d+) cubes in ", text, re.M).group(1)) >= 1
    assert re.search(r"EPSG:\d{4,5} \S+\.zarr", text)
    assert float(re.search(r"([\d.]+) MB fetched", text).group(1)) > 0


def _strain_track_flux_printed(text: str) -> None:
    """What the analysis notebook printed, checked against the sample's generator and
    Gauss's theorem, independently of the notebook's own asserts."""
    from itscube.sample import SAMPLE_FIELD

    centre = float(re.search(r"centre longitudinal ([-\d.]+) /yr", text).group(1))
    assert 0.9 * SAMPLE_FIELD.grad < centre < 1.25 * SAMPLE_FIELD.grad
    budgets = re.findall(
        r"integrated div\(Hu\) ([-\d.e+]+) m3/yr .*?line integral ([-\d.e+]+) m3/yr", text
    )
    assert budgets  # one line per year
    for area_integral, line_integral in budgets:  # Gauss: the two agree, up to the pixel
        a, b = float(area_integral), float(line_integral)  # faces against the polygon's line
        assert abs(a - b) <= 0.05 * max(abs(a), abs(b)), (a, b)
    statuses = re.search(r"\[('ok' ?)+\]", text)
    assert statuses, "every tracked point ends ok"


CHECKS = {"01_download": _download_printed, "02_strain_track_flux": _strain_track_flux_printed}
