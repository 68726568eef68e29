"""Cubes in another projection, with the velocity vectors turned as the map axes turn.

ITS_LIVE stores each cube in its local projection (UTM zone, or polar stereographic near
the poles), and ``vx``/``vy`` are components along that grid's axes. Between two
projections the axes turn (about 2.6 degrees at 3 degrees of longitude from a UTM central
meridian at 61 N) and scale, so resampling ``vx``/``vy`` alone leaves every vector pointing
wrong by that angle. As ITS_LIVE's own mosaicking does, each output pixel gets the 2 x 2
matrix of the projection change's local derivatives (the Jacobian d(target)/d(source),
from a step of a metre along each source axis, Lei et al. 2021 eqs. A9-A15), applied
after resampling:

* ``vx``, ``vy``: NaN-aware bilinear resampling in the source grid
  (:func:`itscube._kernels.resample.bilinear`), then the matrix;
* ``v``: recomputed as the norm of the turned components (where both exist); the
  annual composites' ``vx0``/``vy0`` (and ``v0``) and trends ``dvx_dt``/``dvy_dt`` alike;
* ``vx_error``, ``vy_error`` per pixel: through the same matrix as independent errors,
  sqrt(j11^2 sx^2 + j12^2 sy^2); per layer (one value per image pair, as ITS_LIVE v2
  stores them): with the matrix's mean squares over the output grid;
* ``v_error`` and every other pixel variable: nearest pixel;
* per-layer variables and the time axis: unchanged;
* other components along the source axes (``vx_stable_shift``, ``vx_error_modeled``...,
  seasonal ``*_amp``/``*_phase``): left out, and named in ``itscube_not_reprojected``
  (the provenance's notes say so), rather than carried along the wrong axes.

The matrices are computed once per output grid and source projection and reused for every
layer. The output grid is regular in the target CRS, aligned to whole multiples of the
resolution (two outputs in one CRS abut).
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import numpy as np
import pyproj
import xarray as xr

from itscube._kernels import resample as _k
from itscube._typing import CRSLike
from itscube.errors import InputError

__all__ = ["jacobian", "mosaic", "reproject_cube", "target_grid"]


def target_grid(
    bounds: tuple[float, float, float, float], resolution: float
) -> tuple[np.ndarray, np.ndarray]:
    """Pixel centres (x ascending, y descending) of the grid covering ``bounds`` (target
    CRS), with edges on whole multiples of ``resolution``."""
    if not resolution > 0:
        raise InputError(f"resolution must be positive; got {resolution}", params="resolution")
    xmin, ymin, xmax, ymax = bounds
    x0, x1 = np.floor(xmin / resolution), np.ceil(xmax / resolution)
    y0, y1 = np.floor(ymin / resolution), np.ceil(ymax / resolution)
    x = (np.arange(x0, x1) + 0.5) * resolution
    y = (np.arange(y1, y0, -1) - 0.5) * resolution
    return x, y


def jacobian(
    src_crs, dst_crs, xs: np.ndarray, ys: np.ndarray, step: float = 1.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``d(target)/d(source)`` at source points ``(xs, ys)``, by centred differences of a
    ``step`` (m) along each source axis: ``(j11, j12, j21, j22)`` with
    ``[X', Y'] = [[j11, j12], [j21, j22]] [x', y']``."""
    tr = pyproj.Transformer.from_crs(src_crs, dst_crs, always_xy=True)
    xp, yp = tr.transform(xs + step, ys)
    xm, ym = tr.transform(xs - step, ys)
    j11, j21 = (np.asarray(xp) - xm) / (2 * step), (np.asarray(yp) - ym) / (2 * step)
    xp, yp = tr.transform(xs, ys + step)
    xm, ym = tr.transform(xs, ys - step)
    j12, j22 = (np.asarray(xp) - xm) / (2 * step), (np.asarray(yp) - ym) / (2 * step)
    return j11, j12, j21, j22


def _positions(ds: xr.Dataset, dst_crs, x: np.ndarray, y: np.ndarray):
    """Fractional (row, col) of the target pixel centres in the source grid, and the
    Jacobians there."""
    src_crs = ds.rio.crs
    gx, gy = np.meshgrid(x, y)
    back = pyproj.Transformer.from_crs(dst_crs, src_crs, always_xy=True)
    xs, ys = back.transform(gx, gy)
    xs, ys = np.asarray(xs), np.asarray(ys)
    sx, sy = ds.x.values, ds.y.values
    dx = float(sx[1] - sx[0]) if len(sx) > 1 else 120.0
    dy = float(sy[1] - sy[0]) if len(sy) > 1 else -120.0
    ci = (xs - sx[0]) / dx
    ri = (ys - sy[0]) / dy
    return ri, ci, jacobian(src_crs, dst_crs, xs, ys)


def _apply(fn, da: xr.DataArray, *args) -> xr.DataArray:
    """``fn(values, *args)`` over the (y, x) plane of ``da``, lazily per chunk of the
    other axes; the output plane is (y, x) of the target grid."""
    ny, nx = args[0].shape
    return xr.apply_ufunc(
        fn,
        da,
        *[xr.DataArray(a, dims=("_ty", "_tx")) for a in args],
        input_core_dims=[["y", "x"], *[["_ty", "_tx"]] * len(args)],
        output_core_dims=[["_ty", "_tx"]],
        dask="parallelized",
        output_dtypes=[np.float32 if fn is not _k.nearest else da.dtype],
        dask_gufunc_kwargs={"output_sizes": {"_ty": ny, "_tx": nx}, "allow_rechunk": True},
    ).rename({"_ty": "y", "_tx": "x"})


def reproject_cube(
    ds: xr.Dataset, crs: CRSLike, x: np.ndarray, y: np.ndarray, *, rotate: bool = True
) -> xr.Dataset:
    """A cube (from :func:`itscube.open_cube`) on the target grid ``x``, ``y`` of ``crs``.

    Parameters
    ----------
    ds : the cube, velocities in m/yr along its own grid's axes.
    crs : the target CRS (``EPSG:3338``...).
    x, y : target pixel centres (m), e.g. from :func:`target_grid`.
    rotate : turn the vectors (default). ``False`` only resamples ``vx``/``vy``: wrong by
        the axes' turn, kept for comparison.

    Returns
    -------
    xarray.Dataset
        Lazy where ``ds`` is; ``attrs["itscube_source_epsg"]`` names the source projection.
    """
    dst = pyproj.CRS.from_user_input(crs)
    ri, ci, (j11, j12, j21, j22) = _positions(ds, dst, x, y)
    if not rotate:
        j11, j12, j21, j22 = np.ones_like(j11), np.zeros_like(j11), np.zeros_like(j11), j11 * 0 + 1
    out: dict[Hashable, Any] = {}
    grid = {"y", "x"}
    for cx, cy, norm in VECTORS:
        if cx in ds and cy in ds and grid <= set(ds[cx].dims):
            bx = _apply(_k.bilinear, ds[cx], ri, ci)
            by = _apply(_k.bilinear, ds[cy], ri, ci)
            out[cx] = (j11 * bx + j12 * by).astype("float32")
            out[cy] = (j21 * bx + j22 * by).astype("float32")
            if norm:
                out[norm] = np.hypot(out[cx], out[cy]).astype("float32")
    for ex_name, ey_name in ERRORS:
        if ex_name not in ds or ey_name not in ds:
            continue
        ex, ey = ds[ex_name], ds[ey_name]
        on_grid = grid <= set(ex.dims)
        if on_grid:
            ex, ey = _apply(_k.bilinear, ex, ri, ci), _apply(_k.bilinear, ey, ri, ci)
        for comp, (a, b) in ((ex_name, (j11, j12)), (ey_name, (j21, j22))):
            if not on_grid:  # one error per layer: the matrix's mean squares over the grid
                a, b = np.nanmean(a**2) ** 0.5, np.nanmean(b**2) ** 0.5
            out[comp] = np.sqrt(a**2 * ex**2 + b**2 * ey**2).astype("float32")
    dropped = []
    for name, da in ds.data_vars.items():
        if name in out or name == "mapping":
            continue
        if _directional(str(name)):  # components along the source axes, not turned here
            dropped.append(str(name))
            continue
        out[name] = _apply(_k.nearest, da, ri, ci) if grid <= set(da.dims) else da
    for name in out:
        if name in ds:
            out[name].attrs = dict(ds[name].attrs)
    res = xr.Dataset(out, attrs=dict(ds.attrs))
    res = res.assign_coords(x=("x", x), y=("y", y))
    for c in ds.coords:
        if c not in ("x", "y", "spatial_ref", "mapping") and not (grid & set(ds[c].dims)):
            res = res.assign_coords({c: ds[c]})
    res.attrs["itscube_source_epsg"] = int(ds.rio.crs.to_epsg() or 0)
    if dropped:
        res.attrs["itscube_not_reprojected"] = " ".join(sorted(dropped))
    return res.rio.write_crs(dst).rio.set_spatial_dims(x_dim="x", y_dim="y")


VECTORS = (("vx", "vy", "v"), ("vx0", "vy0", "v0"), ("dvx_dt", "dvy_dt", None))
"""Component pairs turned together (and the speed recomputed from them, if any): the
velocity, the annual composites' climatological mean and its trend."""
ERRORS = (("vx_error", "vy_error"), ("vx0_error", "vy0_error"))
"""Error pairs propagated through the matrix."""


def _directional(name: str) -> bool:
    """Variables along the source axes that are not turned (seasonal amplitude and phase
    ellipses, stable-shift and modelled-error components): left out of a reprojection."""
    axes = name.startswith(("vx", "vy", "dvx", "dvy"))
    return axes or "_amp" in name or "_phase" in name


def mosaic(cubes: list[xr.Dataset], tdim: str) -> xr.Dataset:
    """Cubes on one grid (from :func:`reproject_cube`) as one: every layer of each, and
    where two cover a pixel of the same layer, the first one's value."""
    if len(cubes) == 1:
        return cubes[0]
    times = np.unique(np.concatenate([c[tdim].values for c in cubes]))
    out = cubes[0].reindex({tdim: times})
    for other in cubes[1:]:
        out = out.combine_first(other.reindex({tdim: times}))
    return out


# --------------------------------------------------------------------------- download

MIN_RESOLUTION_SHARE = 0.1
"""A resolution finer than this share of the source's (120 m) needs ``force``."""

_LAYER_BYTES = 64_000_000
"""Bytes of one source variable per dask chunk when reprojecting (layers per chunk)."""


def check_target(area, out_crs, resolution: float | None, force: bool) -> tuple:
    """The target CRS and resolution, or a one-line error: an unknown CRS, a geographic
    one without a resolution, a resolution much finer than the source's, an area the CRS
    cannot represent."""
    try:
        crs = pyproj.CRS.from_user_input(out_crs)
    except pyproj.exceptions.CRSError:
        raise InputError(
            f"out_crs {out_crs!r} is not a CRS; give EPSG:XXXX (e.g. EPSG:3338)", params="out_crs"
        ) from None
    if crs.is_geographic and resolution is None:
        raise InputError(
            f"out_crs {out_crs} is in degrees; give a resolution in degrees too, or a projected "
            "CRS (metres)",
            params=("out_crs", "resolution"),
        )
    resolution = 120.0 if resolution is None else float(resolution)
    if not resolution > 0:
        raise InputError(f"resolution must be positive; got {resolution:g}", params="resolution")
    if not crs.is_geographic and resolution < MIN_RESOLUTION_SHARE * 120.0 and not force:
        raise InputError(
            f"resolution {resolution:g} m is finer than a tenth of the source's 120 m; it "
            "only interpolates (use force to go on)",
            params=("resolution", "force"),
        )
    use = crs.area_of_use
    w, s, e, n = area.in_crs(pyproj.CRS(4326)).bounds
    spans = [(use.west, use.east)] if use is not None else []
    if use is not None and use.west > use.east:  # across the antimeridian
        spans = [(use.west, 180.0), (-180.0, use.east)]
    outside = use is not None and not (
        s <= use.north and n >= use.south and any(w <= east and e >= west for west, east in spans)
    )
    bounds = np.asarray(area.in_crs(crs).bounds, "f8")
    if outside or not np.isfinite(bounds).all():
        raise InputError(
            f"{area.label} cannot be represented in {out_crs} (does the CRS cover it?)",
            params="out_crs",
        )
    return crs, resolution


def download_reprojected(area, *, out_crs, resolution=None, force=False, **options):
    """:func:`itscube.download` onto one regular grid of ``out_crs``: the cubes touching the
    area are downloaded in their own projections (under the output folder's ``.partial``,
    chunks of the grid plus a resampling margin, resumable), then resampled with their
    vectors turned (:func:`reproject_cube`) and mosaicked into one store."""
    import hashlib
    import json

    from itscube.geometry import Area
    from itscube.io.download.run import _completed, download
    from itscube.io.location import is_url
    from itscube.window import date_window

    if is_url(options.get("out", ".")):
        raise InputError(
            "out_crs mosaics are written through a local or shared folder; give such an out "
            "(and copy the store to object storage), or download without out_crs",
            params=("out", "out_crs"),
        )
    crs, res = check_target(area, out_crs, resolution, force)
    x, y = target_grid(area.in_crs(crs).bounds, res)
    import shapely.geometry as sg

    margin = 2 * max(res, 120.0) if not crs.is_geographic else 2 * res
    grid_box = sg.box(x[0] - res / 2, y[-1] - res / 2, x[-1] + res / 2, y[0] + res / 2)
    needed = Area(grid_box.buffer(margin, join_style="mitre").segmentize(res * 10), crs, area.label)
    out = options.pop("out", ".")
    overwrite = options.get("overwrite", False)
    kind = options.get("kind", "subyearly")
    from itscube.io.download import output_folder

    t0, t1 = date_window(options.get("start"), options.get("end"))
    epsg = crs.to_epsg()
    folder = output_folder(out, kind, area, t0, t1, options.get("start"), options.get("end"))
    folder = folder.with_name(f"{folder.name}_EPSG{epsg}")
    query = {"out_crs": crs.to_string(), "resolution": res, "area": area.geometry.wkt}
    skip = ("progress", "announce", "overwrite", "keep_cache", "client")  # how, not what
    query.update({k: str(v) for k, v in options.items() if k not in skip})
    query_id = hashlib.sha256(json.dumps(query, sort_keys=True).encode()).hexdigest()
    done = _completed(folder, query_id, overwrite)  # as a download in the cubes' CRSs
    if done is not None:
        return done
    prov_path = folder / "provenance.json"
    native = download(needed, out=folder / ".partial" / "native", **options)
    cubes = [_open_native(p) for p in native.stores]
    tdim = cubes[0].attrs["itscube_time_dim"]
    result = mosaic([reproject_cube(c, crs, x, y) for c in cubes], tdim)
    name = f"{kind}_EPSG{epsg or 'custom'}.zarr"
    store = _write_store(result, cubes[0], folder, name, tdim)
    prov = json.loads(native.provenance.read_text())
    if result.attrs.get("itscube_not_reprojected"):
        prov.setdefault("notes", []).append(
            "not reprojected (components along the source axes): "
            + result.attrs["itscube_not_reprojected"]
        )
    prov.update(
        query=query,
        query_id=query_id,
        stores=[name],
        layers=[int(result.sizes[tdim])],
        reprojection={
            "out_crs": crs.to_string(),
            "resolution": res,
            "grid": [len(y), len(x)],
            "sources": [f"EPSG:{c.rio.crs.to_epsg()}" for c in cubes],
            "vectors": "NaN-aware bilinear, then the Jacobian d(target)/d(source) per pixel",
        },
    )
    tmp = prov_path.with_name(".provenance.json.tmp")
    tmp.write_text(json.dumps(prov, indent=1, default=str))
    tmp.replace(prov_path)
    if not options.get("keep_cache", False):
        import shutil

        shutil.rmtree(folder / ".partial", ignore_errors=True)
    native.folder, native.stores, native.provenance = folder, [store], prov_path
    native.layers = [int(result.sizes[tdim])]
    return native


def _open_native(path):
    from itscube.io.cube import open_cube

    ds = open_cube(path, require=())
    tdim = ds.attrs["itscube_time_dim"]
    plane = ds.sizes["y"] * ds.sizes["x"] * 4
    return ds.chunk({tdim: max(1, _LAYER_BYTES // max(1, plane)), "y": -1, "x": -1})


def _write_store(result: xr.Dataset, like: xr.Dataset, folder, name: str, tdim: str):
    """Write the mosaic as a consolidated Zarr v2 store in ITS_LIVE's encodings (int16 m/yr
    with the source's missing marker for velocities), under a temporary name first."""
    import shutil

    folder.mkdir(parents=True, exist_ok=True)
    final = folder / name
    tmp = folder / f".{name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    encoding = {}
    keys = ("dtype", "_FillValue", "scale_factor", "add_offset", "units", "calendar")
    for v in [*result.data_vars, tdim]:
        src = like[v].encoding if v in like else {}
        enc = {k: src[k] for k in keys if k in src}
        if "dtype" in enc and np.dtype(enc["dtype"]).kind in "iu" and "_FillValue" not in enc:
            enc["_FillValue"] = src.get("missing_value", -32767)
        if {"y", "x"} <= set(result[v].dims):
            enc["chunks"] = tuple(
                result.chunksizes[d][0] if d in result.chunksizes else result.sizes[d]
                for d in result[v].dims
            )
        encoding[v] = enc
    out = result.drop_vars("spatial_ref", errors="ignore")
    out.attrs = {k: v for k, v in out.attrs.items() if isinstance(v, str | int | float)}
    out.to_zarr(tmp, mode="w", zarr_format=2, consolidated=True, encoding=encoding)
    if final.exists():
        shutil.rmtree(final)
    tmp.replace(final)
    return final
