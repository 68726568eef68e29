"""The ``itscube`` command line (a thin layer over the Python API)."""

from __future__ import annotations

import functools
import gc
import json
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from itscube._version import __version__
from itscube.errors import InputError, ItscubeError

__all__ = [
    "app",
    "main",
]

if TYPE_CHECKING:  # pragma: no cover
    from itscube.io.area import Area


METAVARS = {
    "--start": "DATE",
    "--end": "DATE",
    "--point": "LON LAT",
    "--bbox": "W S E N",
    "--line": "LON0 LAT0 LON1 LAT1 N",
    "--profile": "X0 Y0 X1 Y1",
    "--points": "FILE",
    "--profile-file": "FILE",
    "--polygon": "FILE",
    "--seeds": "FILE",
    "--thickness": "FILE",
    "--thickness-error": "FILE",
    "--boundary": "FILE",
    "--out": "FOLDER",
    "--catalog": "URL|PATH",
    "--stac": "URL",
    "--url": "URL",
    "--crs": "EPSG:XXXX",
    "--seeds-crs": "EPSG:XXXX",
    "--thickness-crs": "EPSG:XXXX",
    "--boundary-crs": "EPSG:XXXX",
    "--upscale": "K",
    "--sensor": "NAMES",
    "--variables": "NAMES",
    "--scheduler": "ADDRESS",
}
"""What each option's value looks like in ``--help`` (the rest: NUMBER, N, TEXT)."""


@functools.cache
def _choices() -> dict:
    """Options whose values are a fixed set, shown as ``[a|b|c]`` in ``--help``: built from
    the ``Literal`` types of :mod:`itscube._typing` the library checks them against
    (imported on first use: ``--help`` of other commands stays fast)."""
    from itscube import _typing as _t

    return {
        ("download", "--kind"): _t.KINDS,
        ("find", "--kind"): _t.KINDS,
        ("series", "--kind"): _t.KINDS_OR_BOTH,
        ("series", "--interp"): _t.INTERPOLATIONS,
        ("strain", "--method"): _t.STRAIN_METHODS,
        ("track", "--method"): _t.ADVECTION_METHODS,
        ("qdiv", "--scheme"): _t.SCHEMES,
        ("*", "--estimator"): _t.ESTIMATORS,
        ("*", "--period"): (*_t.PERIOD_NAMES, "FREQ"),
    }


def _choice_metavar(command_name: str | None, names) -> str | None:
    table = _choices()
    for n in names:
        choices = table.get((command_name, n)) or table.get(("*", n))
        if choices:
            return "[" + "|".join(choices) + "]"
    return None


def _readable_metavars(command) -> None:
    """Metavars as a user reads them (``DATE``, ``X Y``), not Python types (``<str>``)."""
    original = getattr(command, "get_help_option", None)
    if original is not None and not getattr(original, "_itscube", False):

        def help_option(ctx, original=original):
            option = original(ctx)
            if option is not None:
                option.metavar = " "
            return option

        help_option._itscube = True
        command.get_help_option = help_option
    for param in getattr(command, "params", []):
        names = getattr(param, "opts", [])
        if getattr(param, "param_type_name", "") == "argument":
            param.metavar = str(param.name).upper()
            param.display_type_rich = lambda ctx: ""  # "CUBE", not "CUBE <str>"
            continue
        if getattr(param, "is_flag", False) or getattr(param, "count", False):
            param.metavar = " "
            continue
        named = _choice_metavar(getattr(command, "name", None), names) or next(
            (METAVARS[n] for n in names if n in METAVARS), None
        )
        if named:
            param.metavar = named
            continue
        kind = getattr(getattr(param, "type", None), "name", None)
        if kind is None and callable(getattr(param, "bare_type", None)):
            bare = param.bare_type()  # typer's vendored click
            kind = getattr(bare, "__name__", None) or str(bare)
        kind = str(kind).lower()
        param.metavar = (
            "NUMBER"
            if "float" in kind
            else "N"
            if "int" in kind
            else ("PATH" if "path" in kind else "TEXT")
        )


REPEATABLE = {"series point"}
"""Pair options that may be given several times. Typer cannot declare a list of pairs, so
:func:`_fold_pairs` joins each ``--point X Y`` into one ``"X Y"`` value before parsing."""


def _fold_pairs(args: list[str]) -> list[str]:
    """``series ... --point X Y --point X Y`` as ``--point "X Y"`` values (see REPEATABLE)."""
    if not args or f"{args[0]} point" not in REPEATABLE:
        return args
    out, i = [], 0
    while i < len(args):
        if args[i] == "--point" and i + 2 < len(args):
            out += ["--point", f"{args[i + 1]} {args[i + 2]}"]
            i += 3
        else:
            out.append(args[i])
            i += 1
    return out


class _OneLineErrors(typer.core.TyperGroup):
    """Command-line mistakes (unknown option, bad value, extra argument) as one line
    ``error: ...`` with exit code 2, like every other itscube error, not a box; and
    ``--help`` with readable value names."""

    def get_command(self, ctx, cmd_name):
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            _readable_metavars(command)
            for param in getattr(command, "params", []):
                if f"{cmd_name} {param.name}" in REPEATABLE:
                    param.metavar = "LON LAT"
        return command

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        args = _fold_pairs(list(sys.argv[1:] if args is None else args))
        try:
            rv = super().main(
                args=args,
                prog_name=prog_name,
                complete_var=complete_var,
                standalone_mode=False,
                **extra,
            )
        except Exception as exc:
            # click's exceptions (typer vendors its own click in recent releases: matched
            # by shape, not class)
            name = type(exc).__name__
            if not standalone_mode or not (hasattr(exc, "format_message") or name == "Abort"):
                raise
            if name == "NoArgsIsHelpError":
                ctx = getattr(exc, "ctx", None)
                typer.echo(ctx.get_help() if ctx is not None else exc.format_message())
                sys.exit(getattr(exc, "exit_code", 2))
            if name == "Abort":
                typer.echo("error: aborted", err=True)
                sys.exit(1)
            ctx = getattr(exc, "ctx", None)
            where = f" (see: {ctx.command_path} --help)" if ctx is not None else ""
            message = " ".join(exc.format_message().split())
            typer.echo(f"error: {message}{where}", err=True)
            sys.exit(getattr(exc, "exit_code", 2))
        if standalone_mode:
            sys.exit(rv if isinstance(rv, int) else 0)
        return rv


app = typer.Typer(
    cls=_OneLineErrors,
    name="itscube",
    help="NASA ITS_LIVE glacier velocity datacubes: find, download, track, strain, flux.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # plain (click) help: rich-formatted help imports ~0.2 s of markdown rendering before
    # the first line is shown (benchmarks/bench_cli_startup.py)
    rich_markup_mode=None,
)
console = Console(stderr=True, log_path=False)
out_console = Console()


def _fail(message: str, code: int) -> typer.Exit:
    from rich.markup import escape

    console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


PARAM_FLAGS = {
    "upscales": "--upscale",
    "regular": "--regularise",
    "with_climatology": "--climatology",
    "points": "--points",
    "sensors": "--sensor",
    "min_valid_percent": "--min-valid",
    "grid_step": "--grid",
    "urls": "--url",
}
"""Python parameter names whose flag is not ``--`` + the name with dashes."""


def _flags_of(fn) -> dict[str, str]:
    """Python parameter name -> the command's flag, from its typer options."""
    import typing

    flags = dict(PARAM_FLAGS)
    try:
        hints = typing.get_type_hints(fn, include_extras=True)
    except Exception:  # pragma: no cover - unresolvable annotations
        return flags
    for name, hint in hints.items():
        for meta in getattr(hint, "__metadata__", ()):
            decls = [d for d in getattr(meta, "param_decls", ()) or () if d.startswith("--")]
            if decls:
                flags[name] = decls[0].split("/")[0]
    return flags


def flagged(exc: ItscubeError, flags: dict[str, str]) -> str:
    """The message of ``exc`` with each Python parameter it names shown as its flag."""
    import re

    message = str(exc)
    for param in getattr(exc, "params", ()):
        flag = flags.get(param, "--" + param.replace("_", "-"))
        message = re.sub(rf"(?<![\w-]){re.escape(param)}(?![\w-])", flag, message)
    return message


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings as one ``warning: ...`` line on stderr, not Python's two-line form with the
    source file and line (``warnings.showwarning`` of the command line)."""
    from rich.markup import escape

    text = " ".join(str(message).split())
    console.print(f"[yellow]warning[/]: {escape(text)}", soft_wrap=True, highlight=False)


def friendly(fn):
    """Turn itscube errors into one-line messages (with flags, not Python parameter names)
    and non-zero exit codes."""
    flags = None

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        nonlocal flags
        import warnings

        try:
            with warnings.catch_warnings():
                warnings.showwarning = _one_line_warning
                return fn(*args, **kwargs)
        except ItscubeError as exc:
            flags = flags if flags is not None else _flags_of(fn)
            raise _fail(flagged(exc, flags), exc.exit_code) from None
        except KeyboardInterrupt:
            console.print("[yellow]interrupted[/]: run the same command again to resume")
            raise typer.Exit(130) from None
        except (typer.Exit, typer.Abort):
            raise
        except Exception as exc:
            if os.environ.get("ITSCUBE_DEBUG"):
                raise
            raise _fail(
                f"unexpected {type(exc).__name__}: {exc} (set ITSCUBE_DEBUG=1 for details)", 1
            ) from None

    return wrapper


def print_path(label: str, path) -> None:
    """A path a user may copy: on its own line, never wrapped or cut."""
    out_console.print(f"{label}:")
    out_console.print(str(path), soft_wrap=True, highlight=False, markup=False)


def _version(value: bool):
    if value:
        out_console.print(f"itscube {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
):
    """NASA ITS_LIVE glacier velocity datacubes."""


# ---------------------------------------------------------------- shared options

PointOpt = Annotated[
    tuple[float, float] | None,
    typer.Option("--point", help="A point: LON LAT (or X Y with --crs).", metavar="LON LAT"),
]
BboxOpt = Annotated[
    tuple[float, float, float, float] | None,
    typer.Option(
        "--bbox", help="A box: W S E N in lon/lat (or metres with --crs).", metavar="W S E N"
    ),
]
PolygonOpt = Annotated[
    Path | None,
    typer.Option(
        "--polygon", help="A polygon: GeoJSON file, or CSV of vertices (x,y or lon,lat columns)."
    ),
]
CrsOpt = Annotated[
    str | None,
    typer.Option("--crs", help="CRS of the coordinates given (e.g. EPSG:3413); default lon/lat."),
]
BufferOpt = Annotated[
    float, typer.Option("--buffer", help="Half-width (m) of the square around --point.", min=0)
]
CatalogOpt = Annotated[
    str | None,
    typer.Option(
        "--catalog",
        help="Catalog URL or path: catalog_v02.json or the chunk-aligned (v2.2) catalog "
        "(default: ITSCUBE_CATALOG or the official ITS_LIVE catalog).",
    ),
]
MinDtOpt = Annotated[
    float | None,
    typer.Option("--min-dt-days", help="Minimum image-pair separation (days), e.g. 10."),
]
MaxDtOpt = Annotated[
    float | None,
    typer.Option("--max-dt-days", help="Maximum image-pair separation (days), e.g. 120."),
]
StacOpt = Annotated[
    str | None,
    typer.Option(
        "--stac",
        help="Find cubes through a STAC API instead of a catalog (collection itslive-cubes); "
        "'itslive' = https://stac.itslive.cloud.",
        metavar="URL",
    ),
]


MaxErrorOpt = Annotated[
    float | None,
    typer.Option(
        "--max-error", help="Drop data whose velocity error is above this (m/yr), e.g. 50."
    ),
]
SensorOpt = Annotated[
    list[str] | None,
    typer.Option("--sensor", help="Platforms to keep: L (Landsat), L8, S1, S2, S2A... e.g. L8,S2."),
]
OverwriteOpt = Annotated[bool, typer.Option("--overwrite", help="Replace existing output folders.")]
ProgressOpt = Annotated[
    bool, typer.Option("--progress/--no-progress", help="Show progress bars (on stderr).")
]
GapRadiusOpt = Annotated[
    float | None,
    typer.Option(
        "--gap-radius",
        help="Fill gaps within this many pixels of data first (harmonic inpainting), e.g. 3.",
        min=0,
    ),
]
TrackGapRadiusOpt = Annotated[
    float,
    typer.Option(
        "--gap-radius",
        help="Fill gaps within this many pixels of data (harmonic inpainting; 0 = off).",
        min=0,
    ),
]


BackgroundOpt = Annotated[
    str | None,
    typer.Option(
        "--background",
        help="Draw the figures over an image: auto (the clearest Sentinel-2 scene nearest the "
        "start date, from --background-stac) or an RGB GeoTIFF.",
        metavar="auto|FILE",
    ),
]
BackgroundStacOpt = Annotated[
    str | None,
    typer.Option(
        "--background-stac",
        help="STAC API for --background auto (default Earth Search; 'planetary' for "
        "Microsoft Planetary Computer).",
        metavar="URL",
    ),
]


def _progress(enabled: bool):
    """Rich progress bars on stderr for the library, or none."""
    from itscube.progress import RichProgress

    return RichProgress(console) if enabled else None


def area_from_options(point, bbox, polygon, crs, buffer) -> Area:
    from itscube.io.area import bbox_area, point_area, polygon_area

    given = [o is not None for o in (point, bbox, polygon)]
    if sum(given) != 1:
        raise InputError("give exactly one of --point, --bbox or --polygon")
    if point is not None:
        return point_area(point[0], point[1], crs, buffer)
    if bbox is not None:
        return bbox_area(*bbox, crs=crs)
    return polygon_area(polygon, crs)


# ---------------------------------------------------------------- find


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


# ---------------------------------------------------------------- download


def _split(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    return [v.strip() for item in values for v in item.split(",") if v.strip()]


SchedulerOpt = Annotated[
    str | None,
    typer.Option(
        "--scheduler",
        help="Run on a dask.distributed cluster: its scheduler address (default: "
        "ITSCUBE_SCHEDULER or DASK_SCHEDULER_ADDRESS; none: this machine).",
    ),
]


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
    from itscube.window import Filters

    area = area_from_options(point, bbox, polygon, crs, buffer)
    if all_dates and (start or end):
        raise InputError("--all-dates downloads every layer: give it without --start/--end")
    if not all_dates and (start is None or end is None):
        raise InputError(
            "give --start and --end (YYYY-MM-DD), or --all-dates to download every layer of "
            "the cubes (image-pair cubes hold tens of thousands)"
        )
    filters = Filters(min_dt_days, max_dt_days, tuple(_split(sensor) or ()), min_valid)
    t = time.perf_counter()
    res = run_download(
        area,
        start=start,
        end=end,
        kind=kind,
        variables=_split(variables),
        out=out,
        catalog=catalog,
        urls=url,
        stac=stac,
        filters=filters,
        workers=workers,
        progress=_progress(progress),
        overwrite=overwrite,
        keep_cache=keep_cache,
        announce=lambda text: console.print(f"[bold]plan[/]: {text}", soft_wrap=True),
        out_crs=out_crs,
        resolution=resolution,
        force=force,
        scheduler=scheduler,
    )
    _download_summary(res, time.perf_counter() - t)
    if len(res.stores) > 1:
        console.print(
            f"[yellow]note[/]: the area spans {len(res.stores)} projections, one store each; "
            "--out-crs EPSG:XXXX gives one mosaic with the vectors turned",
            soft_wrap=True,
        )


def _download_summary(res, seconds: float) -> None:
    if res.already_complete:
        out_console.print(f"[green]already complete[/]: {res.folder}")
        return
    table = Table(title="download complete", show_header=False)
    table.add_row("folder", str(res.folder))
    for store, n in zip(res.stores, res.layers, strict=True):
        table.add_row("store", f"{store.name} ({n} time steps)")
    table.add_row("source chunks", f"{res.chunks} needed")
    cached = f", {res.chunks_cached} served by the local chunk cache" if res.chunks_cached else ""
    table.add_row("requests", f"{res.chunks_fetched} sent{cached}")
    table.add_row("blocks", f"{res.blocks} of {res.blocks_total} assembled now")
    table.add_row("transferred", f"{res.bytes_fetched / 1e6:.2f} MB in {seconds:.1f} s")
    table.add_row("provenance", str(res.provenance))
    out_console.print(table)
    for note in res.notes:
        out_console.print(f"[yellow]note[/]: {note}")


# ---------------------------------------------------------------- info


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


# ---------------------------------------------------------------- strain


def _upscales(ctx: typer.Context, values: list[str] | None) -> list[int]:
    """``--upscale 1 2 4``, ``--upscale 1,2,4`` or repeated ``--upscale``: whole pixels."""
    tokens = [t for v in (values or ["1"]) for t in v.replace(",", " ").split()]
    tokens += list(ctx.args)  # the values after the first one of ``--upscale 1 2 4``
    out = []
    for t in tokens:
        try:
            out.append(int(t))
        except ValueError:
            raise InputError(
                f"--upscale takes whole numbers of pixels (e.g. --upscale 1 2 4); got {t!r}"
            ) from None
    return out


StartOpt = Annotated[str | None, typer.Option("--start", help="First date (YYYY-MM-DD).")]
EndOpt = Annotated[str | None, typer.Option("--end", help="Last date, inclusive (YYYY-MM-DD).")]
PeriodOpt = Annotated[
    str,
    typer.Option(
        "--period",
        help="Average velocities over: all (the window), year, season (DJF/MAM/JJA/SON), "
        "month, or a pandas frequency such as 6MS.",
    ),
]
EstimatorOpt = Annotated[
    str,
    typer.Option(
        "--estimator",
        help="Period means from: auto (the span-aware fit of annual means and seasonal cycle "
        "where the layers are image pairs), fit, or pair-mean (the inverse-variance mean of "
        "the layers in each period; biased toward summer where speed peaks then).",
    ),
]
ErrorOffsetOpt = Annotated[
    float,
    typer.Option(
        "--error-offset",
        help="Error model: share of each pair's velocity error that is one offset over the "
        "whole map (0..1; README, Uncertainties).",
        min=0.0,
        max=1.0,
    ),
]
ErrorCorrelationOpt = Annotated[
    float,
    typer.Option(
        "--error-correlation",
        help="Error model: correlation length of the velocity pixel noise (m; about the "
        "feature-tracking chip; 0 = independent pixels).",
        min=0.0,
    ),
]
FiguresOpt = Annotated[bool, typer.Option("--figures/--no-figures", help="Write PNG figures.")]


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
    from itscube.window import Filters

    ks = _upscales(ctx, upscale)
    filters = Filters(min_dt_days, max_dt_days, tuple(_split(sensor) or ()), None, max_error)
    products = run_strain(
        cube,
        upscales=ks,
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
        progress=_progress(progress),
        scheduler=scheduler,
    )
    _products_table("strain rates", products)


def _products_table(title: str, products) -> None:
    table = Table(title=title)
    table.add_column("folder", overflow="fold")
    table.add_column("files")
    table.add_column("highlights", overflow="fold")
    for p in products:
        per = p.summary.get("periods", [{}])[0]
        eff = per.get("effective", {})
        note = f"median effective {eff['median']:.3g} yr-1" if "median" in eff else ""
        table.add_row(str(p.folder), str(len(p.files)), note)
    out_console.print(table)


# ---------------------------------------------------------------- qdiv


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
        upscales=_upscales(ctx, upscale),
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
        progress=_progress(progress),
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


# ---------------------------------------------------------------- track


def _seeds_from_options(seeds, point, line, grid, crs):
    """The seeds and their CRS: ``--point``/``--line`` are LON LAT unless ``--crs`` (None:
    the cube's CRS, the deprecated form of track's old ``--point X Y``)."""
    given = [o is not None for o in (seeds, point, line)]
    if sum(given) > 1 or (sum(given) == 0 and grid is None):
        raise InputError(
            "give exactly one of --seeds, --point or --line, and/or --grid for a displacement map"
        )
    if point is not None:
        return [list(point)], _pair_crs([point], crs, "--point LON LAT")
    if line is not None:
        x0, y0, x1, y1, n = line
        if int(n) != n or n < 2:
            raise InputError(f"--line needs N >= 2 points as its last value; got {n}")
        crs = _pair_crs([(x0, y0), (x1, y1)], crs, "--line LON0 LAT0 LON1 LAT1 N")
        if crs == "EPSG:4326":  # evenly spaced along the geodesic
            import pyproj

            mid = pyproj.Geod(ellps="WGS84").npts(x0, y0, x1, y1, int(n) - 2)
            return [[x0, y0], *[list(p) for p in mid], [x1, y1]], crs
        t = [i / (int(n) - 1) for i in range(int(n))]
        return [[x0 + (x1 - x0) * f, y0 + (y1 - y0) * f] for f in t], crs
    if seeds is not None:
        if not seeds.is_file():
            raise InputError(f"--seeds {seeds}: file not found")
        return seeds, crs
    return None, crs


def _pair_crs(pairs, crs: str | None, form: str) -> str | None:
    """``crs`` if given; lon/lat when every pair reads as degrees; else None (metres in the
    cube's CRS: the form before 0.9, kept for one release with a deprecation warning)."""
    if crs is not None:
        return crs
    if all(abs(a) <= 180 and abs(b) <= 90 for a, b in pairs):
        return "EPSG:4326"
    import warnings

    warnings.warn(
        f"coordinates in metres without --crs are taken in the cube's CRS; this form is "
        f"deprecated and will be removed: give {form}, or add --crs EPSG:XXXX",
        FutureWarning,
        stacklevel=2,
    )
    return None


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
    grid: Annotated[
        int | None,
        typer.Option(
            "--grid",
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
    composite: Annotated[
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

    Writes OUT/track/<sdate>_<edate>/ with GeoPackage, CSV, NetCDF, GeoTIFFs (--grid),
    figures and summary.json. Example: itscube track cube.zarr --point -49.6 69.17 --start
    2018-01-01 --end 2020-12-31
    """
    from itscube.products.track import run_track
    from itscube.window import Filters

    seed_input, seeds_crs = _seeds_from_options(seeds, point, line, grid, seeds_crs)
    filters = Filters(min_dt_days, max_dt_days, tuple(_split(sensor) or ()), None, max_error)
    product = run_track(
        cube,
        seeds=seed_input,
        grid_step=grid,
        start=start,
        end=end,
        out=out,
        dt_days=dt_days,
        method=method,
        backward=backward,
        composite=composite,
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


# ---------------------------------------------------------------- seasonal


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
    from itscube.window import Filters

    filters = Filters(min_dt_days, max_dt_days, tuple(_split(sensor) or ()), None, max_error)
    product = run_seasonal(
        cube,
        out=out,
        start=start,
        end=end,
        filters=filters,
        min_months=min_months,
        figures=figures,
        overwrite=overwrite,
        progress=_progress(progress),
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


# ---------------------------------------------------------------- image


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
    from itscube.io.area import Area
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


# ---------------------------------------------------------------- series


def _targets(point, points, profile, profile_file, spacing, polygon, crs):
    from itscube.series import (
        line_from_file,
        point_targets,
        points_from_file,
        polygon_target,
        profile_targets,
    )

    given = [bool(point), points is not None, profile is not None, profile_file is not None]
    given.append(polygon is not None)
    if sum(given) != 1:
        raise InputError(
            "give exactly one of --point (repeatable), --points, --profile, --profile-file or "
            "--polygon"
        )
    if point:
        pairs = []
        for text in point:
            try:
                x, y = (float(v) for v in text.split())
            except ValueError:
                raise InputError(f"--point {text!r}: give two numbers, LON LAT") from None
            pairs.append((x, y))
        return point_targets(pairs, crs)
    if points is not None:
        return points_from_file(points, crs)
    if profile is not None:
        return profile_targets(*profile, spacing_m=spacing, crs=crs)
    if profile_file is not None:
        return line_from_file(profile_file, spacing, crs)
    return polygon_target(polygon, crs)


@app.command()
@friendly
def series(
    cube: Annotated[
        str | None,
        typer.Argument(help="A cube (path or URL); default: the archive, through the catalog."),
    ] = None,
    point: Annotated[
        list[str] | None,
        typer.Option("--point", help="A point: LON LAT (or X Y with --crs); repeatable."),
    ] = None,
    points: Annotated[
        Path | None,
        typer.Option("--points", help="CSV (x,y or lon,lat; optional id) or GeoJSON points."),
    ] = None,
    profile: Annotated[
        tuple[float, float, float, float] | None,
        typer.Option("--profile", help="A transect X0 Y0 X1 Y1 (lon/lat, or metres with --crs)."),
    ] = None,
    profile_file: Annotated[
        Path | None,
        typer.Option("--profile-file", help="A GeoJSON LineString (a flowline) to sample along."),
    ] = None,
    spacing: Annotated[
        float | None,
        typer.Option("--spacing", help="Metres between profile samples (default 120, a pixel)."),
    ] = None,
    polygon: PolygonOpt = None,
    crs: CrsOpt = None,
    kind: Annotated[
        str | None,
        typer.Option(
            "--kind",
            help="subyearly (image pairs), annual or both (default: the CUBE's kind, or "
            "subyearly from the archive).",
        ),
    ] = None,
    interp: Annotated[
        str, typer.Option("--interp", help="nearest (default) or bilinear.")
    ] = "nearest",
    buffer: Annotated[
        float,
        typer.Option(
            "--buffer", help="Average the pixels within this radius (m), e.g. 300.", min=0
        ),
    ] = 0.0,
    regularise: Annotated[
        str | None,
        typer.Option(
            "--regularise",
            help="Regular series of means per bin (1MS, QS or YS), by --estimator.",
        ),
    ] = None,
    estimator: EstimatorOpt = "auto",
    climatology: Annotated[
        bool, typer.Option("--climatology", help="Also the mean annual cycle, by month.")
    ] = False,
    start: StartOpt = None,
    end: EndOpt = None,
    min_dt_days: MinDtOpt = None,
    max_dt_days: MaxDtOpt = None,
    sensor: SensorOpt = None,
    min_valid: Annotated[
        float | None,
        typer.Option("--min-valid", help="Minimum roi_valid_percentage (notebooks: 40)."),
    ] = None,
    max_error: MaxErrorOpt = None,
    catalog: CatalogOpt = None,
    stac: StacOpt = None,
    out: Annotated[
        str, typer.Option("--out", help="Parent folder of series/ (or an fsspec URL: s3://...).")
    ] = ".",
    figures: FiguresOpt = True,
    overwrite: OverwriteOpt = False,
    progress: ProgressOpt = True,
    scheduler: SchedulerOpt = None,
):
    """Velocity time series at points, along a profile or over a polygon, from a cube or
    straight from the archive (only the chunks holding the pixels are read).

    Writes OUT/series/<name>_<sdate>_<edate>/ with series.csv, series.nc, series.parquet,
    figures and summary.json. Example: itscube series --point -49.6 69.17 --start 2018
    """
    from itscube.products.series import run_series
    from itscube.window import Filters

    targets = _targets(point, points, profile, profile_file, spacing, polygon, crs)
    filters = Filters(min_dt_days, max_dt_days, tuple(_split(sensor) or ()), min_valid, max_error)
    product = run_series(
        targets,
        cube,
        out=out,
        kind=kind,
        start=start,
        end=end,
        filters=filters,
        interp=interp,
        buffer=buffer,
        regular=regularise,
        estimator=estimator,
        with_climatology=climatology,
        catalog=catalog,
        stac=stac,
        figures=figures,
        overwrite=overwrite,
        progress=_progress(progress),
        scheduler=scheduler,
    )
    s = product.summary
    out_console.print(
        f"{s['points']} point(s), {s['layers']} layers ({s['kind']}, {s['interp']}) from "
        f"{len(s['cubes'])} cube(s)"
    )
    print_path("folder", product.folder)


# ---------------------------------------------------------------- demo


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

    result = run_demo(out, progress=_progress(progress))
    table = Table(title=f"itscube demo finished in {result.seconds:.1f} s (synthetic sample)")
    table.add_column("#")
    table.add_column("product")
    table.add_column("result")
    for i, row in enumerate(result.rows, 1):
        table.add_row(str(i), row.product, row.result)
    out_console.print(table)
    for i, row in enumerate(result.rows, 1):  # whole paths, one per line, to copy
        print_path(f"{i} {row.product}", row.path)


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


def _quiet_unraisable(unraisable, _default=sys.unraisablehook) -> None:
    """Drop one harmless message: when a remote read fails, zarr's sibling requests are
    collected in another context ("Token ... was created in a different Context"); an error
    is reported as one line, not followed by that noise."""
    exc = unraisable.exc_value
    if isinstance(exc, ValueError) and "was created in a different Context" in str(exc):
        return
    _default(unraisable)


def main() -> None:
    """Console-script entry point."""
    # figures are written to files, never shown; set without importing matplotlib, so that
    # help, version and argument errors stay fast
    os.environ.setdefault("MPLBACKEND", "Agg")
    sys.unraisablehook = _quiet_unraisable
    # a command builds few cyclic garbage objects but imports a few hundred thousand
    # long-lived ones (xarray, pandas, pyproj, zarr): collect the young generation as
    # usual and the old one rarely, instead of rescanning everything every ~700 objects
    gc.set_threshold(50_000, 50, 100)
    try:
        app()
    except KeyboardInterrupt:  # pragma: no cover - outside a command
        console.print("[yellow]interrupted[/]")
        sys.exit(130)
    finally:  # the interpreter's last collection would rescan them all (~0.4 s)
        gc.freeze()


if __name__ == "__main__":  # pragma: no cover
    main()
