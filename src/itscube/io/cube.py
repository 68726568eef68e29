"""Open an ITS_LIVE datacube (local or remote) as an analysis-ready :class:`xarray.Dataset`."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr

from itscube._typing import Kind
from itscube.errors import CubeFormatError, CubeNotFoundError, InputError
from itscube.grid import TIME_DIMS, cube_epsg, time_dim, with_crs
from itscube.io import remote
from itscube.window import DateLike, date_window

__all__ = [
    "VELOCITY_UNITS",
    "VELOCITY_VARS",
    "cube_kind",
    "normalise_cube",
    "open_cube",
]

VELOCITY_VARS = ("vx", "vy", "v", "v_error", "vx_error", "vy_error", "va", "vr")
VELOCITY_UNITS = "m yr-1"


def cube_kind(ds: xr.Dataset) -> Kind:
    """``"subyearly"`` or ``"annual"``."""
    return TIME_DIMS[time_dim(ds)]  # type: ignore[return-value]


def _open_raw(path_or_url: str, chunks, storage_options: dict | None) -> xr.Dataset:
    from itscube.io.stores import is_icechunk, open_icechunk_session, open_source

    url = remote.normalise_url(str(path_or_url))
    proto = remote.protocol_of(url)
    kw = {"decode_timedelta": False, "chunks": chunks}
    if is_icechunk(url):
        session = open_icechunk_session(url)
        return _image_pair_time(xr.open_zarr(session.store, consolidated=False, **kw))
    if proto == "file":
        p = Path(url)
        if not p.exists():
            raise CubeNotFoundError(f"{path_or_url}: no such file or folder")
        if p.is_dir():
            has_consolidated = (p / ".zmetadata").exists()
            if not (has_consolidated or (p / ".zgroup").exists() or (p / "zarr.json").exists()):
                raise CubeFormatError(f"{path_or_url}: folder is not a Zarr store")
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Consolidated metadata is currently")
                ds = xr.open_zarr(p, consolidated=has_consolidated or None, **kw)
            return _image_pair_time(ds)
        try:
            return xr.open_dataset(p, **kw)
        except Exception as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            if "did not find a match" in first:
                first = f"a {p.suffix or 'file'} is neither NetCDF nor Zarr"
            raise CubeFormatError(
                f"{path_or_url}: not a cube ({first}); give an ITS_LIVE Zarr store, a NetCDF "
                "file or a download folder"
            ) from exc
    # Remote: insist on consolidated metadata (a non-listable store would read as empty).
    open_source(url, storage_options)
    opts = remote.storage_options_for(url, storage_options)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Consolidated metadata is currently not part")
        ds = xr.open_zarr(url, consolidated=True, storage_options=opts, **kw)
    return _image_pair_time(ds)


def _image_pair_time(ds: xr.Dataset) -> xr.Dataset:
    """v2.2 image-pair cubes call their time dimension ``time``: name it ``mid_date``, as
    every other image-pair cube (``time`` is the annual composites' dimension)."""
    pair_vars = ("date_dt", "acquisition_date_img1", "acquisition_date_img2")
    if "time" in ds.dims and "mid_date" not in ds.dims and any(v in ds for v in pair_vars):
        ds = ds.rename({"time": "mid_date"})
    return ds


def normalise_cube(
    ds: xr.Dataset,
    *,
    start: DateLike | None = None,
    end: DateLike | None = None,
    require: Sequence[str] = ("vx", "vy"),
) -> xr.Dataset:
    """Make a raw ITS_LIVE dataset analysis-ready (see :func:`open_cube`)."""
    tdim = time_dim(ds)
    missing = [v for v in require if v not in ds.variables]
    if missing:
        raise CubeFormatError(
            f"the cube lacks variable(s) {', '.join(missing)}; "
            f"it has {', '.join(sorted(map(str, ds.data_vars)))}"
        )
    epsg = cube_epsg(ds)
    if np.issubdtype(ds[tdim].dtype, np.datetime64):
        # float "days since" encodings blur the microsecond uniqueness token: restore it
        ds = ds.assign_coords({tdim: ds[tdim].dt.round("us")})
    for name, var in ds.data_vars.items():  # acquisition dates, date_center: the same noise
        if np.issubdtype(var.dtype, np.datetime64):
            ds[name] = var.dt.round("us")
    ds = ds.sortby(tdim)
    if start is not None or end is not None:
        t0, t1 = date_window(start, end)
        times = ds[tdim].values
        ds = ds.isel({tdim: (times >= np.datetime64(t0)) & (times < np.datetime64(t1))})
    for name in VELOCITY_VARS:
        if name in ds.variables and ds[name].dtype != np.float32:
            attrs = dict(ds[name].attrs)
            ds[name] = ds[name].astype("float32")
            ds[name].attrs = attrs
        if name in ds.variables:
            ds[name].attrs["units"] = VELOCITY_UNITS
    if "date_dt" in ds.variables:
        dt = ds["date_dt"]
        if np.issubdtype(dt.dtype, np.timedelta64):
            ds["date_dt"] = (dt / np.timedelta64(1, "D")).astype("float32")
        ds["date_dt"].attrs.update(units="days", long_name="time separation of the image pair")
    gm_attrs = dict(ds["mapping"].attrs) if "mapping" in ds.variables else {}
    if "mapping" in ds.variables:
        ds = ds.drop_vars("mapping")
    ds = with_crs(ds, f"EPSG:{epsg}")
    keep = {k: v for k, v in gm_attrs.items() if k in ("GeoTransform", "spatial_epsg")}
    ds["mapping"].attrs.update(keep)
    ds["mapping"].attrs["spatial_epsg"] = epsg
    ds = ds.rio.set_spatial_dims(x_dim="x", y_dim="y")
    ds.attrs["itscube_kind"] = TIME_DIMS[tdim]
    ds.attrs["itscube_time_dim"] = tdim
    return ds


def open_cube(
    path_or_url: str | os.PathLike,
    *,
    variables: Sequence[str] | None = None,
    start: DateLike | None = None,
    end: DateLike | None = None,
    chunks: dict | str | None = None,
    storage_options: dict | None = None,
    require: Sequence[str] = ("vx", "vy"),
    out_crs: str | int | None = None,
    resolution: float | None = None,
) -> xr.Dataset:
    """Open an ITS_LIVE cube as a lazily loaded, analysis-ready dataset.

    Parameters
    ----------
    path_or_url : local Zarr folder or NetCDF file, or ``https://``/``http://``/``s3://`` URL
        of a Zarr store (read anonymously; remote stores must have consolidated metadata,
        as ITS_LIVE stores do). A downloaded itscube output folder is accepted too.
    variables : keep only these data variables (plus coordinates and the grid mapping).
    start, end : keep layers whose time (``mid_date`` or ``time``) lies in [start, end]
        (dates, inclusive; ``end`` as a date includes that whole day).
    chunks : dask chunks (default: the store's chunks).
    storage_options : extra fsspec options for remote stores.
    require : variables that must be present (default vx, vy).
    out_crs, resolution : resample (lazily) onto a regular grid of this CRS covering the
        cube, with the velocity vectors turned to its axes (:mod:`itscube.io.reproject`);
        ``resolution`` in the CRS's units, default 120 m.

    Returns
    -------
    xarray.Dataset
        * time dimension sorted ascending (sub-yearly ``mid_date`` keeps its name and its
          microsecond uniqueness token; annual cubes use ``time``),
        * fill values masked to NaN, velocities (``vx, vy, v`` and errors) float32 in m/yr,
        * ``date_dt`` as float32 days, acquisition dates and sensors kept as data variables,
        * CRS attached (``ds.rio.crs`` and a CF ``mapping`` grid-mapping variable),
        * x ascending and y as stored (ITS_LIVE y DEcreases with row index),
        * ``attrs["itscube_kind"]`` = ``"subyearly"`` or ``"annual"``.

    Raises
    ------
    CubeNotFoundError, CubeFormatError, MissingCRSError, InputError
    """
    p = Path(str(path_or_url))
    if (
        remote.protocol_of(str(path_or_url)) == "file"
        and p.is_dir()
        and not (p / ".zmetadata").exists()
    ):
        stores = sorted(p.glob("*.zarr"))
        if len(stores) == 1:
            p = stores[0]
        elif len(stores) > 1:
            raise InputError(
                f"{path_or_url} holds several cubes ({', '.join(s.name for s in stores)}): "
                "name one, or download with out_crs for one mosaic across projections"
            )
        path_or_url = p
    chunks = {} if chunks is None else chunks
    ds = _open_raw(str(path_or_url), chunks, storage_options)
    if variables is not None:
        unknown = [v for v in variables if v not in ds.variables]
        if unknown:
            raise InputError(
                f"unknown variable(s) {', '.join(unknown)}; "
                f"available: {', '.join(sorted(map(str, ds.data_vars)))}"
            )
        keep = set(variables) | {"mapping"}
        ds = ds.drop_vars([v for v in ds.data_vars if v not in keep])
    ds = normalise_cube(ds, start=start, end=end, require=require)
    if out_crs is None:
        return ds
    import shapely.geometry as sg

    from itscube.geometry import Area
    from itscube.io.reproject import check_target, reproject_cube, target_grid

    area = Area(sg.box(*ds.rio.bounds()), ds.rio.crs, "cube")
    crs, res = check_target(area, out_crs, resolution, force=False)
    x, y = target_grid(area.in_crs(crs).bounds, res)
    return reproject_cube(ds, crs, x, y)
