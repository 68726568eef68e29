"""The ``itscube`` command line, a thin layer over the Python API.

Layout: :mod:`~itscube.cli.app` (the typer application, one-line errors, the entry point),
:mod:`~itscube.cli.options` (option blocks declared once and parsed into the library's
objects), :mod:`~itscube.cli.render` (tables) and one module per command in
:mod:`itscube.cli.commands`, which registers itself on the application when imported.
"""

from __future__ import annotations

from itscube.cli import commands  # noqa: F401  (registers every command on ``app``)
from itscube.cli.app import PARAM_FLAGS, app, flagged, main

__all__ = ["PARAM_FLAGS", "app", "flagged", "main"]
