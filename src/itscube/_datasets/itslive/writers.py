"""Writers of the synthetic sub-yearly cubes in every archive layout (Zarr v2, v2.2 Zarr v3
sharded or not, Icechunk) and of GeoTIFFs."""

from __future__ import annotations

import warnings
from collections.abc import Hashable, Sequence
from pathlib import Path

import numpy as np
import xarray as xr

from itscube._datasets.itslive.grid import (
    COMPRESSOR,
    FILL_INT16,
)

__all__ = [
    "LAYOUTS",
    "PER_LAYER_NO_FILL",
    "V22_TIME_UNITS",
    "as_v22",
    "write_geotiff",
    "write_icechunk_subyearly",
    "write_subyearly",
]

LAYOUTS = ("v2", "v2.2", "v2.2-sharded")
"""Store layouts of image-pair cubes: ITS_LIVE v2 (Zarr v2, ``mid_date``, zlib Blosc) and
v2.2 chunk-aligned (Zarr v3, ``time`` in seconds since 1980-01-06, lz4 bitshuffle Blosc,
``missing_value`` on integers), optionally sharded."""


PER_LAYER_NO_FILL = (
    "mid_date",
    "date_dt",
    "date_center",
    "acquisition_date_img1",
    "acquisition_date_img2",
)
"""Per-layer variables written with ``_FillValue`` disabled (a null Zarr fill), as the
production v2 writer does."""


V22_TIME_UNITS = "seconds since 1980-01-06"


def as_v22(ds: xr.Dataset) -> xr.Dataset:
    """An image-pair dataset in v2.2 conventions: dim ``time``; integer velocities carry
    ``missing_value`` only (no ``_FillValue``)."""
    out = ds.rename({"mid_date": "time"})
    for name, var in list(out.variables.items()):
        if var.dtype == np.int16:
            var.attrs["missing_value"] = FILL_INT16
        if var.dtype.kind == "U" and name not in out.dims:  # Zarr v3 variable-length strings
            out[name] = var.copy(data=var.values.astype(object))
    out.attrs["datacube_software_version"] = "2.2"
    return out


def write_subyearly(
    ds: xr.Dataset,
    path: str | Path,
    *,
    layout: str = "v2",
    time_chunk: int = 20000,
    spatial_chunk: int = 10,
    shard: int | None = None,
) -> Path:
    """Write an image-pair dataset (as built by :func:`make_subyearly_cube`) in ``layout``.

    Parameters
    ----------
    layout : one of :data:`LAYOUTS`.
    time_chunk, spatial_chunk : 3-D chunks ``(min(n, time_chunk), s, s)``.
    shard : spatial side of the shards (``v2.2-sharded``; default 4 chunks).
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}")
    v22 = layout.startswith("v2.2")
    if v22:
        import zarr.codecs

        ds = as_v22(ds)
    tdim = "time" if v22 else "mid_date"
    n = ds.sizes[tdim]
    tc = min(n, time_chunk)
    dims3 = (tdim, "y", "x")
    enc: dict[Hashable, dict] = {}
    for name, var in ds.variables.items():
        if v22:
            e: dict = {
                "compressors": (
                    zarr.codecs.BloscCodec(cname="lz4", clevel=1, shuffle="bitshuffle"),
                )
            }
        else:
            e = {"compressors": (COMPRESSOR,)}
        if var.dims == dims3:
            e["chunks"] = (tc, spatial_chunk, spatial_chunk)
            if layout == "v2.2-sharded":
                side = shard or 4 * spatial_chunk
                e["shards"] = (tc, side, side)
            if var.dtype == np.int16 and not v22:  # production v2: both, each -32767
                e["_FillValue"] = FILL_INT16
                e["missing_value"] = FILL_INT16
            elif var.dtype in (np.uint8, np.uint16):
                e["_FillValue"] = 0
        elif var.ndim == 1:
            e["chunks"] = (min(var.shape[0], 200000),) if v22 else var.shape
        if np.issubdtype(var.dtype, np.datetime64):
            units = V22_TIME_UNITS if v22 else "days since 1970-01-01"
            e.update(units=units, calendar="proleptic_gregorian", dtype="float64")
        if name in PER_LAYER_NO_FILL and not v22:  # production v2 disables their _FillValue
            e["_FillValue"] = None
        enc[name] = e
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*(not part of the Zarr|unstable).*")
        ds.to_zarr(
            str(path), mode="w", zarr_format=3 if v22 else 2, consolidated=True, encoding=enc
        )
    return Path(path)


def write_icechunk_subyearly(
    ds: xr.Dataset,
    storage,
    *,
    virtual: str | None = None,
    granule_store=None,
    container_store=None,
    put=None,
    declare_container: bool = True,
    variables: Sequence[str] = ("vx", "vy", "v", "v_error"),
) -> str:
    """Write an image-pair dataset as an Icechunk repository in v2.2 conventions.

    Natively by default. With ``virtual`` (a URL prefix such as ``s3://bucket/granules/``
    or ``file:///path/``), the 3-D ``variables`` are instead *virtual references* into one
    NetCDF4 file per image pair (``g<k>.nc``, uncompressed contiguous int16 as the granule
    files hold them), one layer per chunk as ITS_LIVE's spatial repositories are laid out.

    Parameters
    ----------
    storage : ``icechunk.Storage`` of the repository to create.
    virtual : URL prefix of the granule files (None = native chunks).
    granule_store : ``icechunk`` object-store config for the container (virtual only).
    put : ``put(name, data: bytes)`` stores one granule file under ``virtual`` (virtual only).
    declare_container : declare the container in the repository config (False makes a
        repository whose virtual chunks no reader can authorise).

    Returns
    -------
    str
        The snapshot id of the commit.
    """
    import io

    import h5py
    import icechunk
    import zarr
    from zarr.codecs import BytesCodec

    icechunk.set_logs_filter("error")
    ds = as_v22(ds)
    config = icechunk.RepositoryConfig.default()
    if virtual and declare_container:
        config.set_virtual_chunk_container(icechunk.VirtualChunkContainer(virtual, granule_store))
    repo = icechunk.Repository.create(storage, config=config)
    session = repo.writable_session("main")
    native = ds.drop_vars(list(variables)) if virtual else ds
    enc = {}
    for name, var in native.variables.items():
        e: dict = {}
        if np.issubdtype(var.dtype, np.datetime64):
            e.update(units=V22_TIME_UNITS, calendar="proleptic_gregorian", dtype="float64")
        if var.ndim == 3:
            e["chunks"] = (1, *var.shape[1:])
        enc[name] = e
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*(not part of the Zarr|unstable).*")
        native.to_zarr(session.store, zarr_format=3, consolidated=False, encoding=enc, mode="w")
    if virtual:
        group = zarr.open_group(session.store, mode="r+")
        n, ny, nx = ds[variables[0]].shape
        offsets: dict[tuple[int, str], tuple[int, int]] = {}
        for k in range(n):
            buf = io.BytesIO()
            with h5py.File(buf, "w") as f:
                for v in variables:
                    d = f.create_dataset(v, data=np.ascontiguousarray(ds[v].values[k], "<i2"))
                    offsets[(k, v)] = (d.id.get_offset(), d.id.get_storage_size())
            put(f"g{k}.nc", buf.getvalue())
        for v in variables:
            attrs = {
                key: (int(val) if isinstance(val, np.integer) else val)
                for key, val in ds[v].attrs.items()
            }
            group.create_array(
                v,
                shape=(n, ny, nx),
                chunks=(1, ny, nx),
                dtype="int16",
                fill_value=FILL_INT16,
                compressors=None,
                serializer=BytesCodec(endian="little"),
                dimension_names=("time", "y", "x"),
                attributes=attrs,
            )
            for k in range(n):
                off, length = offsets[(k, v)]
                session.store.set_virtual_ref(
                    f"{v}/c/{k}/0/0",
                    f"{virtual}g{k}.nc",
                    offset=off,
                    length=length,
                    validate_container=declare_container,
                )
    return str(session.commit("synthetic ITS_LIVE v2.2 cube (itscube)"))


def write_geotiff(
    path: str | Path,
    x: np.ndarray,
    y: np.ndarray,
    values: np.ndarray,
    crs: str | int | None,
    nodata: float | None = None,
) -> Path:
    """Write a single-band float32 GeoTIFF with pixel-centre coordinates ``x``, ``y``
    (``crs=None`` writes no CRS, for testing that error path)."""
    import rioxarray  # noqa: F401

    da = xr.DataArray(np.asarray(values, "f4"), coords={"y": y, "x": x}, dims=("y", "x"))
    if crs is not None:
        da = da.rio.write_crs(crs if not isinstance(crs, int) else f"EPSG:{crs}")
    if nodata is not None:
        da = da.rio.write_nodata(nodata)
    da.rio.to_raster(path, compress="DEFLATE")
    return Path(path)
