"""Ice flux divergence and dynamic thickness change, mass-conserving on the cube grid.

Continuity: ``dH/dt = b - div(H u_bar)`` with ``u_bar = column_factor * u_surface``
(``column_factor`` 1.0 = plug flow; 0.8-1.0 is typical for grounded ice where some of the
surface speed comes from internal deformation). ``dynamic_dhdt = -div(H u_bar)`` (m/yr):
negative values are dynamic thinning.

Discretisation (finite volumes on the velocity grid)
-----------------------------------------------------
* Each pixel is a cell of ``|dx| x |dy|``. Face fluxes between neighbouring cells are
  ``q = H_f u_f`` with ``u_f`` the mean of the two cells' velocities and ``H_f`` their
  mean (``scheme="centred"``) or the upstream cell's thickness (``scheme="upwind"``).
* ``flux_divergence`` of a cell is the net outflow through its four faces divided by its
  area, so the sum of ``divergence * area`` over any set of cells equals the net flux
  through that set's boundary faces exactly (discrete Gauss theorem, to round-off).
  Coordinates are used with their sign, so descending ``y`` is handled.
* A face is NaN if either cell lacks H or u; cells on the grid's outer ring have no outer
  face and are NaN.
* ``upscale = k`` first takes ``k x k`` block means of H, vx, vy (and errors), as the
  strain ``coarsen`` method, and works on that coarse grid (differences over ``k dx``
  faces, a centred baseline of ``2 k dx``).
* Uncertainty of the integrated divergence: by the discrete Gauss theorem it is the net
  flux through the mask's boundary faces, a linear function ``sum(g_u u + g_v v)`` of the
  cell velocities (and ``sum(g_h dH)`` of thickness changes), so interior errors cancel.
  The weights ``g`` are spread back onto the cube's pixels (``1/k^2`` per pixel of a
  block) and the variance is taken under :class:`itscube.temporal.ErrorModel` (a per-map
  offset plus pixel noise with a Gaussian correlation length; thickness as a separate,
  independent term): ``integrated_divergence_error``. The per-cell map
  ``flux_divergence_error`` treats the pixel errors of each cell's stencil as independent
  (``s_q^2 = (H s_u)^2 + (u s_H)^2``, opposite faces combined as for a centred
  difference): use it to judge single cells, not to sum over areas.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pyproj
import rioxarray
import shapely
import shapely.geometry as sg
import xarray as xr

from itscube._kernels import flux as _k
from itscube._typing import SCHEMES, CRSLike, Scheme, check_choice
from itscube.errors import CubeFormatError, InputError, MissingCRSError
from itscube.geometry import check_degrees, parse_crs
from itscube.grid import (
    block_error,
    block_mean,
    check_upscale,
    dims_last,
    grid_bounds,
    grid_template,
    half_cell,
    spacing,
    with_crs,
)
from itscube.io.vector import read_features
from itscube.temporal import ErrorModel

__all__ = [
    "PLAUSIBLE_THICKNESS_M",
    "RHO_ICE",
    "SCHEMES",
    "boundary_flux",
    "flux_budget",
    "flux_divergence",
    "read_boundary",
    "read_thickness",
    "to_gt",
]

RHO_ICE = 917.0
"""Ice density (kg/m^3) used to convert volume flux to mass (Gt/yr)."""
PLAUSIBLE_THICKNESS_M = (10.0, 5000.0)
"""Range for the thickest ice of a thickness raster in metres; outside it, a warning."""

# ------------------------------------------------------------------ inputs


def read_thickness(
    path: str | os.PathLike,
    like: xr.Dataset,
    crs: CRSLike | None = None,
    what: str = "thickness",
) -> xr.DataArray:
    """Read a thickness GeoTIFF and resample it bilinearly onto the cube grid (m).

    ``crs`` overrides/sets the raster's CRS (required when the file has none). Nodata
    becomes NaN; negative values are warned about and set to NaN; a thickest ice outside
    :data:`PLAUSIBLE_THICKNESS_M` is warned about (km or feet instead of metres?).

    Raises
    ------
    InputError
        Missing or unreadable file, or a raster that does not overlap the cube.
    MissingCRSError
        The raster has no CRS and ``crs`` is not given.
    """
    from rasterio.enums import Resampling

    p = Path(path)
    if not p.is_file():
        raise InputError(f"{what} {path}: file not found", params=what)
    try:
        img = rioxarray.open_rasterio(p, masked=True)
        if not isinstance(img, xr.DataArray):
            raise TypeError("it holds several subdatasets")
        da = img.squeeze("band", drop=True)
    except Exception as exc:
        raise InputError(
            f"{what} {path}: cannot be read as a GeoTIFF ({exc})", params=what
        ) from exc
    if crs is not None:
        da = da.rio.write_crs(parse_crs(crs))
    elif da.rio.crs is None:
        raise MissingCRSError(
            f"{what} {path} has no CRS; give thickness_crs EPSG:XXXX to say what it is in",
            params=(what, "thickness_crs"),
        )
    out = da.astype("f8").rio.reproject_match(
        grid_template(like), resampling=Resampling.bilinear, nodata=np.nan
    )
    out = out.assign_coords(x=like.x.values, y=like.y.values)
    neg = int((out < 0).sum())
    if neg:
        warnings.warn(
            f"{what} {path}: {neg} negative thickness value(s) after resampling set to NaN",
            stacklevel=2,
        )
        out = out.where(out >= 0)
    if not np.isfinite(out.values).any():
        raise InputError(
            f"{what} {path}: no valid value over the cube (all nodata or negative after "
            "resampling, or the raster lies elsewhere); check its nodata value and CRS",
            params=what,
        )
    hi = float(np.nanmax(out.values))
    if what == "thickness" and (hi < PLAUSIBLE_THICKNESS_M[0] or hi > PLAUSIBLE_THICKNESS_M[1]):
        warnings.warn(
            f"{what} {path}: the thickest ice is {hi:.4g}, implausible for metres "
            f"(expected {PLAUSIBLE_THICKNESS_M[0]:.0f}..{PLAUSIBLE_THICKNESS_M[1]:.0f} m); "
            "is the raster in km or feet? itscube reads thickness in metres",
            stacklevel=2,
        )
    out.attrs = {"units": "m", "long_name": "ice thickness (bilinear onto the cube grid)"}
    return out.drop_vars("spatial_ref", errors="ignore")


def read_boundary(
    path: str | os.PathLike, like: xr.Dataset, crs: CRSLike | None = None
) -> sg.Polygon:
    """The boundary polygon, in the cube's CRS (m), counter-clockwise: from a CSV of x, y
    points (closed automatically), or a GeoJSON, GeoPackage or Shapefile polygon.

    Parameters
    ----------
    path : CSV with x, y (or lon, lat) columns, or a vector file with a Polygon.
    like : the cube (its CRS and grid).
    crs : CRS of the points when not the cube's (lon/lat columns are taken as EPSG:4326).

    Raises
    ------
    InputError
        Missing file, fewer than 3 points, an invalid polygon, or a polygon off the cube.
    """
    feats = read_features(path, "boundary", crs)
    where = feats.where
    poly = feats.polygon()
    if feats.from_csv and len({tuple(p) for p in feats.points()}) < 3:
        raise InputError(f"{where}: a boundary needs at least 3 distinct points", params="boundary")
    if poly.geom_type != "Polygon":
        raise InputError(
            f"{where}: a boundary is one polygon; the file holds {len(poly.geoms)} apart",
            params="boundary",
        )
    src = feats.crs
    if src is not None:
        ring = np.asarray(poly.exterior.coords)
        check_degrees(ring[:, 0], ring[:, 1], src, where, "boundary_crs")
    if src is not None and src != like.rio.crs:
        tr = pyproj.Transformer.from_crs(src, like.rio.crs, always_xy=True)
        poly = shapely.transform(poly, lambda c: np.column_stack(tr.transform(c[:, 0], c[:, 1])))
    cube = sg.box(*grid_bounds(like.x.values, like.y.values))
    if not poly.intersects(cube):
        b = poly.bounds
        raise InputError(
            f"{where}: polygon ({b[0]:.0f}, {b[1]:.0f}) .. ({b[2]:.0f}, {b[3]:.0f}) lies outside "
            f"the cube ({cube.bounds[0]:.0f}, {cube.bounds[1]:.0f}) .. "
            f"({cube.bounds[2]:.0f}, {cube.bounds[3]:.0f}); is it in the cube's projection "
            f"({like.rio.crs})? Otherwise give boundary_crs",
            params=("boundary", "boundary_crs"),
        )
    return shapely.geometry.polygon.orient(poly, 1.0)  # counter-clockwise exterior


# ------------------------------------------------------------------ fields


def _cells(*arrays, allow_partial: bool, **kw):
    """:func:`itscube._kernels.flux.flux_cells`, raising where coverage is partial and
    ``allow_partial`` is False (on dask, when the block is computed)."""
    out = _k.flux_cells(*arrays, **kw)
    coverage = out[-1]
    if kw["mask"] is not None and not allow_partial and np.size(coverage):
        worst = float(np.nanmin(np.where(np.isfinite(coverage), coverage, 0.0)))
        if worst < 0.999:
            raise InputError(
                f"{100 * (1 - worst):.1f}% of the boundary polygon's area has no velocity or "
                "thickness (off the grid or in gaps); use a polygon inside the data, or "
                "allow_partial to integrate the covered cells only (reported with coverage)",
                params="allow_partial",
            )
    return out


def _fine_errors(ds, thickness, thickness_error, column_factor):
    """Velocity errors broadcast to the maps and the thickness error, on the cube grid
    (zeros where absent)."""
    zeros = xr.zeros_like(ds["vx"], dtype="f8")
    su = ds["vx_error"] * column_factor if "vx_error" in ds.variables else zeros
    sv = ds["vy_error"] * column_factor if "vy_error" in ds.variables else zeros
    sh = xr.zeros_like(thickness) if thickness_error is None else thickness_error
    return su.broadcast_like(ds["vx"]), sv.broadcast_like(ds["vy"]), sh


def _inputs(ds, thickness, thickness_error, k, column_factor):
    """Velocities, thickness and their errors on the (coarsened) grid, errors broadcast to
    the velocity maps (zeros where absent)."""
    u, v = ds["vx"] * column_factor, ds["vy"] * column_factor
    su = ds["vx_error"] * column_factor if "vx_error" in ds.variables else None
    sv = ds["vy_error"] * column_factor if "vy_error" in ds.variables else None
    h, sh = thickness, thickness_error
    with_errors = su is not None or sh is not None
    if su is not None:
        su, sv = su.broadcast_like(ds["vx"]), sv.broadcast_like(ds["vy"])
    if k > 1:
        u, v, h = block_mean(u, k), block_mean(v, k), block_mean(h, k)
        su = None if su is None else block_error(su, k)
        sv = None if sv is None else block_error(sv, k)
        sh = None if sh is None else block_error(sh, k)
    su = xr.zeros_like(u) if su is None else su
    sv = xr.zeros_like(v) if sv is None else sv
    sh = xr.zeros_like(h) if sh is None else sh
    if u.chunks is not None:  # the kernels need whole maps: chunk over time only
        u, v, su, sv = (a.chunk({"y": -1, "x": -1}) for a in (u, v, su, sv))
    h, sh = (a.transpose("y", "x").load() for a in (h, sh))
    return u, v, su, sv, h, sh, with_errors


def _check_options(ds, scheme, upscale, column_factor) -> int:
    check_choice(scheme, SCHEMES, "scheme")
    if not (0 < column_factor <= 1.5):
        raise InputError(
            f"column_factor must be in (0, 1.5]; got {column_factor}", params="column_factor"
        )
    for name in ("vx", "vy"):
        if name not in ds.variables:
            raise CubeFormatError(f"the cube has no {name}; flux divergence needs vx and vy")
    ny, nx = ds.sizes["y"], ds.sizes["x"]
    return check_upscale(upscale, ny, nx, "flux divergence (3 blocks of k pixels)", lambda k: 3 * k)


def flux_divergence(
    ds: xr.Dataset,
    thickness: xr.DataArray,
    boundary: sg.Polygon | None = None,
    *,
    upscale: int = 1,
    column_factor: float = 1.0,
    scheme: Scheme = "centred",
    thickness_error: xr.DataArray | None = None,
    allow_partial: bool = False,
    error_model: ErrorModel | None = None,
) -> xr.Dataset:
    """Flux divergence ``div(H u_bar)`` and dynamic thickness change of a velocity field.

    Lazy on dask-backed cubes (one task per time chunk, each on whole maps), so that
    per-layer fluxes of a cube larger than memory stream in bounded memory.

    Parameters
    ----------
    ds : ``vx``, ``vy`` (m/yr) on ``(..., y, x)``; optional ``vx_error``, ``vy_error``.
    thickness : ice thickness (m) on the cube grid (see :func:`read_thickness`).
    boundary : polygon in the cube CRS; cells whose centres lie inside form ``mask``.
    upscale : ``k x k`` block means before differencing (see the module docstring).
    column_factor : depth-averaged / surface speed (1.0 = plug flow).
    scheme : ``centred`` or ``upwind`` face thickness.
    thickness_error : thickness uncertainty (m) on the cube grid.
    allow_partial : where part of the boundary polygon has no velocity or thickness (or
        lies off the grid), integrate over the covered cells only and report ``coverage``
        (the covered share of the polygon's area) instead of raising.
    error_model : how velocity and thickness errors correlate
        (:class:`itscube.temporal.ErrorModel`; default ``ErrorModel()``), used for the error
        of the integrated divergence.

    Returns
    -------
    xarray.Dataset
        ``flux_x``, ``flux_y`` (cell-centred ``H u_bar``, m^2/yr), ``flux_divergence``,
        ``dynamic_dhdt`` (m/yr), ``flux_divergence_error`` (when errors exist),
        ``thickness`` (m), ``mask`` (with a boundary) and, per leading index,
        ``integrated_divergence`` (m^3/yr), ``face_flux`` (net flux through the mask's
        boundary faces, m^3/yr), ``area`` (m^2 of the cells integrated), ``coverage``
        (share of the polygon's area with data) and ``gauss_residual`` (m^3/yr); with
        errors, ``integrated_divergence_error`` (m^3/yr, 1 sigma) and its velocity and
        thickness parts, propagated through the boundary integral (see the module
        docstring).

    Raises
    ------
    InputError
        Part of the polygon's area lacks data (the message gives the share) and
        ``allow_partial`` is False (raised when computed, for dask-backed input); the
        polygon contains no cell centre; bad options.
    CubeFormatError
        ``vx`` or ``vy`` is missing.

    Examples
    --------
    Uniform thickness in a flow that stretches at 0.01 /yr: ``div(H u) = H du/dx``.

    >>> import numpy as np, xarray as xr
    >>> x = np.arange(10) * 100.0
    >>> X, Y = np.meshgrid(x, x)
    >>> ds = xr.Dataset({"vx": (("y", "x"), 0.01 * X), "vy": (("y", "x"), 0 * X)},
    ...                 coords={"x": x, "y": x})
    >>> H = xr.DataArray(np.full(X.shape, 200.0), coords=ds.coords, dims=("y", "x"))
    >>> float(flux_divergence(ds, H)["flux_divergence"][5, 5])
    2.0
    """
    k = _check_options(ds, scheme, upscale, column_factor)
    u, v, su, sv, h, sh, with_errors = _inputs(ds, thickness, thickness_error, k, column_factor)
    x, y = u.x.values, u.y.values
    dx, dy = spacing(x, "x"), spacing(y, "y")
    mask, on_grid = None, 1.0
    if boundary is not None:
        X, Y = np.meshgrid(x, y)
        mask = shapely.contains_xy(boundary, X, Y)
        if not mask.any():
            raise InputError("the boundary polygon contains no cell centre of the grid")
        on_grid = boundary.intersection(sg.box(*grid_bounds(x, y))).area / boundary.area
    maps: list[list[str]] = [["y", "x"]] * 4
    scalars: list[list[str]] = [[]] * 4
    fx, fy, div, err, integ, faces, cells, coverage = xr.apply_ufunc(
        _cells,
        h,
        dims_last(u),
        dims_last(v),
        sh,
        dims_last(su),
        dims_last(sv),
        input_core_dims=[["y", "x"]] * 6,
        output_core_dims=maps + scalars,
        kwargs=dict(
            mask=mask,
            dx=dx,
            dy=dy,
            scheme=scheme,
            on_grid=on_grid,
            with_errors=with_errors,
            allow_partial=allow_partial,
        ),
        dask="parallelized",
        output_dtypes=["f4"] * 4 + ["f8"] * 4,
    )
    out = xr.Dataset(coords={c: u.coords[c] for c in u.coords})
    out["flux_x"] = fx.assign_attrs(units="m2 yr-1", long_name="ice flux H u_bar, x component")
    out["flux_y"] = fy.assign_attrs(units="m2 yr-1", long_name="ice flux H v_bar, y component")
    out["flux_divergence"] = div.assign_attrs(
        units="m yr-1", long_name="flux divergence div(H u_bar)"
    )
    out["dynamic_dhdt"] = (-div).assign_attrs(
        units="m yr-1", long_name="dynamic thickness change rate -div(H u_bar)"
    )
    if with_errors:
        out["flux_divergence_error"] = err.assign_attrs(
            units="m yr-1", long_name="uncertainty of the flux divergence"
        )
    out["thickness"] = h.astype("f4").assign_attrs(units="m", long_name="ice thickness")
    if mask is not None:
        _add_integrals(out, mask, integ, faces, cells, coverage, abs(dx * dy))
        if with_errors:
            _add_integral_errors(
                out, ds, thickness, thickness_error, column_factor, mask, k, scheme, error_model
            )
    out.attrs.update(
        itscube_product="flux_divergence",
        itscube_upscale=k,
        itscube_column_factor=float(column_factor),
        itscube_scheme=scheme,
        itscube_rho_ice=RHO_ICE,
    )
    return with_crs(out, ds.rio.crs)


def _add_integrals(out, mask, integ, faces, cells, coverage, cell_area) -> None:
    out["mask"] = (
        ("y", "x"),
        mask.astype("u1"),
        {"long_name": "cell centre inside the boundary", "units": "1"},
    )
    out["integrated_divergence"] = integ.assign_attrs(
        units="m3 yr-1",
        long_name="sum of divergence x cell area over the covered cells in the mask",
    )
    out["coverage"] = coverage.assign_attrs(
        units="1", long_name="share of the boundary polygon's area with data"
    )
    out["face_flux"] = faces.assign_attrs(
        units="m3 yr-1", long_name="net outflow through the mask's boundary faces"
    )
    out["gauss_residual"] = (integ - faces).assign_attrs(units="m3 yr-1")
    out["area"] = (cells * cell_area).assign_attrs(units="m2", long_name="area integrated")


def _integral_error(h, u, v, su, sv, sh, *, mask, k, dx, dy, scheme, model):
    """Variances (m^3/yr)^2 of the boundary outflow from velocity and from thickness errors
    for each map of ``u``/``v`` (coarse grid), errors on the fine grid (see the module
    docstring)."""
    lead = u.shape[:-2]
    out = np.full((*lead, 2), np.nan)
    fine = su.shape[-2:]
    fdx, fdy = dx / k, dy / k
    for idx in np.ndindex(*lead):
        div, _, _ = _k.divergence_fv(h, u[idx], v[idx], dx, dy, scheme)
        m = mask & np.isfinite(div)
        gs = _k.boundary_weights(m, h, u[idx], v[idx], dx, dy, scheme)
        gu, gv, gh = (_to_fine(g, k, fine) for g in gs)
        var_v = _k.correlated_variance(
            gu, su[idx], fdx, fdy, model.correlation_m, model.offset
        ) + _k.correlated_variance(gv, sv[idx], fdx, fdy, model.correlation_m, model.offset)
        var_h = _k.correlated_variance(
            gh, sh, fdx, fdy, model.thickness_correlation_m, model.thickness_offset
        )
        out[idx] = (var_v, var_h)
    return out


def _to_fine(g, k, shape):
    """Coarse-cell weights spread evenly over the ``k x k`` pixels of each block."""
    out = np.zeros(shape)
    fine = np.kron(g, np.ones((k, k))) / (k * k)
    out[: fine.shape[0], : fine.shape[1]] = fine
    return out


def _add_integral_errors(
    out, ds, thickness, thickness_error, column_factor, mask, k, scheme, model
):
    su, sv, sh = _fine_errors(ds, thickness, thickness_error, column_factor)
    coarse = out["flux_x"]
    u = (ds["vx"] * column_factor) if k == 1 else block_mean(ds["vx"] * column_factor, k)
    v = (ds["vy"] * column_factor) if k == 1 else block_mean(ds["vy"] * column_factor, k)
    fine = {"y": "y_fine", "x": "x_fine"}
    if u.chunks is not None:  # whole maps per task, as the flux kernel
        u, v, su, sv = (a.chunk({"y": -1, "x": -1}) for a in (u, v, su, sv))
    var = xr.apply_ufunc(
        _integral_error,
        out["thickness"].astype("f8"),
        dims_last(u),
        dims_last(v),
        dims_last(su).rename(fine),
        dims_last(sv).rename(fine),
        sh.transpose("y", "x").rename(fine).load(),
        input_core_dims=[["y", "x"]] * 3 + [["y_fine", "x_fine"]] * 3,
        output_core_dims=[["part"]],
        kwargs=dict(
            mask=mask,
            k=k,
            dx=spacing(coarse.x.values, "x"),
            dy=spacing(coarse.y.values, "y"),
            scheme=scheme,
            model=model or ErrorModel(),
        ),
        dask="parallelized",
        output_dtypes=["f8"],
        dask_gufunc_kwargs={"output_sizes": {"part": 2}},
    )
    sd = np.sqrt(var)
    out["integrated_divergence_error_velocity"] = sd.isel(part=0).assign_attrs(
        units="m3 yr-1", long_name="1-sigma error of the integrated divergence from velocity"
    )
    out["integrated_divergence_error_thickness"] = sd.isel(part=1).assign_attrs(
        units="m3 yr-1", long_name="1-sigma error of the integrated divergence from thickness"
    )
    out["integrated_divergence_error"] = np.sqrt(var.sum("part")).assign_attrs(
        units="m3 yr-1",
        long_name="1-sigma error of the integrated divergence (itscube error model)",
    )


def boundary_flux(
    res: xr.Dataset, boundary: sg.Polygon, spacing: float | None = None
) -> xr.DataArray:
    """Line integral of ``H u_bar . n`` along the boundary (m^3/yr, outflow positive).

    The polygon is densified to ``spacing`` metres (default a quarter pixel); fluxes are
    interpolated bilinearly from the cell-centred ``flux_x``/``flux_y`` of
    :func:`flux_divergence`. Segments where the flux is unknown make the result NaN.
    Lazy when ``res`` is.

    Raises
    ------
    KeyError
        ``res`` lacks ``flux_x``/``flux_y`` (it is not a :func:`flux_divergence` result).
    """
    dx = 2 * half_cell(res.x.values)
    ring = shapely.geometry.polygon.orient(boundary, 1.0).exterior
    ring = shapely.segmentize(ring, spacing or dx / 4)
    pts = np.asarray(ring.coords)
    mid = 0.5 * (pts[1:] + pts[:-1])
    seg = pts[1:] - pts[:-1]
    # outward normal of a counter-clockwise ring, times segment length: (dy, -dx)
    nx_, ny_ = seg[:, 1], -seg[:, 0]
    xs = xr.DataArray(mid[:, 0], dims="s")
    ys = xr.DataArray(mid[:, 1], dims="s")
    qx = res["flux_x"].interp(x=xs, y=ys)
    qy = res["flux_y"].interp(x=xs, y=ys)
    total = (qx * nx_ + qy * ny_).sum("s", skipna=False)
    total.attrs = {"units": "m3 yr-1", "long_name": "line integral of H u_bar . n"}
    return total


def to_gt(volume_flux):
    """m^3/yr of ice to Gt/yr (``RHO_ICE`` = 917 kg/m^3).

    >>> round(to_gt(1e12 / RHO_ICE), 6)
    1.0
    """
    return volume_flux * RHO_ICE / 1e12


# ------------------------------------------------------------------ budget


def flux_budget(res: xr.Dataset, line: xr.DataArray, labels: list[str]) -> list[dict]:
    """The flux budget inside the boundary, one row per period of ``res``.

    Each row: ``area_m2``, ``integrated_divergence_m3_yr`` and ``_gt_yr``, the boundary
    ``face_flux_m3_yr`` and ``gauss_residual_m3_yr`` (discrete Gauss check), the
    ``line_integral_flux_m3_yr`` (NaN when coverage is partial: it runs along the whole
    polygon), ``mean_dynamic_dhdt_m_yr`` and ``coverage``; with errors, the 1-sigma error
    of the integrated divergence (m^3/yr, and its velocity and thickness parts) under the
    error model, and the headline ``±`` and ``low``/``high`` (±1 sigma) in Gt/yr.
    """
    rows = []
    for i, lab in enumerate(labels):
        r = res.isel(time=i)
        integ = float(r["integrated_divergence"])
        coverage = float(r["coverage"])
        lin = float(line.isel(time=i)) if coverage >= 0.999 else float("nan")
        row = {
            "period": lab,
            "area_m2": float(r["area"]),
            "integrated_divergence_m3_yr": integ,
            "face_flux_m3_yr": float(r["face_flux"]),
            "gauss_residual_m3_yr": float(r["gauss_residual"]),
            "line_integral_flux_m3_yr": lin,
            "line_minus_integrated_m3_yr": lin - integ,
            "relative_difference": (lin - integ) / abs(integ) if integ else float("nan"),
            "integrated_divergence_gt_yr": float(to_gt(integ)),
            "mean_dynamic_dhdt_m_yr": -integ / float(r["area"]),
            "coverage": coverage,
        }
        if "integrated_divergence_error" in r:
            sig = float(r["integrated_divergence_error"])
            row["error_m3_yr"] = sig
            row["error_velocity_m3_yr"] = float(r["integrated_divergence_error_velocity"])
            row["error_thickness_m3_yr"] = float(r["integrated_divergence_error_thickness"])
            row["integrated_divergence_error_gt_yr"] = float(to_gt(sig))
            row["integrated_divergence_low_gt_yr"] = float(to_gt(integ - sig))
            row["integrated_divergence_high_gt_yr"] = float(to_gt(integ + sig))
        rows.append(row)
    return rows
