"""``itscube find``."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from itscube.cli.app import app, friendly, out_console, print_path
from itscube.cli.options import (
    BboxOpt,
    BufferOpt,
    CatalogOpt,
    CrsOpt,
    PointOpt,
    PolygonOpt,
    StacOpt,
    area_from_options,
)

__all__ = ["find"]


@app.command()
@friendly
def find(
    point: PointOpt = None,
    bbox: BboxOpt = None,
    polygon: PolygonOpt = None,
    crs: CrsOpt = None,
    buffer: BufferOpt = 0.0,
    catalog: CatalogOpt = None,
    stac: StacOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
    refresh: Annotated[bool, typer.Option("--refresh", help="Fetch the catalog again.")] = False,
):
    """List the ITS_LIVE cubes covering a point, box or polygon.

    Example: itscube find --point -49.7 69.2
    """
    from itscube.io.catalog import find_cubes, find_cubes_stac, load_catalog

    area = area_from_options(point, bbox, polygon, crs, buffer)
    if stac:
        hits = find_cubes_stac(area, stac)
    else:
        hits = find_cubes(area, load_catalog(catalog, refresh=refresh))
    if as_json:
        out_console.print_json(json.dumps([h.to_dict() for h in hits]))
        return
    table = Table(title=f"{len(hits)} cube(s) for {area.label}")
    for col in ("#", "EPSG", "footprint (lon/lat)", "image pairs", "annual"):
        table.add_column(col)
    for i, h in enumerate(hits, 1):
        b = h.footprint.bounds
        table.add_row(
            str(i),
            str(h.epsg),
            f"{b[0]:.2f} {b[1]:.2f} {b[2]:.2f} {b[3]:.2f}",
            "n/a" if h.granule_count is None else str(h.granule_count),
            "listed" if h.composite_url else "derived",
        )
    out_console.print(table)
    for i, h in enumerate(hits, 1):  # URLs whole, one per line, to copy
        print_path(f"{i} {h.name}", h.url("subyearly"))
