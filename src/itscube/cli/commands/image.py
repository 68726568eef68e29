"""``itscube image``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from itscube.cli.app import app, friendly, out_console, print_path
from itscube.cli.options import (
    BboxOpt,
    BufferOpt,
    CrsOpt,
    OverwriteOpt,
    PointOpt,
    PolygonOpt,
    area_from_options,
)
from itscube.errors import InputError

__all__ = ["image"]


@app.command()
@friendly
def image(
    cube: Annotated[
        str | None,
        typer.Argument(help="A cube: its area, and its CRS (and grid with --like)."),
    ] = None,
    date: Annotated[str, typer.Option("--date", help="Wanted date (YYYY-MM-DD).")] = "",
    point: PointOpt = None,
    bbox: BboxOpt = None,
    polygon: PolygonOpt = None,
    crs: CrsOpt = None,
    buffer: BufferOpt = 5000.0,
    window_days: Annotated[
        float, typer.Option("--window-days", help="Days either side of --date to search.", min=0)
    ] = 30.0,
    max_cloud: Annotated[
        float,
        typer.Option(
            "--max-cloud",
            help="Most cloud over the area, per cent (0-100, e.g. 20).",
            min=0,
            max=100,
        ),
    ] = 20.0,
    collection: Annotated[
        str,
        typer.Option("--collection", help="sentinel-2-l2a (default) or landsat-c2-l2."),
    ] = "sentinel-2-l2a",
    imagery_stac: Annotated[
        str | None,
        typer.Option(
            "--imagery-stac",
            help="STAC API of the imagery (default Earth Search; 'planetary' for Microsoft "
            "Planetary Computer).",
            metavar="URL",
        ),
    ] = None,
    old_stac: Annotated[
        str | None, typer.Option("--stac", hidden=True, help="Deprecated: --imagery-stac.")
    ] = None,
    like: Annotated[
        bool, typer.Option("--like", help="Resample onto the cube's grid (needs CUBE).")
    ] = False,
    out: Annotated[Path, typer.Option("--out", help="Parent folder of image/.")] = Path("."),
    overwrite: OverwriteOpt = False,
):
    """An optical image (Sentinel-2 or Landsat) of an area near a date, clearest first.

    Writes OUT/image/<collection>_<date>/ with rgb.tif (in the cube's CRS), rgb.png and
    summary.json. Example: itscube image --point -49.6 69.17 --date 2019-07-15
    """
    from itscube.geometry import Area
    from itscube.products.image import run_image

    if not date:
        raise InputError("give --date (YYYY-MM-DD): the image nearest it is taken")
    if old_stac is not None:  # --stac finds cubes in find/download/series: one meaning
        import warnings

        warnings.warn(
            "image --stac is deprecated (--stac finds cubes elsewhere); use --imagery-stac",
            FutureWarning,
            stacklevel=2,
        )
        imagery_stac = imagery_stac or old_stac
    if cube is not None and any(o is not None for o in (point, bbox, polygon)):
        raise InputError("give a CUBE or an area (--point, --bbox, --polygon), not both")
    if like and cube is None:
        raise InputError("--like needs a CUBE to take the grid from")
    if cube is not None:
        import shapely.geometry as sg

        from itscube.grid import grid_bounds
        from itscube.io.cube import open_cube

        ds = open_cube(cube)
        area = Area(sg.box(*grid_bounds(ds.x.values, ds.y.values)), ds.rio.crs, "cube")
    else:
        area = area_from_options(point, bbox, polygon, crs, buffer)
    product = run_image(
        area,
        date,
        out=out,
        window_days=window_days,
        max_cloud=max_cloud,
        collection=collection,
        stac=imagery_stac,
        like=cube if like else None,
        overwrite=overwrite,
    )
    s = product.summary
    cloud = s["area_cloud_percent"]
    out_console.print(
        f"{s['scene']} ({s['datetime'][:10]}), "
        + (f"{cloud:.0f}% cloud over the area" if cloud is not None else "")
    )
    out_console.print(s["licence"], highlight=False)
    print_path("folder", product.folder)
