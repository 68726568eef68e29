"""The map page (``itscube map``): a local web app over the library.

:class:`MapServer` serves the page and its JSON API; :func:`show_map` starts one in the
background and, in Jupyter, shows the page inline.
"""

from __future__ import annotations

from itscube.web.app import MapServer

__all__ = ["MapServer", "map", "show_map"]


def show_map(sources=(), *, height: int = 600, **options):
    """Start a map page in the background; in Jupyter, show it inline.

    Parameters
    ----------
    sources : cubes and product folders, as ``itscube map``.
    height : height of the inline frame (px).
    **options : as :class:`MapServer` (``catalog``, ``stac``, ``port``, ``basemap``...).

    Returns
    -------
    MapServer
        Running; ``.url`` is its address, ``.close()`` stops it. In a notebook its
        ``_repr_html_`` is the page in a frame.
    """
    server = MapServer(sources, **options).start_background()
    server.height = height
    return server


map = show_map
