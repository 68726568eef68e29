"""The ``itscube`` command line, a thin layer over the Python API.

Layout: :mod:`~itscube.cli.app` (the typer application, one-line errors, the entry point),
:mod:`~itscube.cli.options` (option blocks declared once and parsed into the library's
objects), :mod:`~itscube.cli.render` (tables) and one module per command in
:mod:`itscube.cli.commands`, which registers itself on the application when imported.

``itscube.cli.app`` is the typer application with every command registered (imported on
first use); the entry point :func:`main` imports only the command it runs.
"""

from __future__ import annotations

from typing import Any

from itscube.cli.app import PARAM_FLAGS, flagged, main

__all__ = ["PARAM_FLAGS", "app", "flagged", "main"]

# importing the submodule ``itscube.cli.app`` bound its name here; the name is the
# application's (as before), given by __getattr__ with every command registered
globals().pop("app", None)


def __getattr__(name: str) -> Any:
    if name == "app":
        from itscube.cli.app import load_commands

        globals()["app"] = application = load_commands()
        return application
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
