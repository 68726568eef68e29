"""itscube: NASA ITS_LIVE glacier velocity datacubes — download, tracking, strain and flux.

The public API is imported lazily (PEP 562): ``import itscube`` is cheap, and each name
loads its module on first use.

Quick start, on the bundled synthetic sample (with real data, ``itscube.download(area,
start=..., end=...)`` gives the stores to open):

>>> import itscube
>>> from itscube.sample import SAMPLE_CENTRE, ensure_sample
>>> ds = itscube.open_cube(ensure_sample().subyearly, start="2018-01-01", end="2018-12-31")
>>> ds.attrs["itscube_kind"], ds.rio.crs.to_epsg(), ds.sizes["mid_date"]
('subyearly', 3413, 28)
>>> strain = itscube.strain_rates(itscube.period_mean(ds, "year"), upscale=2)
>>> cx, cy = SAMPLE_CENTRE
>>> glacier = strain.sel(x=slice(cx, cx + 4000), y=slice(cy + 500, cy - 500)).compute()
>>> round(float(glacier["longitudinal"].median()), 2)  # the sample: 0.04 /yr x 1.07 in 2018
0.04
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

from itscube._version import __version__
from itscube.errors import (
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

_LAZY = {
    "Area": "geometry",
    "bbox_area": "geometry",
    "point_area": "geometry",
    "Targets": "geometry",
    "point_targets": "geometry",
    "profile_targets": "geometry",
    "polygon_area": "io.vector",
    "Catalog": "io.catalog",
    "CubeEntry": "io.catalog",
    "find_cubes": "io.catalog",
    "find_cubes_stac": "io.catalog",
    "load_catalog": "io.catalog",
    "open_cube": "io.cube",
    "map": "web",
    "set_options": "options",
    "get_options": "options",
    "DownloadResult": "io.download",
    "download": "io.download",
    "boundary_flux": "flux",
    "flux_divergence": "flux",
    "read_boundary": "flux",
    "read_thickness": "flux",
    "strain_rates": "strain",
    "Filters": "temporal",
    "period_mean": "temporal",
    "select_layers": "temporal",
    "track": "track",
    "time_series": "series",
    "Product": "products",
}
_SUBMODULES = {
    "geometry",
    "io",
    "products",
    "sample",
    "testing",
    "temporal",
    "strain",
    "flux",
    "track",
    "grid",
    "series",
    "window",
    "progress",
}

__all__ = [
    "CatalogError",
    "CubeFormatError",
    "CubeNotFoundError",
    "DownloadError",
    "EmptySelectionError",
    "InputError",
    "InsufficientSpaceError",
    "ItscubeError",
    "MissingCRSError",
    "OutputExistsError",
    "__version__",
    *sorted(_LAZY),
]

if TYPE_CHECKING:  # pragma: no cover
    from itscube.flux import boundary_flux, flux_divergence, read_boundary, read_thickness  # noqa: F401
    from itscube.geometry import (  # noqa: F401
        Area,
        Targets,
        bbox_area,
        point_area,
        point_targets,
        profile_targets,
    )
    from itscube.io.catalog import (  # noqa: F401
        Catalog,
        CubeEntry,
        find_cubes,
        find_cubes_stac,
        load_catalog,
    )
    from itscube.io.cube import open_cube  # noqa: F401
    from itscube.io.download import DownloadResult, download  # noqa: F401
    from itscube.io.vector import polygon_area  # noqa: F401
    from itscube.products import Product  # noqa: F401
    from itscube.series import time_series  # noqa: F401
    from itscube.strain import strain_rates  # noqa: F401
    from itscube.temporal import Filters, period_mean, select_layers  # noqa: F401
    from itscube.track import track  # noqa: F401


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'itscube' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | _SUBMODULES)


class _Package(types.ModuleType):
    """Keeps ``itscube.download`` and ``itscube.track`` the functions: importing the
    submodules of the same names must not replace them with the modules."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _LAZY and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
