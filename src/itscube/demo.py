"""The main job end to end on the bundled sample (``itscube demo``).

The sample (:mod:`itscube.sample`) is served over HTTP on 127.0.0.1 and downloaded through the
same code path as a real ITS_LIVE download (catalog over HTTP -> footprint search -> chunk reads
-> local Zarr store); then strain rates at two upscales, tracks of a line of points with a
displacement grid, and flux divergence with the ``Example_Qdiv`` templates are computed into
the documented folders, with an overview figure.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np
import xarray as xr

from itscube.errors import InputError
from itscube.geometry import bbox_area
from itscube.grid import time_dim
from itscube.io.catalog import load_catalog
from itscube.io.cube import open_cube
from itscube.io.download import download
from itscube.products._common import load_background
from itscube.products.flux import run_qdiv
from itscube.products.strain import run_strain
from itscube.products.track import run_track
from itscube.progress import ProgressLike, as_progress
from itscube.sample import SAMPLE_CENTRE, SAMPLE_EPSG, ensure_sample, serve_sample

__all__ = ["DemoResult", "DemoRow", "run_demo", "write_overview"]

DOWNLOAD_WINDOW = ("2016-01-01", "2021-12-31")
ANALYSIS_WINDOW = ("2018-01-01", "2019-12-31")
UPSCALES = (2, 4)
LINE_X = SAMPLE_CENTRE[0] - 3000.0
"""x (m) of the line of tracked points, across the glacier below its head ramp."""
LINE_Y = (SAMPLE_CENTRE[1] - 2400.0, SAMPLE_CENTRE[1] + 2400.0)
LINE_N = 9
GRID_STEP = 5


@dataclasses.dataclass
class DemoRow:
    """One product of the demo: what, where, and a key number."""

    product: str
    path: Path | str
    result: str = ""


@dataclasses.dataclass
class DemoResult:
    rows: list[DemoRow]
    overview: Path
    seconds: float


def run_demo(out: str | Path, *, progress: ProgressLike = None) -> DemoResult:
    """Run the whole chain on the bundled sample into ``out``.

    Writes ``out/download/<kind>_.../*.zarr``, ``out/strain/<k>_<sdate>_<edate>/`` for
    k = 2 and 4, ``out/track/<sdate>_<edate>/`` (9 points across the glacier and a
    displacement grid), ``out/qdiv/2_<sdate>_<edate>/`` and ``out/overview.png``.
    Existing demo products in ``out`` are replaced.
    """
    t0 = time.perf_counter()
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"out {out} is a file; give a folder for the demo outputs", params="out")
    progress = as_progress(progress)
    out.mkdir(parents=True, exist_ok=True)
    sample = ensure_sample()
    rows: list[DemoRow] = []
    cx, cy = SAMPLE_CENTRE
    area = bbox_area(cx - 5000, cy - 4000, cx + 5000, cy + 4000, crs=f"EPSG:{SAMPLE_EPSG}")
    cubes: dict[str, xr.Dataset] = {}
    with serve_sample(sample) as server:
        catalog = load_catalog(server.catalog_url, cache=False)
        for kind in ("subyearly", "annual"):
            res = download(
                area,
                start=DOWNLOAD_WINDOW[0],
                end=DOWNLOAD_WINDOW[1],
                kind=kind,
                out=out / "download",
                catalog=catalog,
                overwrite=True,  # reuse an identical earlier download, else replace it
                progress=progress,
            )
            ds = cubes[kind] = open_cube(res.stores[0])
            rows.append(
                DemoRow(
                    f"{kind} cube",
                    res.stores[0],
                    f"{ds.sizes[time_dim(ds)]} layers, {ds.sizes['y']} x {ds.sizes['x']} px, "
                    + (
                        "already downloaded"
                        if res.already_complete
                        else f"{res.chunks_fetched} chunks, {res.bytes_fetched / 1e6:.1f} MB "
                        "over HTTP"
                    ),
                )
            )
            if kind == "subyearly":
                cube = res.stores[0]
        # images come from the sample's STAC API, as they would from Earth Search
        with progress.task("demo: strain, tracks, flux, overview", 4, keep=True) as advance:
            rows += _analyses(cube, sample, cubes, out, progress, advance, server.stac_url)
    return DemoResult(rows, out / "overview.png", time.perf_counter() - t0)


def _analyses(cube, sample, cubes, out: Path, progress, advance, stac: str) -> list[DemoRow]:
    """Strain, tracks, flux and the overview figure from the downloaded cubes."""
    rows: list[DemoRow] = []
    start, end = ANALYSIS_WINDOW
    common = dict(start=start, end=end, out=out, overwrite=True)
    progress.log("strain rates at upscales " + ", ".join(map(str, UPSCALES)))
    strain = run_strain(
        cube,
        upscale=list(UPSCALES),
        period="year",
        progress=progress,
        **common,
    )
    advance()
    for p in strain:
        first = p.summary["periods"][0]
        rows.append(
            DemoRow(
                f"strain rates, upscale {p.summary['upscale_px']}",
                p.folder,
                f"median effective {first['effective']['median']:.3f} yr-1 ({first['label']})",
            )
        )
    line = np.column_stack([np.full(LINE_N, LINE_X), np.linspace(*LINE_Y, LINE_N)])
    progress.log("tracking a line of points and a displacement grid")
    tracks = run_track(
        cube, seeds=line, grid_step=GRID_STEP, background="auto", background_stac=stac, **common
    )
    advance()
    rows.append(
        DemoRow(
            "tracks + displacement grid",
            tracks.folder,
            f"{tracks.summary['points']} points, median displacement "
            f"{tracks.summary['median_displacement_m']:.0f} m",
        )
    )
    progress.log("flux divergence with the Example_Qdiv templates")
    (qdiv,) = run_qdiv(
        cube,
        thickness=sample.thickness,
        boundary=sample.boundary,
        upscale=[2],
        period="year",
        progress=progress,
        **common,
    )
    advance()
    first = qdiv.summary["periods"][0]
    err = first.get("integrated_divergence_error_gt_yr")
    rows.append(
        DemoRow(
            "flux divergence, upscale 2",
            qdiv.folder,
            f"{first['integrated_divergence_gt_yr']:.3f}"
            + ("" if err is None else f" ± {err:.3f}")
            + " Gt/yr inside the boundary, "
            f"mean dynamic dH/dt {first['mean_dynamic_dhdt_m_yr']:.2f} m/yr "
            f"({first['period']})",
        )
    )
    image = load_background("auto", cubes["subyearly"], ANALYSIS_WINDOW[0], stac=stac)
    overview = write_overview(
        out / "overview.png",
        cubes,
        Path(strain[0].folder),
        Path(tracks.folder),
        Path(qdiv.folder),
        sample.boundary,
        image,
    )
    advance()
    rows.append(DemoRow("overview figure", overview))
    return rows


def write_overview(
    path: Path,
    cubes: dict[str, xr.Dataset],
    strain_folder: Path,
    track_folder: Path,
    qdiv_folder: Path,
    boundary: Path,
    background: xr.DataArray | None = None,
) -> Path:
    """The demo's one-page figure from the products on disk and the downloaded ``cubes``
    (the speed panel over the image ``background``, if any)."""
    from itscube.flux import read_boundary
    from itscube.products.figures.overview import overview_figure

    with (
        xr.open_dataset(strain_folder / "strain_period.nc") as strain,
        xr.open_dataset(qdiv_folder / "qdiv_period.nc") as qdiv,
        xr.open_dataset(track_folder / "tracks.nc") as tracks,
    ):
        return overview_figure(
            strain.isel(time=0).load(),
            qdiv.isel(time=0).load(),
            tracks.load(),
            cubes["subyearly"],
            cubes["annual"],
            read_boundary(boundary, cubes["subyearly"]),
            point=(LINE_X + 4000.0, SAMPLE_CENTRE[1]),
            path=path,
            background=background,
        )
