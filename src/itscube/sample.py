"""The offline sample: a synthetic outlet glacier in the ITS_LIVE v2 schema.

:func:`ensure_sample` writes (once, deterministically) a sub-yearly cube, an
annual cube and a catalog template into a folder. The data are synthetic (made
by :mod:`itscube.synthetic` from :data:`SAMPLE_FIELD`), never real ITS_LIVE
measurements; their analytic field is known, so results can be checked.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

from . import synthetic
from .catalog import cache_dir

SAMPLE_VERSION = 1
SAMPLE_EPSG = 3413
SAMPLE_CENTRE = (-150000.0, -2250000.0)
SAMPLE_SHAPE = (100, 100)
SAMPLE_LAYERS = 300
SAMPLE_YEARS = (2015, 2022)
SAMPLE_FIELD = synthetic.OutletGlacier(
    x_head=SAMPLE_CENTRE[0] - 5000.0,
    y_c=SAMPLE_CENTRE[1],
    half_width=3000.0,
    u_head=300.0,
    grad=0.04,
    converge=0.01,
)
"""Analytic velocity field of the sample glacier (m/yr)."""


@dataclasses.dataclass(frozen=True)
class Sample:
    """Paths of the sample data."""

    root: Path

    @property
    def subyearly(self) -> Path:
        return self.root / synthetic.subyearly_name(SAMPLE_EPSG, SAMPLE_CENTRE)

    @property
    def annual(self) -> Path:
        return self.root / synthetic.annual_name(SAMPLE_EPSG, SAMPLE_CENTRE)

    def catalog(self, base_url: str, path: Path) -> Path:
        """Write a catalog whose cube URLs point at ``base_url`` (where ``root`` is served)."""
        feat = synthetic.catalog_feature(
            f"{base_url}/{self.subyearly.name}",
            SAMPLE_EPSG,
            SAMPLE_CENTRE,
            SAMPLE_SHAPE,
            composite_zarr_url=f"{base_url}/{self.annual.name}",
            granule_count=SAMPLE_LAYERS,
            region="SAMPLE",
        )
        return synthetic.write_catalog(path, [feat])


def ensure_sample(root: str | Path | None = None) -> Sample:
    """Create the sample in ``root`` (default: the itscube cache folder) unless present."""
    root = Path(root) if root is not None else cache_dir() / f"sample-v{SAMPLE_VERSION}"
    sample = Sample(root)
    marker = root / "SAMPLE.json"
    if marker.exists():
        return sample
    tmp = root.with_name(root.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    tmp_sample = Sample(tmp)
    synthetic.make_subyearly_cube(
        tmp_sample.subyearly,
        SAMPLE_FIELD,
        epsg=SAMPLE_EPSG,
        centre=SAMPLE_CENTRE,
        shape=SAMPLE_SHAPE,
        n_layers=SAMPLE_LAYERS,
        start=f"{SAMPLE_YEARS[0]}-01-01",
        end=f"{SAMPLE_YEARS[1]}-12-31",
        seed=2024,
    )
    synthetic.make_annual_cube(
        tmp_sample.annual,
        SAMPLE_FIELD,
        epsg=SAMPLE_EPSG,
        centre=SAMPLE_CENTRE,
        shape=SAMPLE_SHAPE,
        years=range(SAMPLE_YEARS[0], SAMPLE_YEARS[1] + 1),
        seed=2024,
    )
    (tmp / "SAMPLE.json").write_text(
        json.dumps(
            {
                "version": SAMPLE_VERSION,
                "synthetic": True,
                "field": dataclasses.asdict(SAMPLE_FIELD),
                "epsg": SAMPLE_EPSG,
                "centre": SAMPLE_CENTRE,
                "shape": SAMPLE_SHAPE,
                "layers": SAMPLE_LAYERS,
            },
            indent=1,
        )
    )
    if root.exists():
        shutil.rmtree(root)
    tmp.replace(root)
    return sample


def write_qdiv_templates(folder: str | Path) -> tuple[Path, Path]:
    """The ``Example_Qdiv`` templates for the sample cube: ``Thickness.tif`` (240 m grid,
    EPSG:3413, from :func:`itscube.synthetic.glacier_thickness`) and ``Boundaries.csv``
    (a polygon around the lower trunk, x/y in EPSG:3413 metres)."""
    import numpy as np

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    cx, cy = SAMPLE_CENTRE
    x = cx - 7000 + 240.0 * np.arange(59) + 120
    y = cy + 7000 - 240.0 * np.arange(59) - 120
    X, Y = np.meshgrid(x, y)
    tif = synthetic.write_geotiff(
        folder / "Thickness.tif",
        x,
        y,
        synthetic.glacier_thickness(SAMPLE_FIELD, X, Y),
        SAMPLE_EPSG,
    )
    pts = [
        (cx - 3000, cy - 2200),
        (cx + 1000, cy - 2500),
        (cx + 4000, cy - 2000),
        (cx + 4200, cy + 1800),
        (cx + 500, cy + 2400),
        (cx - 2800, cy + 2100),
    ]
    csv = folder / "Boundaries.csv"
    csv.write_text("x,y\n" + "".join(f"{px:.1f},{py:.1f}\n" for px, py in pts))
    return tif, csv
