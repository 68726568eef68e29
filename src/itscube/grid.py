"""The cube grid: time dimension, CRS, spacing, cell edges, block means.

The one place that knows how an ITS_LIVE grid is laid out: 120 m pixels (``PIXEL_M``)
on regular ``x``/``y`` coordinates of cell centres (``y`` usually descending), a CF grid
mapping variable ``mapping`` carrying the EPSG code, and a time dimension called
``mid_date`` (image pairs) or ``time`` (composites).

>>> import numpy as np
>>> spacing(np.array([0.0, 120.0, 240.0]), "x")
120.0
>>> half_cell(np.array([5.0]))      # one pixel: ITS_LIVE's 120 m
60.0
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pyproj

if TYPE_CHECKING:  # xarray (with pandas) is a second per process: the download never needs it
    import xarray as xr

from itscube._typing import CRSLike
from itscube.errors import CubeFormatError, InputError, MissingCRSError

__all__ = [
    "PIXEL_M",
    "TIME_DIMS",
    "block_error",
    "block_mean",
    "check_upscale",
    "cube_epsg",
    "dims_last",
    "epsg_of",
    "grid_bounds",
    "grid_template",
    "half_cell",
    "spacing",
    "time_dim",
    "with_crs",
]

PIXEL_M = 120.0
"""ITS_LIVE pixel size (m): the spacing assumed for a coordinate of a single cell."""

TIME_DIMS = {"mid_date": "subyearly", "time": "annual"}
"""Time dimension name -> cube kind."""

GRID_MAPPING_NAMES = ("mapping", "spatial_ref", "Polar_Stereographic", "UTM_Projection")


def time_dim(ds: xr.Dataset) -> str:
    """Name of the time dimension: ``mid_date`` (sub-yearly) or ``time`` (annual)."""
    for name in TIME_DIMS:
        if name in ds.dims:
            return name
    raise CubeFormatError(f"no time dimension (mid_date or time) among dims {list(ds.dims)}")


def _rio() -> bool:
    """Register the ``.rio`` accessor (rioxarray, ~1 s to import with rasterio and dask) on
    first use: the download path never needs it. The domain modules import it themselves."""
    import rioxarray  # noqa: F401

    return True


def with_crs(ds, crs: CRSLike):
    """``ds`` with ``crs`` as its CF grid mapping variable ``mapping``, named in the
    ``grid_mapping`` attribute of every (y, x) variable (unchanged if ``crs`` is None)."""
    if crs is None:
        return ds
    _rio()
    ds = ds.rio.write_crs(crs, grid_mapping_name="mapping")
    if hasattr(ds, "data_vars"):  # a Dataset
        for name in ds.data_vars:
            if {"x", "y"} <= set(ds[name].dims):
                ds[name].attrs["grid_mapping"] = "mapping"
                ds[name].encoding.pop("grid_mapping", None)
    return ds


def epsg_of(*candidates: object) -> int | None:
    """The first EPSG code found among ``candidates``: integers, ``"EPSG:3413"``,
    ``"3413"``, WKT or PROJ strings (``None`` and unparsable values are skipped).

    >>> epsg_of(None, "", "EPSG:3413")
    3413
    >>> epsg_of("not a crs") is None
    True
    """
    for c in candidates:
        if c is None or (isinstance(c, str) and not c.strip()):
            continue
        text = str(c).strip().upper().replace("EPSG:", "")
        if text.isdigit():
            return int(text)
        try:
            epsg = pyproj.CRS.from_user_input(c).to_epsg()
        except (pyproj.exceptions.CRSError, ValueError, TypeError):
            continue
        if epsg:
            return int(epsg)
    return None


def cube_epsg(ds: xr.Dataset) -> int:
    """EPSG code of a cube from its grid mapping variable or global ``projection`` attribute.

    Raises
    ------
    MissingCRSError
        No CRS anywhere.
    """
    gm = next((ds[n].attrs for n in GRID_MAPPING_NAMES if n in ds.variables), {})
    epsg = epsg_of(
        gm.get("spatial_epsg"), gm.get("crs_wkt"), gm.get("spatial_ref"), ds.attrs.get("projection")
    )
    if epsg is None and _rio() and ds.rio.crs is not None:
        epsg = ds.rio.crs.to_epsg()
    if epsg is None:
        raise MissingCRSError(
            "the cube has no CRS (no mapping.spatial_epsg, crs_wkt or projection attribute)"
        )
    return int(epsg)


def spacing(coord: np.ndarray, name: str = "x") -> float:
    """Signed spacing (m) of a regular coordinate; :data:`PIXEL_M` for a single cell.

    Raises
    ------
    CubeFormatError
        The coordinate is not regularly spaced.
    """
    coord = np.asarray(coord, "f8")
    if len(coord) < 2:
        return PIXEL_M
    d = np.diff(coord)
    if np.any(np.abs(d - d[0]) > 1e-6 * abs(d[0])):
        raise CubeFormatError(f"the {name} coordinate is not regularly spaced")
    return float(d[0])


def half_cell(coord: np.ndarray) -> float:
    """Half the pixel width (m) along a coordinate of cell centres."""
    coord = np.asarray(coord, "f8")
    return abs(float(coord[1] - coord[0])) / 2 if len(coord) > 1 else PIXEL_M / 2


def grid_bounds(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float, float]:
    """Outer cell edges ``(xmin, ymin, xmax, ymax)`` (m) of a grid of cell centres."""
    hx, hy = half_cell(x), half_cell(y)
    return (
        float(np.min(x)) - hx,
        float(np.min(y)) - hy,
        float(np.max(x)) + hx,
        float(np.max(y)) + hy,
    )


def grid_template(ds: xr.Dataset) -> xr.DataArray:
    """An empty (y, x) map on the cube grid, with its CRS (a reprojection target)."""
    import xarray as xr

    empty = np.zeros((ds.sizes["y"], ds.sizes["x"]), "u1")
    da = xr.DataArray(empty, dims=("y", "x"), coords={"y": ds.y.values, "x": ds.x.values})
    _rio()
    return da.rio.write_crs(ds.rio.crs)


def check_upscale(k: object, ny: int, nx: int, what: str, pixels_needed=lambda k: k) -> int:
    """``k`` as a whole number of pixels >= 1 for which ``what`` fits the ``ny x nx`` grid
    (``pixels_needed(k)`` pixels each way), else an :class:`InputError` naming ``upscale``
    and the largest value that fits.

    >>> check_upscale(2, 10, 10, "a ±k stencil", lambda k: 2 * k + 1)
    2
    """
    if isinstance(k, bool) or not isinstance(k, int | np.integer | float) or int(k) != k:
        raise InputError(f"upscale must be a whole number of pixels; got {k!r}", params="upscale")
    k = int(k)
    if k < 1:
        raise InputError(f"upscale must be >= 1 pixel; got {k}", params="upscale")
    need = pixels_needed(k)
    if need > min(ny, nx):
        fits = [j for j in range(1, k) if pixels_needed(j) <= min(ny, nx)]
        raise InputError(
            f"upscale {k} is too large for the {nx} x {ny}-pixel grid with {what} (needs "
            f"{need} pixels each way); use at most {max(fits) if fits else 'a larger grid'}",
            params="upscale",
        )
    return k


def block_mean(da: xr.DataArray, k: int) -> xr.DataArray:
    """Means of ``k x k`` pixel blocks (NaN if any pixel is; trailing partial blocks are
    dropped)."""
    return da.coarsen(y=k, x=k, boundary="trim").reduce(np.mean)


def block_error(da: xr.DataArray, k: int) -> xr.DataArray:
    """Error of :func:`block_mean` for independent pixel errors ``da``: ``sqrt(sum s^2)/k^2``."""
    return (da**2).coarsen(y=k, x=k, boundary="trim").reduce(np.sum) ** 0.5 / (k * k)


def dims_last(da: xr.DataArray, core: Sequence[str] = ("y", "x")) -> xr.DataArray:
    """``da`` with the ``core`` dims last (the kernels' layout)."""
    return da.transpose(*[d for d in da.dims if d not in core], *core)
