"""``itscube strain``."""

from __future__ import annotations

from typing import Annotated

import typer

from itscube.cli.app import app, friendly, progress_bars
from itscube.cli.options import (
    BackgroundOpt,
    BackgroundStacOpt,
    EndOpt,
    ErrorCorrelationOpt,
    ErrorOffsetOpt,
    EstimatorOpt,
    FiguresOpt,
    GapRadiusOpt,
    MaxDtOpt,
    MaxErrorOpt,
    MinDtOpt,
    OverwriteOpt,
    PeriodOpt,
    ProgressOpt,
    SchedulerOpt,
    SensorOpt,
    StartOpt,
    filters_from_options,
    parse_upscales,
)
from itscube.cli.render import products_table

__all__ = ["strain"]


@app.command(context_settings={"allow_extra_args": True})
@friendly
def strain(
    ctx: typer.Context,
    cube: Annotated[str, typer.Argument(help="Cube path/URL (Zarr, NetCDF, download folder).")],
    upscale: Annotated[
        list[str] | None,
        typer.Option(
            "--upscale", help="Half-baseline(s) k in pixels, L = 2 k dx: --upscale 1 2 4."
        ),
    ] = None,
    start: StartOpt = None,
    end: EndOpt = None,
    method: Annotated[
        str, typer.Option("--method", help="gradient (±k pixels), coarsen (k x k blocks) or log.")
    ] = "gradient",
    period: PeriodOpt = "all",
    estimator: EstimatorOpt = "auto",
    error_offset: ErrorOffsetOpt = 0.5,
    error_correlation: ErrorCorrelationOpt = 360.0,
    per_step: Annotated[
        bool, typer.Option("--per-step", help="Also write strain for every layer (streamed).")
    ] = False,
    gap_radius: GapRadiusOpt = None,
    strided: Annotated[
        bool, typer.Option("--strided", help="Keep every k-th pixel (the notebooks' grid).")
    ] = False,
    min_dt_days: MinDtOpt = None,
    max_dt_days: MaxDtOpt = None,
    max_error: MaxErrorOpt = None,
    sensor: SensorOpt = None,
    out: Annotated[
        str, typer.Option("--out", help="Parent folder of strain/ (or an fsspec URL: s3://...).")
    ] = ".",
    figures: FiguresOpt = True,
    background: BackgroundOpt = None,
    background_stac: BackgroundStacOpt = None,
    min_speed: Annotated[
        float,
        typer.Option(
            "--min-speed",
            help="Mask flow-aligned components (longitudinal, transverse, shear) where the "
            "speed is below this (m/yr; the flow direction is noise there). 0 keeps them.",
            min=0,
        ),
    ] = 5.0,
    overwrite: OverwriteOpt = False,
    scheduler: SchedulerOpt = None,
    progress: ProgressOpt = True,
):
    """Strain rates at one or more length scales, per period and optionally per layer.

    Writes OUT/strain/<upscale>_<sdate>_<edate>/ with NetCDF, COG GeoTIFFs, figures and
    summary.json. Example: itscube strain cube.zarr --upscale 1 2 4 --start 2018-01-01
    """
    from itscube.products.strain import run_strain
    from itscube.temporal import ErrorModel

    ks = parse_upscales(ctx, upscale)
    filters = filters_from_options(min_dt_days, max_dt_days, sensor, None, max_error)
    products = run_strain(
        cube,
        upscale=ks,
        out=out,
        start=start,
        end=end,
        method=method,
        period=period,
        estimator=estimator,
        per_step=per_step,
        filters=filters,
        gap_radius=gap_radius,
        strided=strided,
        min_speed=min_speed,
        error_model=ErrorModel(offset=error_offset, correlation_m=error_correlation),
        figures=figures,
        background=background,
        background_stac=background_stac,
        overwrite=overwrite,
        progress=progress_bars(progress),
        scheduler=scheduler,
    )
    products_table("strain rates", products)
