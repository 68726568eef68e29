"""``itscube qdiv``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from itscube.cli.app import app, friendly, out_console, print_path, progress_bars
from itscube.cli.options import (
    BackgroundOpt,
    BackgroundStacOpt,
    EndOpt,
    ErrorCorrelationOpt,
    ErrorOffsetOpt,
    EstimatorOpt,
    FiguresOpt,
    OverwriteOpt,
    PeriodOpt,
    ProgressOpt,
    SchedulerOpt,
    StartOpt,
    parse_upscales,
)

__all__ = ["qdiv"]


@app.command(context_settings={"allow_extra_args": True})
@friendly
def qdiv(
    ctx: typer.Context,
    cube: Annotated[str, typer.Argument(help="Cube path/URL (Zarr, NetCDF, download folder).")],
    thickness: Annotated[Path, typer.Option("--thickness", help="Ice thickness GeoTIFF (m).")],
    boundary: Annotated[
        Path, typer.Option("--boundary", help="CSV of boundary points (x, y columns).")
    ],
    upscale: Annotated[
        list[str] | None, typer.Option("--upscale", help="Block size(s) k in pixels.")
    ] = None,
    start: StartOpt = None,
    end: EndOpt = None,
    period: PeriodOpt = "all",
    estimator: EstimatorOpt = "auto",
    per_step: Annotated[
        bool, typer.Option("--per-step", help="Also write a flux time series per layer.")
    ] = False,
    column_factor: Annotated[
        float, typer.Option("--column-factor", help="Depth-averaged / surface speed (0.8-1.0).")
    ] = 1.0,
    scheme: Annotated[str, typer.Option("--scheme", help="centred or upwind.")] = "centred",
    thickness_error: Annotated[
        Path | None, typer.Option("--thickness-error", help="Thickness error GeoTIFF (m).")
    ] = None,
    thickness_crs: Annotated[
        str | None, typer.Option("--thickness-crs", help="CRS of a GeoTIFF that has none.")
    ] = None,
    boundary_crs: Annotated[
        str | None, typer.Option("--boundary-crs", help="CRS of the CSV (default: the cube's).")
    ] = None,
    out: Annotated[
        str, typer.Option("--out", help="Parent folder of qdiv/ (or an fsspec URL: s3://...).")
    ] = ".",
    figures: FiguresOpt = True,
    background: BackgroundOpt = None,
    background_stac: BackgroundStacOpt = None,
    allow_partial: Annotated[
        bool,
        typer.Option(
            "--allow-partial",
            help="Where part of the boundary lacks velocity or thickness, integrate the covered "
            "cells only and report the coverage (default: an error).",
        ),
    ] = False,
    common_layers: Annotated[
        bool,
        typer.Option(
            "--common-layers",
            help="Average only the image pairs with data over the whole boundary, so that "
            "cloud-gap edges leave no stripes in the maps (fewer pairs per period).",
        ),
    ] = False,
    error_offset: ErrorOffsetOpt = 0.5,
    error_correlation: ErrorCorrelationOpt = 360.0,
    thickness_error_correlation: Annotated[
        float,
        typer.Option(
            "--thickness-error-correlation",
            help="Error model: correlation length of the thickness error (m; 0 = independent).",
            min=0.0,
        ),
    ] = 0.0,
    overwrite: OverwriteOpt = False,
    progress: ProgressOpt = True,
    scheduler: SchedulerOpt = None,
):
    """Flux divergence and dynamic thinning inside a boundary, from a thickness GeoTIFF.

    Writes OUT/qdiv/<upscale>_<sdate>_<edate>/ with NetCDF, COG GeoTIFFs, fluxes.csv
    (with the discrete Gauss check and the boundary line integral), figures and
    summary.json. Example: itscube qdiv cube.zarr --thickness H.tif --boundary b.csv
    """
    from itscube.products.flux import run_qdiv
    from itscube.temporal import ErrorModel

    products = run_qdiv(
        cube,
        thickness=thickness,
        boundary=boundary,
        upscale=parse_upscales(ctx, upscale),
        out=out,
        start=start,
        end=end,
        period=period,
        estimator=estimator,
        per_step=per_step,
        column_factor=column_factor,
        scheme=scheme,
        thickness_error=thickness_error,
        thickness_crs=thickness_crs,
        boundary_crs=boundary_crs,
        allow_partial=allow_partial,
        common_layers=common_layers,
        error_model=ErrorModel(
            offset=error_offset,
            correlation_m=error_correlation,
            thickness_correlation_m=thickness_error_correlation,
        ),
        figures=figures,
        background=background,
        background_stac=background_stac,
        overwrite=overwrite,
        progress=progress_bars(progress),
        scheduler=scheduler,
    )
    for p in products:
        table = Table(title=f"flux divergence, upscale {p.summary['upscale_px']}")
        for col in ("period", "km2", "div(H u) Gt/yr", "coverage", "line vs area"):
            table.add_column(col, no_wrap=col == "div(H u) Gt/yr")
        for r in p.summary["periods"]:
            err = r.get("integrated_divergence_error_gt_yr")
            table.add_row(
                r["period"],
                f"{r['area_m2'] / 1e6:.1f}",
                f"{r['integrated_divergence_gt_yr']:.4f}"
                + ("" if err is None else f" ± {err:.4f}"),
                f"{r['coverage']:.1%}",
                "n/a (partial)" if r["coverage"] < 0.999 else f"{r['relative_difference']:+.1%}",
            )
        out_console.print(table)
        print_path("folder", p.folder)
