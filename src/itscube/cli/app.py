"""The typer application: its options shown readably, errors as one line, the entry point."""

from __future__ import annotations

import functools
import gc
import os
import sys
from collections.abc import Sequence
from typing import Annotated

import typer
from rich.console import Console

from itscube._version import __version__
from itscube.errors import ItscubeError

__all__ = [
    "METAVARS",
    "PARAM_FLAGS",
    "REPEATABLE",
    "app",
    "console",
    "fail",
    "flagged",
    "friendly",
    "load_commands",
    "main",
    "out_console",
    "print_path",
    "progress_bars",
]

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

        help_option._itscube = True  # type: ignore[attr-defined]
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


def fail(message: str, code: int) -> typer.Exit:
    from rich.markup import escape

    console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


PARAM_FLAGS = {
    "points": "--points",
    "sensors": "--sensor",
    "min_valid_percent": "--min-valid",
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
            raise fail(flagged(exc, flags), exc.exit_code) from None
        except KeyboardInterrupt:
            console.print("[yellow]interrupted[/]: run the same command again to resume")
            raise typer.Exit(130) from None
        except (typer.Exit, typer.Abort):
            raise
        except Exception as exc:
            if os.environ.get("ITSCUBE_DEBUG"):
                raise
            raise fail(
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


def progress_bars(enabled: bool):
    """Rich progress bars on stderr for the library, or none."""
    from itscube.progress import RichProgress

    return RichProgress(console) if enabled else None


def _quiet_unraisable(unraisable, _default=sys.unraisablehook) -> None:
    """Drop one harmless message: when a remote read fails, zarr's sibling requests are
    collected in another context ("Token ... was created in a different Context"); an error
    is reported as one line, not followed by that noise."""
    exc = unraisable.exc_value
    if isinstance(exc, ValueError) and "was created in a different Context" in str(exc):
        return
    _default(unraisable)


def load_commands(names: Sequence[str] | None = None) -> typer.Typer:
    """Register the commands ``names`` (default: every one) on :data:`app`, by importing
    their modules from :mod:`itscube.cli.commands`; returns :data:`app`."""
    import importlib

    from itscube.cli import commands

    for name in commands.__all__ if names is None else names:
        importlib.import_module(f"{commands.__name__}.{name}")
    return app


def _named_command(args: Sequence[str]) -> list[str] | None:
    """The command a command line runs, if it names one (``[name]``); otherwise None,
    which loads them all (help lists them, a mistyped name gets suggestions)."""
    from itscube.cli.commands import __all__ as names

    first = next((a for a in args if not a.startswith("-")), None)
    return [first] if first in names else None


def main() -> None:
    """Console-script entry point (it loads only the command it runs: a command's start
    is its own imports, not those of every command)."""
    # figures are written to files, never shown; set without importing matplotlib, so that
    # help, version and argument errors stay fast
    os.environ.setdefault("MPLBACKEND", "Agg")
    sys.unraisablehook = _quiet_unraisable
    # a command builds few cyclic garbage objects but imports a few hundred thousand
    # long-lived ones (xarray, pandas, pyproj, zarr): collect the young generation as
    # usual and the old one rarely, instead of rescanning everything every ~700 objects
    gc.set_threshold(50_000, 50, 100)
    try:
        load_commands(_named_command(sys.argv[1:]))
        app()
    except KeyboardInterrupt:  # pragma: no cover - outside a command
        console.print("[yellow]interrupted[/]")
        sys.exit(130)
    finally:  # the interpreter's last collection would rescan them all (~0.4 s)
        gc.freeze()
