"""One module per command; importing one registers it on :data:`itscube.cli.app.app`.

Nothing is imported here: :func:`itscube.cli.app.load_commands` imports the command a
command line names (its start is then that command's imports only), or all of them, in
this order, for ``itscube --help`` (which lists them alphabetically), a mistyped name
and :data:`itscube.cli.app`.
"""

__all__ = [
    "demo",
    "download",
    "find",
    "image",
    "info",
    "map",
    "qdiv",
    "seasonal",
    "series",
    "strain",
    "track",
]
