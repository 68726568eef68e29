"""``itscube series``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from itscube.cli.app import app, friendly, out_console, print_path, progress_bars
from itscube.cli.options import (
    CatalogOpt,
    CrsOpt,
    EndOpt,
    EstimatorOpt,
    FiguresOpt,
    MaxDtOpt,
    MaxErrorOpt,
    MinDtOpt,
    OverwriteOpt,
    PolygonOpt,
    ProgressOpt,
    SchedulerOpt,
    SensorOpt,
    StacOpt,
    StartOpt,
    filters_from_options,
    targets_from_options,
)

__all__ = ["series"]


@app.command()
@friendly
def series(
    cube: Annotated[
        str | None,
        typer.Argument(help="A cube (path or URL); default: the archive, through the catalog."),
    ] = None,
    point: Annotated[
        list[str] | None,
        typer.Option("--point", help="A point: LON LAT (or X Y with --crs); repeatable."),
    ] = None,
    points: Annotated[
        Path | None,
        typer.Option("--points", help="CSV (x,y or lon,lat; optional id) or GeoJSON points."),
    ] = None,
    profile: Annotated[
        tuple[float, float, float, float] | None,
        typer.Option("--profile", help="A transect X0 Y0 X1 Y1 (lon/lat, or metres with --crs)."),
    ] = None,
    profile_file: Annotated[
        Path | None,
        typer.Option("--profile-file", help="A GeoJSON LineString (a flowline) to sample along."),
    ] = None,
    spacing: Annotated[
        float | None,
        typer.Option("--spacing", help="Metres between profile samples (default 120, a pixel)."),
    ] = None,
    polygon: PolygonOpt = None,
    crs: CrsOpt = None,
    kind: Annotated[
        str | None,
        typer.Option(
            "--kind",
            help="subyearly (image pairs), annual or both (default: the CUBE's kind, or "
            "subyearly from the archive).",
        ),
    ] = None,
    interp: Annotated[
        str, typer.Option("--interp", help="nearest (default) or bilinear.")
    ] = "nearest",
    radius: Annotated[
        float,
        typer.Option(
            "--radius",
            "--buffer",
            help="Average the pixels within this radius (m) of each point, a disc, e.g. 300.",
            min=0,
        ),
    ] = 0.0,
    regularise: Annotated[
        str | None,
        typer.Option(
            "--regularise",
            help="Regular series of means per bin (1MS, QS or YS), by --estimator.",
        ),
    ] = None,
    estimator: EstimatorOpt = "auto",
    climatology: Annotated[
        bool, typer.Option("--climatology", help="Also the mean annual cycle, by month.")
    ] = False,
    start: StartOpt = None,
    end: EndOpt = None,
    min_dt_days: MinDtOpt = None,
    max_dt_days: MaxDtOpt = None,
    sensor: SensorOpt = None,
    min_valid: Annotated[
        float | None,
        typer.Option("--min-valid", help="Minimum roi_valid_percentage (notebooks: 40)."),
    ] = None,
    max_error: MaxErrorOpt = None,
    catalog: CatalogOpt = None,
    stac: StacOpt = None,
    out: Annotated[
        str, typer.Option("--out", help="Parent folder of series/ (or an fsspec URL: s3://...).")
    ] = ".",
    figures: FiguresOpt = True,
    overwrite: OverwriteOpt = False,
    progress: ProgressOpt = True,
    scheduler: SchedulerOpt = None,
):
    """Velocity time series at points, along a profile or over a polygon, from a cube or
    straight from the archive (only the chunks holding the pixels are read).

    Writes OUT/series/<name>_<sdate>_<edate>/ with series.csv, series.nc, series.parquet,
    figures and summary.json. Example: itscube series --point -49.6 69.17 --start 2018
    """
    from itscube.products.series import run_series

    targets = targets_from_options(point, points, profile, profile_file, spacing, polygon, crs)
    filters = filters_from_options(min_dt_days, max_dt_days, sensor, min_valid, max_error)
    product = run_series(
        targets,
        cube,
        out=out,
        kind=kind,
        start=start,
        end=end,
        filters=filters,
        interp=interp,
        radius=radius,
        regularise=regularise,
        estimator=estimator,
        climatology=climatology,
        catalog=catalog,
        stac=stac,
        figures=figures,
        overwrite=overwrite,
        progress=progress_bars(progress),
        scheduler=scheduler,
    )
    s = product.summary
    out_console.print(
        f"{s['points']} point(s), {s['layers']} layers ({s['kind']}, {s['interp']}) from "
        f"{len(s['cubes'])} cube(s)"
    )
    print_path("folder", product.folder)
