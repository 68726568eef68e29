"""``itscube demo``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from itscube.cli.app import app, friendly, out_console, print_path, progress_bars
from itscube.cli.options import ProgressOpt

__all__ = ["demo"]


@app.command()
@friendly
def demo(
    out: Annotated[Path, typer.Option("--out", help="Folder for all demo outputs.")] = Path(
        "demo_output"
    ),
    progress: ProgressOpt = True,
):
    """Run the main job offline on the bundled synthetic sample.

    The sample is served over a local HTTP server on 127.0.0.1 and downloaded through
    the same code path as a real ITS_LIVE download (catalog -> chunk reads -> local store);
    then strain rates (upscales 2, 4), tracks (a line of points and a displacement grid) and
    flux divergence (Example_Qdiv templates) are computed into OUT/strain, OUT/track and
    OUT/qdiv, with OUT/overview.png.
    """
    from itscube.demo import run_demo

    result = run_demo(out, progress=progress_bars(progress))
    table = Table(title=f"itscube demo finished in {result.seconds:.1f} s (synthetic sample)")
    table.add_column("#")
    table.add_column("product")
    table.add_column("result")
    for i, row in enumerate(result.rows, 1):
        table.add_row(str(i), row.product, row.result)
    out_console.print(table)
    for i, row in enumerate(result.rows, 1):  # whole paths, one per line, to copy
        print_path(f"{i} {row.product}", row.path)
