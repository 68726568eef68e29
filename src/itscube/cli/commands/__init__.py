"""One module per command; importing them registers each on :data:`itscube.cli.app.app`
(``itscube --help`` lists them alphabetically)."""

from itscube.cli.commands import (
    demo,
    download,
    find,
    image,
    info,
    map,
    qdiv,
    seasonal,
    series,
    strain,
    track,
)

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
