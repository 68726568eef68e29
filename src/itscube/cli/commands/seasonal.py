"""``itscube seasonal``."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from itscube.cli.app import app, friendly, out_console, progress_bars
from itscube.cli.options import (
    EndOpt,
    FiguresOpt,
    MaxDtOpt,
    MaxErrorOpt,
    MinDtOpt,
    OverwriteOpt,
    ProgressOpt,
    SchedulerOpt,
    SensorOpt,
    StartOpt,
    filters_from_options,
)

__all__ = ["seasonal"]


@app.command()
@friendly
def seasonal(
    cube: Annotated[
        str, typer.Argument(help="Sub-yearly cube path/URL (Zarr, NetCDF, download folder).")
    ],
    start: StartOpt = None,
    end: EndOpt = None,
    min_months: Annotated[
        int,
        typer.Option(
            "--min-months",
            help="Calendar months the pairs of at most 183 days must sample at a pixel for its "
            "seasonal cycle to be fitted (else annual means only, flagged).",
            min=1,
            max=13,
        ),
    ] = 6,
    min_dt_days: MinDtOpt = None,
    max_dt_days: MaxDtOpt = None,
    max_error: MaxErrorOpt = None,
    sensor: SensorOpt = None,
    out: Annotated[
        str, typer.Option("--out", help="Parent folder of seasonal/ (or an fsspec URL: s3://...).")
    ] = ".",
    figures: FiguresOpt = True,
    overwrite: OverwriteOpt = False,
    progress: ProgressOpt = True,
    scheduler: SchedulerOpt = None,
):
    """Maps of mean velocity and seasonal amplitude and phase from the image pairs.

    A per-pixel least-squares fit of annual means plus an annual sinusoid, each pair
    modelled as its span average (ITS_LIVE's composite model). Writes
    OUT/seasonal/<sdate>_<edate>/ with seasonal.nc, COG GeoTIFFs (v0, v_amp, v_phase and
    errors, fit_flag), figures and summary.json. Example: itscube seasonal cube.zarr
    --start 2016 --end 2021
    """
    from itscube.products.seasonal import run_seasonal

    filters = filters_from_options(min_dt_days, max_dt_days, sensor, None, max_error)
    product = run_seasonal(
        cube,
        out=out,
        start=start,
        end=end,
        filters=filters,
        min_months=min_months,
        figures=figures,
        overwrite=overwrite,
        progress=progress_bars(progress),
        scheduler=scheduler,
    )
    s = product.summary
    table = Table(title=f"seasonal cycle in {product.folder}", show_header=False)
    nan = float("nan")
    table.add_row("median mean speed", f"{s['v0'].get('median', nan):.1f} m/yr")
    table.add_row("median amplitude", f"{s['v_amp'].get('median', nan):.1f} m/yr")
    table.add_row("median day of maximum", f"{s['v_phase'].get('median', nan):.0f}")
    table.add_row(
        "pixels fitted / no season / too few pairs",
        " / ".join(str(v) for v in s["pixels"].values()),
    )
    table.add_row("files", str(len(product.files)))
    out_console.print(table)
