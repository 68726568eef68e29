"""itscube: NASA ITS_LIVE glacier velocity datacubes — download, tracking, strain and flux.

Quick start
-----------
>>> import itscube
>>> area = itscube.bbox_area(-49.9, 69.1, -49.5, 69.2)            # doctest: +SKIP
>>> result = itscube.download(area, start="2018-01-01", end="2020-12-31")  # doctest: +SKIP
>>> ds = itscube.open_cube(result.stores[0])                     # doctest: +SKIP
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("itscube")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

from .area import Area, bbox_area, point_area, polygon_area
from .catalog import Catalog, CubeEntry, find_cubes, load_catalog
from .cube import open_cube
from .download import DownloadResult, download
from .errors import (
    CatalogError,
    CubeFormatError,
    CubeNotFoundError,
    DownloadError,
    EmptySelectionError,
    InputError,
    InsufficientSpaceError,
    ItscubeError,
    MissingCRSError,
    OutputExistsError,
)
from .flux import boundary_flux, flux_divergence, read_boundary, read_thickness
from .strain import strain_rates
from .temporal import Filters, period_mean, select_layers
from .track import track

__all__ = [
    "Area",
    "Catalog",
    "CatalogError",
    "CubeEntry",
    "CubeFormatError",
    "CubeNotFoundError",
    "DownloadError",
    "DownloadResult",
    "EmptySelectionError",
    "Filters",
    "InputError",
    "InsufficientSpaceError",
    "ItscubeError",
    "MissingCRSError",
    "OutputExistsError",
    "__version__",
    "bbox_area",
    "boundary_flux",
    "download",
    "find_cubes",
    "flux_divergence",
    "load_catalog",
    "open_cube",
    "period_mean",
    "point_area",
    "polygon_area",
    "read_boundary",
    "read_thickness",
    "select_layers",
    "strain_rates",
    "track",
]
