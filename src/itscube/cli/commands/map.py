"""``itscube map``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from itscube.cli.app import app, console, friendly
from itscube.cli.options import CatalogOpt, EndOpt, StacOpt, StartOpt
from itscube.errors import InputError

__all__ = ["map_page"]


@app.command("map")
@friendly
def map_page(
    sources: Annotated[
        list[str] | None,
        typer.Argument(
            help="Cubes (paths or URLs) and product folders to show.", metavar="CUBE|FOLDER"
        ),
    ] = None,
    catalog: CatalogOpt = None,
    stac: StacOpt = None,
    sample: Annotated[
        bool,
        typer.Option("--sample", help="Serve the bundled sample as the archive (offline)."),
    ] = False,
    host: Annotated[
        str,
        typer.Option(
            "--host",
            help="Address to listen on; anything but 127.0.0.1 needs the token printed in the URL.",
        ),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port (0: any free one).", min=0)] = 8765,
    start: StartOpt = None,
    end: EndOpt = None,
    basemap: Annotated[
        str | None,
        typer.Option(
            "--basemap",
            help="An online XYZ basemap, e.g. https://tile.openstreetmap.org/{z}/{x}/{y}.png "
            "(default: none; the page needs no network).",
            metavar="URL_TEMPLATE",
        ),
    ] = None,
    out: Annotated[Path, typer.Option("--out", help="Parent folder of the page's jobs.")] = Path(
        "."
    ),
    no_browser: Annotated[
        bool, typer.Option("--no-browser", help="Print the URL only; open no browser.")
    ] = False,
):
    """A map page: cube footprints, layers of cubes and products, points and their velocity
    series, and downloads, tracks and strain run from the page.

    Serves on 127.0.0.1 and prints the URL; Ctrl-C stops it. Example: itscube map --sample
    """
    from itscube.web import MapServer

    server_sample = None
    if sample:
        from itscube.sample import SampleServer

        server_sample = SampleServer()
        catalog = catalog or server_sample.catalog_url
        sources = [*(sources or []), server_sample.subyearly_url]
    try:
        server = MapServer(
            sources or [], catalog=catalog, stac=stac, host=host, port=port, out=out,
            basemap=basemap, start=start, end=end,
        )  # fmt: skip
    except OSError as exc:
        raise InputError(
            f"--port {port}: cannot listen there ({exc.strerror}); try --port 0"
        ) from None
    print(server.url, flush=True)
    if not no_browser:
        import webbrowser

        webbrowser.open(server.url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        console.print("stopped")
    finally:
        server.httpd.server_close()
        if server_sample is not None:
            server_sample.close()
