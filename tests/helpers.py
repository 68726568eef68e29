"""What tests share besides fixtures: the analytic field of the test cubes, the CLI runner
and its one-line-error check, and value-by-value comparisons of datasets and product
folders (``conftest.py`` holds only fixtures and hooks)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from typer.testing import CliRunner

from itscube._datasets import itslive as synthetic
from itscube.cli import app

EPSG = 3413
CENTRE_A = (-150000.0, -2250000.0)
SHAPE = (40, 40)
# B overlaps A by 10 columns: its tile centre is 30 pixels further east
CENTRE_B = (CENTRE_A[0] + 30 * 120.0, CENTRE_A[1])
UTM_EPSG = 32622
CENTRE_UTM = (500000.0, 7700000.0)

FIELD = synthetic.LinearField(
    u0=150.0,
    v0=-40.0,
    a=0.004,
    b=0.001,
    c=-0.002,
    d=0.003,
    x0=CENTRE_A[0],
    y0=CENTRE_A[1],
    accel=10.0,
)
"""Analytic field of the test cubes (m/yr; strain rates in 1/yr)."""


def analytic(x, y, date) -> tuple[np.ndarray, np.ndarray]:
    """The test field at pixel centres and a datetime64 (m/yr)."""
    X, Y = np.meshgrid(x, y)
    t = float(synthetic.decimal_year(np.array([date]))[0])
    return FIELD(X, Y, t)


_runner = CliRunner()


def run_cli(*args):
    """Invoke the itscube CLI in-process."""
    return _runner.invoke(app, [str(a) for a in args])


def one_line_error(result, code=2, match=""):
    """The CLI failed with ``code`` and a single ``error: ...`` line, no traceback."""
    assert result.exit_code == code, result.output
    lines = [
        line
        for line in result.output.strip().splitlines()
        if line.strip() and not line.startswith("plan:")  # the download's plan, printed first
    ]
    text = " ".join(lines)
    assert "Traceback" not in result.output
    assert text.startswith("error:"), result.output
    assert match in text


def point_download_args(catalog_file, start="2018-01-01", end="2018-12-31") -> list:
    """CLI arguments of a download of the centre of cube A through the test catalog."""
    return [
        "--point",
        CENTRE_A[0],
        CENTRE_A[1],
        "--crs",
        "EPSG:3413",
        "--start",
        start,
        "--end",
        end,
        "--catalog",
        catalog_file,
    ]


def same_dataset(a: xr.Dataset, b: xr.Dataset) -> None:
    """The same variables, dims, dtypes and values (NaN where NaN), and attributes."""
    assert sorted(a.variables) == sorted(b.variables)
    for name in a.variables:
        va, vb = a[name].values, b[name].values
        assert a[name].dims == b[name].dims, name
        assert va.dtype == vb.dtype, name
        if va.dtype.kind == "f":
            np.testing.assert_array_equal(va, vb, err_msg=name)
        else:
            assert (va == vb).all(), name
    assert {k: v for k, v in a.attrs.items() if k not in ("history", "date_created")} == {
        k: v for k, v in b.attrs.items() if k not in ("history", "date_created")
    }


def same_files(a: Path, b: Path) -> list[str]:
    """Compare two product folders file by file (NetCDF and Zarr by value, tables by
    content, GeoTIFFs by pixels); the names compared."""
    import rioxarray

    names = sorted(
        str(p.relative_to(a)) for p in a.rglob("*") if p.is_file() and "figures" not in p.parts
    )
    other = sorted(
        str(p.relative_to(b)) for p in b.rglob("*") if p.is_file() and "figures" not in p.parts
    )
    assert names == other
    for name in names:
        pa, pb = a / name, b / name
        if pa.suffix == ".nc":
            with xr.open_dataset(pa) as da_, xr.open_dataset(pb) as db_:
                same_dataset(da_.load(), db_.load())
        elif pa.suffix == ".csv":
            pd.testing.assert_frame_equal(pd.read_csv(pa), pd.read_csv(pb))
        elif pa.suffix == ".tif":
            ra, rb = rioxarray.open_rasterio(pa), rioxarray.open_rasterio(pb)
            np.testing.assert_array_equal(ra.values, rb.values)
        elif pa.name == "summary.json":
            ja, jb = json.loads(pa.read_text()), json.loads(pb.read_text())
            for j in (ja, jb):
                j.pop("seconds", None)
            ja.pop("cube", None), jb.pop("cube", None)
            assert ja == jb
    return names


class DrawnFigures(dict):
    """What each saved figure drew, keyed by its path: per axes, the arrays of its images
    (``images``, RGB ones as ``(rows, cols, 3)`` uint8) and the data of its lines
    (``lines``, ``(x, y)`` pairs) and line collections (``segments``, each an
    ``(n, 2, 2)`` array). Filled by :func:`record_figures`."""

    def find(self, tail: str) -> list[dict]:
        """The one figure whose path ends with ``tail`` (e.g. ``2_…/figures/x.png``)."""
        (key,) = [k for k in self if k.endswith(tail)]
        return self[key]

    def rgb_images(self, tail: str) -> list[np.ndarray]:
        return [im for ax in self.find(tail) for im in ax["images"] if im.ndim == 3]


def _segments(collection):
    """A line collection's segments: one array if they have one shape, else a list."""
    segs = [np.asarray(s) for s in collection.get_segments()]
    return np.stack(segs) if segs and len({s.shape for s in segs}) == 1 else segs


def record_figures(monkeypatch) -> DrawnFigures:
    """Record the artists of every figure saved from now on (checks of what was drawn,
    not of PNG bytes)."""
    from matplotlib.collections import LineCollection
    from matplotlib.figure import Figure

    drawn = DrawnFigures()
    original = Figure.savefig

    def savefig(fig, fname, *args, **kwargs):
        # the final path: staged folders are ".NAME.partial-PID" until the product is done
        name = re.sub(r"/\.([^/]+)\.partial-\d+", r"/\1", str(fname).replace(".tmp.png", ""))
        drawn[name] = [
            {
                "images": [np.asarray(im.get_array()) for im in ax.get_images()],
                "lines": [
                    (np.asarray(ln.get_xdata()), np.asarray(ln.get_ydata()))
                    for ln in ax.get_lines()
                ],
                "segments": [_segments(c) for c in ax.collections if isinstance(c, LineCollection)],
            }
            for ax in fig.axes
        ]
        return original(fig, fname, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", savefig)
    return drawn
