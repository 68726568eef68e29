"""``itscube info``."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from itscube.cli.app import app, friendly, out_console

__all__ = ["info"]


@app.command()
@friendly
def info(
    cube: Annotated[str, typer.Argument(help="Cube path or URL (Zarr or NetCDF).")],
    start: Annotated[str | None, typer.Option("--start")] = None,
    end: Annotated[str | None, typer.Option("--end")] = None,
):
    """Summarise a cube: kind, size, time range, CRS and variables."""
    from itscube.io.cube import open_cube, time_dim

    ds = open_cube(cube, start=start, end=end)
    tdim = time_dim(ds)
    t = ds[tdim].values
    table = Table(title=str(cube), show_header=False)
    table.add_row("kind", ds.attrs["itscube_kind"])
    table.add_row("CRS", str(ds.rio.crs))
    table.add_row(
        "grid",
        f"{ds.sizes['x']} x {ds.sizes['y']} pixels of {abs(float(ds.x[1] - ds.x[0])):.0f} m"
        if ds.sizes["x"] > 1
        else "1 pixel",
    )
    table.add_row("x range (m)", f"{float(ds.x.min()):.1f} .. {float(ds.x.max()):.1f}")
    table.add_row(
        "y range (m)",
        f"{float(ds.y.max()):.1f} .. {float(ds.y.min()):.1f} (descending)"
        if ds.sizes["y"] > 1 and ds.y[0] > ds.y[-1]
        else f"{float(ds.y.min()):.1f} .. {float(ds.y.max()):.1f}",
    )
    table.add_row(
        tdim, f"{len(t)} steps, {str(t.min())[:10]} .. {str(t.max())[:10]}" if len(t) else "0 steps"
    )
    table.add_row("variables", ", ".join(sorted(map(str, ds.data_vars))))
    out_console.print(table)
