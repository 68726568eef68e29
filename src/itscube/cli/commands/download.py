"""``itscube download``."""

from __future__ import annotations

import time
from typing import Annotated, cast

import typer

from itscube._typing import Kind
from itscube.cli.app import app, console, friendly, progress_bars
from itscube.cli.options import (
    BboxOpt,
    BufferOpt,
    CatalogOpt,
    CrsOpt,
    MaxDtOpt,
    MinDtOpt,
    PointOpt,
    PolygonOpt,
    SchedulerOpt,
    StacOpt,
    area_from_options,
    filters_from_options,
    split_names,
)
from itscube.cli.render import download_summary
from itscube.errors import InputError

__all__ = ["download"]


@app.command()
@friendly
def download(
    point: PointOpt = None,
    bbox: BboxOpt = None,
    polygon: PolygonOpt = None,
    crs: CrsOpt = None,
    buffer: BufferOpt = 0.0,
    start: Annotated[str | None, typer.Option("--start", help="First date (YYYY-MM-DD).")] = None,
    end: Annotated[
        str | None, typer.Option("--end", help="Last date, inclusive (YYYY-MM-DD).")
    ] = None,
    kind: Annotated[
        str, typer.Option("--kind", help="subyearly (image pairs) or annual.")
    ] = "subyearly",
    variables: Annotated[
        list[str] | None,
        typer.Option(
            "--variables",
            help="Variables, comma-separated or repeated (default: velocities, errors, metadata).",
        ),
    ] = None,
    min_dt_days: MinDtOpt = None,
    max_dt_days: MaxDtOpt = None,
    sensor: Annotated[
        list[str] | None,
        typer.Option(
            "--sensor",
            help="Keep pairs from these platforms: L8, L9, S1, S2, S2A... (repeat or comma list).",
        ),
    ] = None,
    min_valid: Annotated[
        float | None,
        typer.Option("--min-valid", help="Minimum roi_valid_percentage (notebooks: 40)."),
    ] = None,
    out: Annotated[
        str,
        typer.Option(
            "--out",
            help="Parent folder of the output folder (or s3://bucket/prefix, any fsspec URL).",
        ),
    ] = ".",
    catalog: CatalogOpt = None,
    stac: StacOpt = None,
    url: Annotated[
        list[str] | None,
        typer.Option(
            "--url",
            help="Cube URL(s) to use instead of the catalog: Zarr v2/v3 stores or Icechunk "
            "repositories (s3:// or local).",
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option("--workers", help="Parallel requests per cube (default 64).", min=1, max=1024),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace a different download in the output folder.")
    ] = False,
    keep_cache: Annotated[
        bool, typer.Option("--keep-cache", help="Keep the raw chunk cache after success.")
    ] = False,
    progress: Annotated[
        bool, typer.Option("--progress/--no-progress", help="Show a progress bar.")
    ] = True,
    all_dates: Annotated[
        bool,
        typer.Option(
            "--all-dates",
            help="Download every layer of the cubes (instead of --start/--end); the number "
            "of layers and bytes is printed before the transfer starts.",
        ),
    ] = False,
    out_crs: Annotated[
        str | None,
        typer.Option(
            "--out-crs",
            help="Write one store on a regular grid of this CRS (e.g. EPSG:3338), velocity "
            "vectors turned to its axes: one mosaic across UTM zones and projections.",
            metavar="EPSG:XXXX",
        ),
    ] = None,
    resolution: Annotated[
        float | None,
        typer.Option("--resolution", help="Pixel size with --out-crs (default 120 m).", min=0),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Allow a --resolution finer than 12 m.")
    ] = False,
    scheduler: SchedulerOpt = None,
):
    """Download a space/time subset of ITS_LIVE cubes to a local Zarr store (resumable).

    Example: itscube download --bbox -49.9 69.1 -49.5 69.2 --start 2018-01-01 --end 2020-12-31
    """
    from itscube.io.download import download as run_download

    area = area_from_options(point, bbox, polygon, crs, buffer)
    if all_dates and (start or end):
        raise InputError("--all-dates downloads every layer: give it without --start/--end")
    if not all_dates and (start is None or end is None):
        raise InputError(
            "give --start and --end (YYYY-MM-DD), or --all-dates to download every layer of "
            "the cubes (image-pair cubes hold tens of thousands)"
        )
    filters = filters_from_options(min_dt_days, max_dt_days, sensor, min_valid)
    t = time.perf_counter()
    res = run_download(
        area,
        start=start,
        end=end,
        kind=cast(Kind, kind),
        variables=split_names(variables),
        out=out,
        catalog=catalog,
        urls=url,
        stac=stac,
        filters=filters,
        workers=workers,
        progress=progress_bars(progress),
        overwrite=overwrite,
        keep_cache=keep_cache,
        announce=lambda text: console.print(f"[bold]plan[/]: {text}", soft_wrap=True),
        out_crs=out_crs,
        resolution=resolution,
        force=force,
        scheduler=scheduler,
    )
    download_summary(res, time.perf_counter() - t)
    if len(res.stores) > 1:
        console.print(
            f"[yellow]note[/]: the area spans {len(res.stores)} projections, one store each; "
            "--out-crs EPSG:XXXX gives one mosaic with the vectors turned",
            soft_wrap=True,
        )
