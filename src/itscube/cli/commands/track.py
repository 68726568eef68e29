"""``itscube track``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from itscube.cli.app import app, friendly, out_console
from itscube.cli.options import (
    BackgroundOpt,
    BackgroundStacOpt,
    EndOpt,
    EstimatorOpt,
    FiguresOpt,
    MaxDtOpt,
    MaxErrorOpt,
    MinDtOpt,
    OverwriteOpt,
    SchedulerOpt,
    SensorOpt,
    StartOpt,
    TrackGapRadiusOpt,
    filters_from_options,
    seeds_from_options,
)

__all__ = ["track"]


@app.command()
@friendly
def track(
    cube: Annotated[str, typer.Argument(help="Cube path/URL (Zarr, NetCDF, download folder).")],
    start: StartOpt = None,
    end: EndOpt = None,
    seeds: Annotated[
        Path | None,
        typer.Option(
            "--seeds",
            help="CSV (x,y or lon,lat; optional id), GeoJSON, GeoPackage or Shapefile of points.",
        ),
    ] = None,
    point: Annotated[
        tuple[float, float] | None,
        typer.Option("--point", help="One seed: LON LAT (or X Y with --crs).", metavar="LON LAT"),
    ] = None,
    line: Annotated[
        tuple[float, float, float, float, float] | None,
        typer.Option(
            "--line",
            help="N seeds on a line: LON0 LAT0 LON1 LAT1 N (or X0 Y0 X1 Y1 N with --crs).",
            metavar="LON0 LAT0 LON1 LAT1 N",
        ),
    ] = None,
    grid_step: Annotated[
        int | None,
        typer.Option(
            "--grid-step",
            "--grid",
            metavar="STEP",
            help="Displacement map from every STEP-th pixel (also the tracked points unless "
            "--seeds/--point/--line is given).",
        ),
    ] = None,
    seeds_crs: Annotated[
        str | None,
        typer.Option(
            "--crs",
            "--seeds-crs",
            help="CRS of --point, --line and --seeds coordinates (default: lon/lat for "
            "--point/--line, the file's or the cube's for --seeds).",
        ),
    ] = None,
    backward: Annotated[
        bool, typer.Option("--backward", help="Seeds at --end, track back.")
    ] = False,
    dt_days: Annotated[float, typer.Option("--dt-days", help="Time step (days).")] = 5.0,
    method: Annotated[str, typer.Option("--method", help="rk4, rk2 or euler.")] = "rk4",
    period: Annotated[
        str | None,
        typer.Option(
            "--period",
            "--composite",
            help="Composite fields held over: year, season, month or a pandas frequency such "
            "as 6MS (the same periods as strain and qdiv --period). Default: month with the "
            "fit (the fitted seasonal cycle), year with --estimator pair-mean.",
        ),
    ] = None,
    steady: Annotated[
        bool,
        typer.Option(
            "--steady", help="One mean field over the window (flowlines); not with --period."
        ),
    ] = False,
    estimator: EstimatorOpt = "auto",
    ensemble: Annotated[
        int, typer.Option("--ensemble", help="Monte-Carlo members for the spread.", min=0)
    ] = 0,
    gap_radius: TrackGapRadiusOpt = 3.0,
    output_every: Annotated[
        int,
        typer.Option(
            "--output-every",
            help="Keep every n-th step's position (and the last): bounds the output of many "
            "points, e.g. 10.",
            min=1,
        ),
    ] = 1,
    min_dt_days: MinDtOpt = None,
    max_dt_days: MaxDtOpt = None,
    extrapolate: Annotated[
        bool,
        typer.Option(
            "--extrapolate",
            help="Allow dates past the cube's: hold the nearest field there; those steps are "
            "flagged and their points get status 'extrapolated'.",
        ),
    ] = False,
    max_error: MaxErrorOpt = None,
    sensor: SensorOpt = None,
    out: Annotated[
        str, typer.Option("--out", help="Parent folder of track/ (or an fsspec URL: s3://...).")
    ] = ".",
    figures: FiguresOpt = True,
    background: BackgroundOpt = None,
    background_stac: BackgroundStacOpt = None,
    overwrite: OverwriteOpt = False,
    scheduler: SchedulerOpt = None,
):
    """Track points through the velocity field between two dates (RK4 by default).

    Writes OUT/track/<sdate>_<edate>/ with GeoPackage, CSV, NetCDF, GeoTIFFs (--grid-step),
    figures and summary.json. Example: itscube track cube.zarr --point -49.6 69.17 --start
    2018-01-01 --end 2020-12-31
    """
    from itscube.products.track import run_track

    seed_input, seeds_crs = seeds_from_options(seeds, point, line, grid_step, seeds_crs)
    filters = filters_from_options(min_dt_days, max_dt_days, sensor, None, max_error)
    product = run_track(
        cube,
        seeds=seed_input,
        grid_step=grid_step,
        start=start,
        end=end,
        out=out,
        dt_days=dt_days,
        method=method,
        backward=backward,
        period=period,
        steady=steady,
        estimator=estimator,
        ensemble=ensemble,
        seeds_crs=seeds_crs,
        gap_radius=gap_radius,
        output_every=output_every,
        filters=filters,
        extrapolate=extrapolate,
        figures=figures,
        background=background,
        background_stac=background_stac,
        overwrite=overwrite,
        scheduler=scheduler,
    )
    s = product.summary
    table = Table(title=f"tracks in {product.folder}", show_header=False)
    table.add_row("points", str(s["points"]))
    table.add_row("status", ", ".join(f"{k} {v}" for k, v in s["status"].items()))
    table.add_row("median displacement", f"{s['median_displacement_m']:.1f} m")
    if s["median_spread_m"] is not None:
        table.add_row("median 1-sigma spread", f"{s['median_spread_m']:.1f} m")
    table.add_row("files", str(len(product.files)))
    out_console.print(table)
