"""Surface strain rates of ITS_LIVE velocity fields at several length scales.

Conventions (velocities ``u = vx``, ``v = vy`` in m/yr on the cube's projected grid;
strain rates in 1/yr)
----------------------------------------------------------------------------------
* Derivatives divide by coordinate differences in metres, never by array steps, so
  ITS_LIVE's descending ``y`` gives the right sign.
* ``exx = du/dx``, ``eyy = dv/dy``, ``exy = (du/dy + dv/dx)/2``,
  ``rotation = (dv/dx - du/dy)/2`` (counter-clockwise positive),
  ``dilatation = exx + eyy`` (= ``-ezz`` for incompressible ice: positive values stretch
  the surface horizontally and thin the ice).
* ``effective = sqrt(exx^2 + eyy^2 + exx*eyy + exy^2)``: the second invariant of the
  full 3-D tensor with ``ezz = -(exx + eyy)``. Some tools (e.g. glacier-strain-tools)
  report the 2-D form ``sqrt((exx^2 + eyy^2)/2 + exy^2)`` instead.
* Principal rates ``e1, e2 = (exx+eyy)/2 ± sqrt((exx-eyy)^2/4 + exy^2)`` (``e1 >= e2``);
  ``e1_angle`` is the direction of ``e1`` in degrees counter-clockwise from +x,
  ``atan2(2 exy, exx - eyy)/2`` in (-90, 90].
* Flow-aligned components (Bindschadler et al., 1996) rotate the tensor by the local
  flow direction ``theta = atan2(vy, vx)``: ``longitudinal`` (along flow),
  ``transverse`` (across flow) and ``shear`` (= ``(eyy - exx) sin(theta) cos(theta) +
  exy cos(2 theta)``, positive when the flow speeds up to the left of the flow line).
  Undefined (NaN) where the speed is 0.
* Length scale (``upscale = k``):
    - ``gradient`` (default): centred differences over ``±k`` pixels on the native grid,
      baseline ``L = 2 k dx``; NaN within ``k`` pixels of the edge.
    - ``coarsen``: ``k x k`` block means (a block touching NaN is NaN), then centred
      differences over ``±1`` coarse pixel (same baseline ``2 k dx``); output on the
      coarse grid.
    - ``log``: logarithmic "virtual stake" strain (Alley et al., 2018) with stakes ``k``
      pixels from the centre (see :func:`itscube._kernels.log_strain`).
    - ``strided=True`` (gradient only) keeps every ``k``-th pixel, matching the original
      notebooks that subsampled ``v[::k, ::k]`` before differencing.
* Uncertainty: ``exx_error = sqrt(s_u(x+L/2)^2 + s_u(x-L/2)^2) / L`` (likewise
  ``eyy_error`` from ``vy_error``), ``exy_error = 0.5 sqrt((s_u(y±)^2)/L^2 +
  (s_v(x±)^2)/L^2)``, ``dilatation_error = sqrt(exx_error^2 + eyy_error^2)``: independent
  errors at the stencil ends (after Poinar & Andrews, 2021). ITS_LIVE errors are largely
  correlated within a layer, which cancels in the difference, so these are upper bounds.
* NaN: a derivative whose stencil touches NaN is NaN, unless ``gap_radius=R`` first fills
  gaps lying within ``R`` pixels of valid data by harmonic inpainting
  (:func:`itscube.gaps.fill_gaps_2d`).

References
----------
Alley, K. E. et al. (2018), Continent-wide estimates of Antarctic strain rates from Landsat 8-
derived velocity grids, J. Glaciol. 64(244), 321-332.
Bindschadler, R. et al. (1996), Surface velocity and mass balance of Ice Streams D and E,
J. Glaciol. 42(142), 461-475.
Poinar, K. and Andrews, L. C. (2021), Challenges in predicting Greenland supraglacial lake
drainages at the regional scale, The Cryosphere 15, 1455-1483.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr

from itscube._kernels import strain as _kernels
from itscube._typing import STRAIN_METHODS, StrainMethod, check_choice
from itscube.errors import CubeFormatError, InputError
from itscube.gaps import fill_gaps
from itscube.grid import block_error, block_mean, check_upscale, spacing, time_dim, with_crs
from itscube.temporal import ErrorModel

__all__ = [
    "COMPONENTS",
    "ERROR_COMPONENTS",
    "FLOW_ALIGNED",
    "LONG_NAMES",
    "MIN_SPEED",
    "error_model_factor",
    "strain_rates",
    "strain_time_dim",
]

COMPONENTS = _kernels.COMPONENTS
ERROR_COMPONENTS = _kernels.ERROR_COMPONENTS

LONG_NAMES = {
    "exx": "strain rate du/dx",
    "eyy": "strain rate dv/dy",
    "exy": "shear strain rate (du/dy + dv/dx)/2",
    "rotation": "rotation rate (dv/dx - du/dy)/2, counter-clockwise positive",
    "dilatation": "horizontal dilatation rate exx + eyy (= -ezz)",
    "effective": "effective strain rate sqrt(exx^2 + eyy^2 + exx eyy + exy^2)",
    "e1": "first (most tensile) principal strain rate",
    "e2": "second (most compressive) principal strain rate",
    "e1_angle": "direction of e1, counter-clockwise from +x",
    "longitudinal": "along-flow (longitudinal) strain rate",
    "transverse": "across-flow (transverse) strain rate",
    "shear": "lateral shear strain rate in flow coordinates",
    "exx_error": "uncertainty of exx",
    "eyy_error": "uncertainty of eyy",
    "exy_error": "uncertainty of exy",
    "dilatation_error": "uncertainty of dilatation",
}


def _units(name: str) -> str:
    return "degree" if name == "e1_angle" else "yr-1"


def _check_upscale(k, ny: int, nx: int, method: str) -> int:
    if method == "coarsen":
        return check_upscale(k, ny, nx, "method coarsen (3 blocks of k pixels)", lambda k: 3 * k)
    return check_upscale(k, ny, nx, f"method {method} (a ±k-pixel stencil)", lambda k: 2 * k + 1)


def _run_kernel(u, v, su, sv, *, x, y, k, method, with_errors, min_speed=0.0, err_scale=1.0):
    shape = u.shape
    lead = shape[:-2]
    ny, nx = shape[-2:]

    def stack(a):
        return np.ascontiguousarray(np.asarray(a, dtype=np.float32).reshape(-1, ny, nx))

    def view(a):  # errors are often per layer: keep the zero-stride broadcast, no copy
        return np.broadcast_to(np.asarray(a, dtype=np.float32), shape).reshape(-1, ny, nx)

    u3, v3 = stack(u), stack(v)
    if with_errors:
        su3, sv3 = view(su), view(sv)
        if all(a.strides[1:] == (0, 0) for a in (su3, sv3)):  # one error per layer
            su3, sv3 = np.ascontiguousarray(su3[:, :1, :1]), np.ascontiguousarray(sv3[:, :1, :1])
    else:
        su3 = sv3 = np.zeros((1, 1, 1), np.float32)
    fn = _kernels.log_strain if method == "log" else _kernels.gradient_strain
    nc = len(COMPONENTS) + (len(ERROR_COMPONENTS) if with_errors else 0)
    out = np.empty((u3.shape[0], nc, ny, nx), np.float32)
    fn(u3, v3, su3, sv3, x, y, k, with_errors, out, float(min_speed), float(err_scale))
    return out.reshape(*lead, out.shape[1], ny, nx)


MIN_SPEED = 5.0
"""Speed (m/yr) below which flow-aligned components are masked: the flow direction
``atan2(vy, vx)`` is noise where the speed is within the velocity errors (a few m/yr for
ITS_LIVE composites)."""
FLOW_ALIGNED = ("longitudinal", "transverse", "shear")


def strain_rates(
    ds: xr.Dataset,
    upscale: int | Sequence[int] = 1,
    method: StrainMethod = "gradient",
    *,
    errors: bool = True,
    gap_radius: float | None = None,
    strided: bool = False,
    min_speed: float = MIN_SPEED,
    error_model: ErrorModel | None = None,
) -> xr.Dataset:
    """Strain-rate tensor, invariants and flow-aligned components of a velocity cube.

    Parameters
    ----------
    ds : dataset with ``vx``, ``vy`` (m/yr) on ``(..., y, x)`` with coordinates in metres,
        e.g. from :func:`itscube.open_cube` (per layer) or
        :func:`itscube.temporal.period_mean` (per period). Optional ``vx_error`` and
        ``vy_error`` (m/yr; per layer or per pixel) give uncertainties. Dask-backed
        inputs stay lazy (spatial dims are put in one chunk; time chunks are kept).
    upscale : half-baseline ``k`` in pixels (length scale ``L = 2 k dx``), or several
        (gradient and log only: they share one grid and stack along a new ``upscale`` dim).
    method : ``gradient`` (default), ``coarsen`` or ``log`` (see the module docstring).
    errors : propagate velocity errors when the cube has them.
    gap_radius : fill NaN gaps within this many pixels of valid data before differencing
        (harmonic inpainting, :func:`itscube.gaps.fill_gaps`); ``0`` or None: off (as in
        :func:`itscube.track`).
    strided : keep every ``k``-th pixel (gradient only; the original notebooks' grid).
    min_speed : speed (m/yr) below which the flow direction is undefined: the flow-aligned
        components (``longitudinal``, ``transverse``, ``shear`` and their errors) are NaN
        there (default :data:`MIN_SPEED`; 0 keeps them everywhere).
    error_model : how velocity errors correlate in space
        (:class:`itscube.temporal.ErrorModel`, default ``ErrorModel()``): a per-map offset
        cancels in every difference, and correlated noise partly does
        (:func:`error_model_factor`).

    Returns
    -------
    xarray.Dataset
        :data:`COMPONENTS` (1/yr; ``e1_angle`` in degrees), :data:`ERROR_COMPONENTS`
        when errors exist, and the velocities ``vx``, ``vy`` used (m/yr), on the input's
        dims (time kept), with the input's CRS. ``attrs`` record the method and scale.

    Raises
    ------
    CubeFormatError
        ``vx``/``vy`` missing or an irregular grid (log method).
    InputError
        Bad ``method``/``upscale`` (below 1, or too large for the grid).
    """
    check_choice(method, STRAIN_METHODS, "method")
    for name in ("vx", "vy"):
        if name not in ds.variables:
            raise CubeFormatError(
                f"the cube has no {name}; strain rates need both vx and vy "
                f"(it has {', '.join(sorted(map(str, ds.data_vars)))})"
            )
    if strided and method != "gradient":
        raise InputError("strided applies to method gradient only", params="strided")
    if min_speed is None or min_speed < 0:
        raise InputError(f"min_speed must be >= 0 m/yr; got {min_speed}", params="min_speed")
    ny, nx = ds.sizes["y"], ds.sizes["x"]
    if not isinstance(upscale, int | np.integer):
        ks = [_check_upscale(k, ny, nx, method) for k in upscale]
        if not ks:
            raise InputError("give at least one upscale", params="upscale")
        if len(ks) > 1:
            if method == "coarsen" or strided:
                raise InputError(
                    "several upscales share one grid only with methods gradient/log "
                    "(not coarsen or strided); call once per upscale",
                    params="strided",
                )
            options: dict[str, Any] = dict(
                errors=errors, gap_radius=gap_radius, min_speed=min_speed, error_model=error_model
            )
            return _stack_upscales([strain_rates(ds, k, method, **options) for k in ks], ks)
        upscale = ks[0]
    k = _check_upscale(upscale, ny, nx, method)
    dx, dy = spacing(ds.x.values, "x"), spacing(ds.y.values, "y")
    if method == "log" and abs(abs(dx) - abs(dy)) > 1e-6 * abs(dx):
        raise CubeFormatError("method log needs square pixels")
    u, v, su, sv = _inputs(ds, k, method, errors, gap_radius)
    with_errors = su is not None
    names = COMPONENTS + (ERROR_COMPONENTS if with_errors else ())
    args = [u, v] + ([su, sv] if with_errors else [])
    kwargs = {
        "x": np.ascontiguousarray(u.x.values, dtype="f8"),
        "y": np.ascontiguousarray(u.y.values, dtype="f8"),
        "k": 1 if method == "coarsen" else k,
        "method": method,
        "min_speed": float(min_speed),  # the flow-aligned mask, in the kernel's pass
    }
    if with_errors:  # the error model's factor, applied by the kernel as it writes
        factor = error_model_factor(method, k, 0.5 * (abs(dx) + abs(dy)), error_model)
        kwargs.update(with_errors=True, err_scale=factor)
    kernel = _run_kernel if with_errors else _run_kernel_noerr
    if _spatial_tiles(u):  # tiles with halos of the stencil's k pixels
        stacked = _on_tiles(kernel, args, kwargs, len(names))
    else:
        stacked = xr.apply_ufunc(
            kernel,
            *args,
            input_core_dims=[["y", "x"]] * len(args),
            output_core_dims=[["component", "y", "x"]],
            kwargs=kwargs,
            dask="parallelized",
            output_dtypes=[np.float32],
            dask_gufunc_kwargs={"output_sizes": {"component": len(names)}},
        )
    out = _assemble(stacked, names, u, v, ds, method, k)
    if with_errors:
        for name in ERROR_COMPONENTS:
            out[name].attrs["comment"] = f"error model {error_model or ErrorModel()}"
    if min_speed > 0:
        for name in FLOW_ALIGNED:
            out[name].attrs["masked_below_speed_m_yr"] = float(min_speed)
    if strided:
        out = out.isel(y=slice(None, None, k), x=slice(None, None, k))
    out.attrs.update(
        itscube_product="strain_rates",
        itscube_method=method,
        itscube_upscale=k,
        itscube_length_scale_m=2 * k * abs(dx),
        itscube_strided=int(strided),
        itscube_gap_radius_px=float(gap_radius or 0),
        itscube_min_speed_m_yr=float(min_speed),
        itscube_conventions="see itscube.strain module docstring",
    )
    return with_crs(out, ds.rio.crs)


def _merge_thin(chunks: tuple[int, ...], k: int) -> tuple[int, ...]:
    """Tile sizes along one axis with every tile thinner than the halo ``k`` merged into
    its neighbour (a halo cannot reach past the next tile).

    >>> _merge_thin((13, 13, 13, 2), 3)
    (13, 13, 15)
    """
    out: list[int] = []
    for c in chunks:
        if out and (c < k or out[-1] < k):
            out[-1] += c
        else:
            out.append(c)
    return tuple(out)


def _spatial_tiles(u: xr.DataArray) -> bool:
    """Whether ``u`` comes in several dask chunks along y or x (tiles of a large map)."""
    return u.chunks is not None and (len(u.chunksizes["y"]) > 1 or len(u.chunksizes["x"]) > 1)


def _on_tiles(kernel, args: list[xr.DataArray], kwargs: dict, nc: int) -> xr.DataArray:
    """The kernel on each spatial tile grown by a halo of ``k`` pixels from its neighbours
    (dask ``overlap``, nothing added at the map's edges), the halo trimmed from the result:
    a pixel's stencil reaches ``k`` pixels, so every value equals the whole-map one while a
    task holds one tile, not the map."""
    import dask.array as da

    k, x, y = kwargs["k"], kwargs["x"], kwargs["y"]
    order = [d for d in args[0].dims if d not in ("y", "x")] + ["y", "x"]
    args = [a.transpose(*order) for a in args]
    u = args[0]
    ax_y, ax_x = u.ndim - 2, u.ndim - 1
    depth = {i: 0 for i in range(u.ndim)} | {ax_y: k, ax_x: k}
    padded = [da.overlap.overlap(a.data, depth, "none") for a in args]
    edges = [np.cumsum((0, *u.chunksizes[d])) for d in ("y", "x")]

    def tile(*blocks, block_info=None):
        jy, jx = block_info[0]["chunk-location"][ax_y], block_info[0]["chunk-location"][ax_x]
        (ey, ex), (cy, cx) = edges, (len(edges[0]) - 2, len(edges[1]) - 2)
        y0, y1 = ey[jy] - (k if jy > 0 else 0), ey[jy + 1] + (k if jy < cy else 0)
        x0, x1 = ex[jx] - (k if jx > 0 else 0), ex[jx + 1] + (k if jx < cx else 0)
        return kernel(*blocks, **{**kwargs, "x": x[x0:x1], "y": y[y0:y1]})

    lead = padded[0].chunks[: u.ndim - 2]
    out = da.map_blocks(tile, *padded, new_axis=u.ndim - 2, dtype=np.float32,
                        chunks=(*lead, (nc,), *padded[0].chunks[-2:]))  # fmt: skip
    trim = {i: 0 for i in range(u.ndim + 1)} | {u.ndim - 1: k, u.ndim: k}
    out = da.overlap.trim_internal(out, trim, boundary="none")
    dims = (*u.dims[:-2], "component", "y", "x")
    return xr.DataArray(out, dims=dims, coords={c: u.coords[c] for c in u.coords})


def _stack_upscales(parts: list[xr.Dataset], ks: list[int]) -> xr.Dataset:
    """Results at several upscales on one grid, stacked along ``upscale``."""
    stacked = [p[[n for n in p.data_vars if n in LONG_NAMES]] for p in parts]
    res = xr.concat(stacked, dim="upscale", combine_attrs="drop_conflicts")
    res = res.merge(parts[0].drop_vars(list(res.data_vars)), combine_attrs="override")
    res["upscale"] = ("upscale", np.asarray(ks, dtype="int32"))
    res["upscale"].attrs.update(long_name="half-baseline", units="pixel")
    res.attrs.pop("upscale", None)
    res.attrs.pop("length_scale_m", None)
    return res


def _inputs(ds: xr.Dataset, k: int, method: str, errors: bool, gap_radius: float | None):
    """Velocities and their errors (None without errors) as the kernels take them: gaps
    filled, ``k x k`` block means for ``coarsen``, whole maps per dask chunk."""
    u, v = ds["vx"].astype("float32", copy=False), ds["vy"].astype("float32", copy=False)
    with_errors = errors and "vx_error" in ds.variables and "vy_error" in ds.variables
    if gap_radius is not None and not gap_radius >= 0:
        raise InputError(
            f"gap_radius must be >= 0 pixels (0: no filling); got {gap_radius}",
            params="gap_radius",
        )
    if gap_radius:
        u, v = fill_gaps(u, gap_radius), fill_gaps(v, gap_radius)
    if method == "coarsen":
        u, v = block_mean(u, k), block_mean(v, k)
    su = sv = None
    if with_errors:
        su = ds["vx_error"].astype("float32", copy=False).broadcast_like(ds["vx"])
        sv = ds["vy_error"].astype("float32", copy=False).broadcast_like(ds["vy"])
        if method == "coarsen":
            su, sv = block_error(su, k), block_error(sv, k)
        su, sv = su.broadcast_like(u), sv.broadcast_like(v)
    # spatial tiles for the ±k stencil of "gradient" only: the log method's stakes move
    # as far as the flow takes them, and block means and gap filling need whole maps
    tiles = method == "gradient" and not gap_radius and _spatial_tiles(u)
    if u.chunks is not None:
        if not tiles:
            u, v = u.chunk({"y": -1, "x": -1}), v.chunk({"y": -1, "x": -1})
        else:  # spatial tiles are kept (strain runs on them with halos of k pixels)
            u = u.chunk({d: _merge_thin(u.chunksizes[d], k) for d in ("y", "x")})
            v = v.chunk(u.chunksizes)
        if su is not None and sv is not None:
            su, sv = su.chunk(u.chunksizes), sv.chunk(v.chunksizes)
    return u, v, su, sv


def _assemble(stacked, names, u, v, ds: xr.Dataset, method: str, k: int) -> xr.Dataset:
    """One variable per component, the velocities used, and the per-layer metadata."""
    lead = [d for d in u.dims if d not in ("y", "x")]
    dims = (*lead, "y", "x")
    stacked = stacked.transpose(*lead, "component", "y", "x")
    variables = {  # Variables, not DataArrays: one Dataset built without aligning each
        name: xr.Variable(
            dims,
            stacked.variable[(slice(None),) * len(lead) + (i,)].data,
            {"units": _units(name), "long_name": LONG_NAMES[name]},
        )
        for i, name in enumerate(names)
    }
    for name, src in (("vx", u), ("vy", v)):
        attrs = {"units": "m yr-1", "long_name": f"{name[1]} velocity used"}
        variables[name] = xr.Variable(dims, src.transpose(*dims).data, attrs)
    coords = {c: u.coords[c].variable for c in u.coords if c != "component"}
    out = xr.Dataset(variables, coords=coords)
    tdim = next((d for d in lead if d in ("mid_date", "time")), None)
    if tdim is not None:
        for vname, var in ds.data_vars.items():
            if var.dims == (tdim,) and vname not in out:
                out[vname] = var
    for name in ("time_bnds", "period", "n_layers"):
        if name not in ds.variables or name in out:
            continue
        if method == "coarsen" and {"y", "x"} <= set(ds[name].dims):
            # a block mean rests on its least-supported pixel
            coarse = ds[name].coarsen(y=k, x=k, boundary="trim").min()
            out[name] = coarse.assign_coords(y=out.y, x=out.x).assign_attrs(
                ds[name].attrs, long_name="fewest layers behind a pixel of the block"
            )
        else:
            out[name] = ds[name]
    # the source store's codecs (Zarr v2 Blosc, int16 packing) are not the result's: a
    # result written with to_zarr/to_netcdf gets the writer's defaults
    return out.drop_encoding()


def error_model_factor(method: str, k: int, dx: float, model: ErrorModel | None = None) -> float:
    """Ratio of a centred difference's error under ``model`` to its error for independent
    pixels (what the kernels propagate), for one velocity component with the same error
    ``s`` at every pixel of the stencil (1).

    A difference of values ``2 k`` pixels apart (``gradient``, ``log``) or of two ``k x k``
    block means ``2 k`` pixels apart (``coarsen``) loses the per-map offset entirely, and
    the noise as far as it is correlated: the variance is
    ``(1 - offset^2) sum_qr c_q c_r rho(q - r)`` for the stencil weights ``c``.

    >>> round(error_model_factor("gradient", 1, 120.0, ErrorModel(0.0, 0.0)), 6)
    1.0
    >>> round(error_model_factor("gradient", 1, 120.0, ErrorModel(1.0, 0.0)), 6)
    0.0
    """
    model = model or ErrorModel()
    ell = model.correlation_m
    if method == "coarsen":
        ii, jj = np.meshgrid(np.arange(k), np.arange(k), indexing="ij")
        lo = np.column_stack([ii.ravel(), jj.ravel() - k])  # block centred at -k
        hi = np.column_stack([ii.ravel(), jj.ravel() + k])  # and at +k pixels
        pts = np.vstack([lo, hi]) * dx
        c = np.concatenate([-np.ones(k * k), np.ones(k * k)]) / (k * k)
        independent = 2.0 / (k * k)  # block_error: s / k per block
    else:
        pts = np.array([[0.0, -k], [0.0, k]]) * dx
        c = np.array([-1.0, 1.0])
        independent = 2.0
    r2 = ((pts[:, None, :] - pts[None, :, :]) ** 2).sum(-1)
    rho = np.exp(-r2 / (2 * ell**2)) if ell > 0 else (r2 == 0).astype("f8")
    modelled = (1 - model.offset**2) * float(c @ rho @ c)
    return float(np.sqrt(max(modelled, 0.0) / independent))


def _run_kernel_noerr(u, v, *, x, y, k, method, min_speed=0.0):
    return _run_kernel(
        u, v, None, None, x=x, y=y, k=k, method=method, with_errors=False, min_speed=min_speed
    )


def strain_time_dim(res: xr.Dataset) -> str | None:
    """The time dimension of a strain result (``mid_date``, ``time``), if any."""
    try:
        return time_dim(res)
    except CubeFormatError:
        return None
