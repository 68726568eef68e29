"""Lagrangian tracking of surface points through ITS_LIVE velocity fields.

Velocity in time
----------------
The cube is first reduced to a series of composite fields (:func:`velocity_series`):
``period="year" | "season" | "month"`` (or any pandas frequency) gives
inverse-variance-weighted means of the image pairs whose whole acquisition span falls
inside each bin (:func:`itscube.temporal.period_mean` with ``within_span``; a bin with no
such pair is empty, and the gap fallback below fills it); ``steady=True`` gives one mean
field over the window. Each composite is **piecewise constant over its bin**
``[start, end)``, and the step schedule is split at bin edges, so a time-varying uniform
flow is integrated exactly.
Times before the first or after the last bin use the nearest composite.

Space and steps
---------------
Bilinear interpolation in x/y (pixel centres, descending y handled through the signed
spacing); fixed steps of ``dt_days`` (the last one shortened to hit the end date exactly);
``rk4`` (default), ``rk2`` (midpoint) or ``euler``.

Gaps
----
Where a composite has no data at a pixel, it is filled first from the nearest composite in
time that has data there (flag bit 1), then, if still empty, by harmonic inpainting from
data within ``gap_radius`` pixels (flag bit 2). A point whose interpolation needs a pixel
that is still empty stops with status ``no_data``; a point leaving the grid stops with
status ``out_of_domain``. Points never move with a silent zero velocity.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TypeAlias

import dask
import dask.array as da
import numpy as np
import pandas as pd
import pyproj
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr
from scipy.ndimage import gaussian_filter

from itscube._compat import renamed_params
from itscube._kernels.advect import ORDERS, advect, output_steps
from itscube._kernels.gaps import fill_time_space
from itscube._typing import ADVECTION_METHODS, AdvectionMethod, CRSLike, Estimator, check_choice
from itscube.cluster import current_client, worker_count
from itscube.errors import InputError
from itscube.geometry import check_degrees, parse_crs
from itscube.grid import grid_bounds, spacing, time_dim
from itscube.temporal import (
    PERIOD_ALIASES,
    ErrorModel,
    PeriodBin,
    bin_means,
    period_mean,
    resolve_estimator,
    span_bins,
)
from itscube.window import DateLike, date_window

__all__ = [
    "EXTRAPOLATED",
    "STATUS",
    "SeedsLike",
    "data_coverage",
    "displacement_field",
    "ensemble_spread",
    "error_fields",
    "step_schedule",
    "track",
    "track_blocks",
    "velocity_series",
]

DAYS_PER_YEAR = 365.25
STATUS = ("ok", "out_of_domain", "no_data", "extrapolated")
"""Point status: ``extrapolated`` points (``extrapolate=True``) moved for part of the window
on the nearest velocity field in time, outside the dates the cube covers."""
EXTRAPOLATED = 4
"""Fill-flag bit of a step taken outside the cube's dates (``extrapolate=True``)."""
COMPOSITES = PERIOD_ALIASES


# ------------------------------------------------------------------ fields


@renamed_params(composite="period")
def velocity_series(
    ds: xr.Dataset,
    start: DateLike,
    end: DateLike,
    period: str | None = None,
    steady: bool = False,
    estimator: Estimator = "auto",
) -> xr.Dataset:
    """Composite velocity fields with bin bounds ``time_bnds`` (see the module docstring).

    With the span-aware fit (``estimator`` ``auto`` or ``fit`` on image pairs) the layers
    within 400 days of the window are fitted, and each composite is the fitted model's
    exact mean over its bin (``period``, default ``month``); ``steady`` gives the
    model's mean over the window ``[start, end)``. With ``pair-mean`` each composite is
    the inverse-variance mean of the pairs whose whole span lies in the bin (default
    ``year``). Annual cubes use their own layers (bins = calendar years) unless
    ``steady``.
    """
    tdim = time_dim(ds)
    lo, hi = sorted((pd.Timestamp(start), pd.Timestamp(end)))
    t = ds[tdim].values
    near = (t >= np.datetime64(lo - pd.Timedelta(days=400))) & (
        t <= np.datetime64(hi + pd.Timedelta(days=400))
    )
    sub = ds.isel({tdim: np.nonzero(near)[0]}) if near.any() else ds  # mid_date unsorted
    est = resolve_estimator(sub, estimator)
    if steady and period is not None:
        raise InputError(
            "steady holds one mean field over the whole window; drop period",
            params=("steady", "period"),
        )
    if steady:
        if est == "fit":
            whole = PeriodBin(f"{lo:%Y%m%d}-{hi:%Y%m%d}", lo, hi, np.arange(sub.sizes[tdim]))
            mean = bin_means(sub, [whole], estimator="fit", period="all")
        else:
            inside = (sub[tdim].values >= np.datetime64(lo)) & (
                sub[tdim].values <= np.datetime64(hi)
            )
            window = sub.isel({tdim: np.nonzero(inside)[0]})
            mean = period_mean(window if window.sizes[tdim] else sub, "all", estimator=est)
        wide = np.array([["1678-01-01", "2261-01-01"]], dtype="datetime64[ns]")
        return mean.assign(time_bnds=(("time", "bnds"), wide))
    default = "month" if est == "fit" else "year"
    key = period or default
    freq = "YS" if tdim == "time" else COMPOSITES.get(key, key)
    try:
        if est == "fit":  # periods up to the ends of the spans: the whole window covered
            return bin_means(sub, span_bins(sub, freq), estimator="fit", period=freq)
        return period_mean(sub, freq, within_span=True, estimator=est)
    except InputError as exc:
        if exc.params and "estimator" in exc.params:
            raise
        raise InputError(
            f"period {period!r} is not month, season, year or a pandas frequency",
            params="period",
        ) from exc


def data_coverage(ds: xr.Dataset, bnds: np.ndarray, steady: bool) -> tuple:
    """``[start, end)`` of the dates the velocity data cover: the composite bins with data,
    or for a steady field the first to the last acquisition (annual cubes: whole years)."""
    if not steady:
        return pd.Timestamp(bnds[0, 0]), pd.Timestamp(bnds[-1, 1])
    tdim = time_dim(ds)
    if tdim == "time":
        years = pd.DatetimeIndex(ds[tdim].values).year
        return pd.Timestamp(f"{years.min()}-01-01"), pd.Timestamp(f"{years.max() + 1}-01-01")
    if "acquisition_date_img1" in ds and "acquisition_date_img2" in ds:
        a = pd.Timestamp(np.nanmin(ds["acquisition_date_img1"].values))
        b = pd.Timestamp(np.nanmax(ds["acquisition_date_img2"].values))
        return a, b
    t = ds[tdim].values
    return pd.Timestamp(t.min()), pd.Timestamp(t.max())


# ------------------------------------------------------------------ API


def _seeds_xy(
    seeds, crs: pyproj.CRS, seeds_crs=None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | list]:
    from pathlib import Path

    ids: list = []
    if isinstance(seeds, str | Path):
        from itscube.io.vector import read_features

        feats = read_features(Path(seeds), "seeds", seeds_crs)
        pts, seeds_crs, ids = feats.points(), feats.crs, list(feats.ids or [])
    elif isinstance(seeds, pd.DataFrame) and "geometry" in seeds.columns:  # GeoDataFrame
        geom = seeds.geometry
        pts = np.column_stack([geom.x.to_numpy(float), geom.y.to_numpy(float)])
        crs_of = getattr(seeds, "crs", None)
        seeds_crs = seeds_crs or (pyproj.CRS(crs_of) if crs_of is not None else None)
        ids = list(seeds["id"]) if "id" in seeds.columns else []
    elif isinstance(seeds, pd.DataFrame):
        cols = {c.lower(): c for c in seeds.columns}
        if "x" in cols and "y" in cols:
            pts = seeds[[cols["x"], cols["y"]]].to_numpy(float)
        elif "lon" in cols and "lat" in cols:
            pts = seeds[[cols["lon"], cols["lat"]]].to_numpy(float)
            seeds_crs = seeds_crs or "EPSG:4326"
        else:
            raise InputError(
                f"seed table has columns {', '.join(map(str, seeds.columns))}; it needs x, y "
                "(metres in the cube's CRS) or lon, lat (degrees), and optionally id",
                params="seeds",
            )
        if "id" in cols:
            ids = list(seeds[cols["id"]])
    else:
        pts = np.asarray(seeds, dtype="f8").reshape(-1, 2)
    if seeds_crs is not None:
        check_degrees(pts[:, 0], pts[:, 1], parse_crs(seeds_crs), "seeds", "seeds_crs")
        tr = pyproj.Transformer.from_crs(seeds_crs, crs, always_xy=True)
        x, y = tr.transform(pts[:, 0], pts[:, 1])
        pts = np.column_stack([x, y])
    return pts[:, 0].copy(), pts[:, 1].copy(), ids or list(range(len(pts)))


def step_schedule(
    t_from: pd.Timestamp, t_to: pd.Timestamp, dt_days: float, edges: np.ndarray
) -> np.ndarray:
    """Step times from ``t_from`` to ``t_to`` (either order): every ``dt_days``, plus every
    composite bin edge in between, ending exactly at ``t_to``."""
    step = pd.Timedelta(days=dt_days)
    if t_to >= t_from:
        n = int(np.floor((t_to - t_from) / step))
        times = [t_from + i * step for i in range(n + 1)]
    else:
        n = int(np.floor((t_from - t_to) / step))
        times = [t_from - i * step for i in range(n + 1)]
    lo, hi = min(t_from, t_to), max(t_from, t_to)
    extra = [pd.Timestamp(e) for e in edges if lo < pd.Timestamp(e) < hi]
    allt = sorted(set(times + extra + [t_to]), reverse=t_to < t_from)
    return np.array(allt, dtype="datetime64[ns]")


def _check_options(method, dt_days, output_every, start, end):
    order = ORDERS[check_choice(method, ADVECTION_METHODS, "method")]
    if not dt_days > 0:
        raise InputError(f"dt_days must be > 0; got {dt_days}", params="dt_days")
    if isinstance(output_every, bool) or int(output_every) != output_every or output_every < 1:
        raise InputError(
            f"output_every must be a whole number of steps >= 1; got {output_every}",
            params="output_every",
        )
    t0, t1 = date_window(start, end)
    t1 = t1 - pd.Timedelta(days=1) if t1 == t1.normalize() else t1
    if t1 <= t0:
        raise InputError(
            f"end {t1.date()} must be after start {t0.date()}", params=("end", "start")
        )
    return order, t0, t1


def _inside_as_lonlat(x0, y0, crs, bounds) -> bool:
    """Whether seeds given as metres would fall inside the grid read as lon/lat degrees."""
    x, y = pyproj.Transformer.from_crs("EPSG:4326", crs, always_xy=True).transform(x0, y0)
    x, y = np.asarray(x), np.asarray(y)
    xmin, ymin, xmax, ymax = bounds
    return bool(((x >= xmin) & (x <= xmax) & (y >= ymin) & (y <= ymax)).any())


def _check_inside(x0, y0, series: xr.Dataset, crs) -> None:
    gx, gy = series.x.values, series.y.values
    xmin, ymin, xmax, ymax = grid_bounds(gx, gy)
    inside = (x0 >= xmin) & (x0 <= xmax) & (y0 >= ymin) & (y0 <= ymax)
    if not inside.any():
        if (
            (np.abs(x0) <= 360).all()
            and (np.abs(y0) <= 90).all()
            and _inside_as_lonlat(x0, y0, crs, (xmin, ymin, xmax, ymax))
        ):
            raise InputError(
                f"the seeds ({x0[0]:g}, {y0[0]:g}) ... look like lon/lat degrees, not metres "
                f"of the cube's {crs}; give seeds_crs EPSG:4326",
                params=("seeds", "seeds_crs"),
            )
        raise InputError(
            f"no seed point lies inside the cube (x {gx.min():.0f}..{gx.max():.0f}, "
            f"y {gy.min():.0f}..{gy.max():.0f} in {crs}); are the seeds in its projection?",
            params="seeds",
        )


def _fields(vx, vy, sx, sy, radius, zu, zv):
    """Filled composite fields (K, ny, nx) and their fill flags; with ``zu``/``zv``
    (standard error fields, (K, ny, nx)) perturbed by the errors ``sx``/``sy``."""
    U, FU = fill_time_space(vx, radius)
    V, FV = fill_time_space(vy, radius)
    if zu is not None:
        U = U + zu * np.nan_to_num(sx)
        V = V + zv * np.nan_to_num(sy)
    return U, V, FU | FV


def error_fields(
    rng: np.random.Generator, k: int, ny: int, nx: int, dx: float, model: ErrorModel, shared: bool
) -> np.ndarray:
    """Standard error fields (k, ny, nx) of :class:`itscube.temporal.ErrorModel`: per
    field ``offset * d + sqrt(1 - offset^2) * n``, ``d`` one standard-normal draw and ``n``
    unit-variance noise with Gaussian correlation of length ``correlation_m`` (white noise
    smoothed by a Gaussian of width ``L / sqrt(2)``); with ``shared`` one field for all k."""
    n_draw = 1 if shared else k
    width = model.correlation_m / abs(dx) / np.sqrt(2)
    out = np.empty((n_draw, ny, nx))
    for i in range(n_draw):
        noise = rng.standard_normal((ny, nx))
        if width > 0:
            noise = gaussian_filter(noise, width, mode="reflect") * np.sqrt(4 * np.pi * width**2)
        out[i] = model.offset * rng.standard_normal() + np.sqrt(1 - model.offset**2) * noise
    return np.broadcast_to(out, (k, ny, nx)) if shared else out


def _advect_points(fields, x0, y0, grid, dt_yr, field_of_step, order, sign, keep):
    U, V, F = fields
    return advect(x0, y0, U, V, F, *grid, dt_yr, field_of_step, order, sign, keep)


def _run_advection(series, x0, y0, schedule, gap_radius, perturb, chunk_points):
    """The advection outputs (see :func:`itscube._kernels.advect.advect`): numpy arrays,
    or dask arrays (one task per ``chunk_points`` points) when ``series`` is dask-backed."""
    if gap_radius is not None and not gap_radius >= 0:
        raise InputError(
            f"gap_radius must be >= 0 pixels (0: no filling); got {gap_radius}",
            params="gap_radius",
        )
    dt_yr, field_of_step, order, sign, keep = schedule
    K = series.sizes["time"]
    zu = zv = None
    if perturb is not None:  # one ensemble member (see ensemble_spread)
        rng, model = perturb
        shape = (K, series.sizes["y"], series.sizes["x"])
        dx = spacing(series.x.values, "x")
        shared = series.attrs.get("itscube_estimator") == "fit"  # one fit: shared in time
        zu, zv = (error_fields(rng, *shape, dx, model, shared) for _ in range(2))
    arrays = [
        series[n].transpose("time", "y", "x").data
        if n in series
        else np.zeros((K, series.sizes["y"], series.sizes["x"]))
        for n in ("vx", "vy", "vx_error", "vy_error")
    ]
    gx, gy = series.x.values, series.y.values
    grid = (float(gx[0]), spacing(gx, "x"), float(gy[0]), spacing(gy, "y"))
    args = (dt_yr, field_of_step, order, sign, keep)
    if not any(isinstance(a, da.Array) for a in arrays):
        fields = _fields(*(np.asarray(a) for a in arrays), gap_radius, zu, zv)
        return _advect_points(fields, x0, y0, grid, *args)
    fields = dask.delayed(_fields)(*arrays, gap_radius, zu, zv)
    parts = []
    for i in range(0, len(x0), chunk_points):
        xs, ys = x0[i : i + chunk_points], y0[i : i + chunk_points]
        out = dask.delayed(_advect_points, nout=9)(fields, xs, ys, grid, *args)
        n, m = len(xs), len(keep)
        shapes = [(n, m)] * 4 + [(n, m), (n,), (n,), (n,), (n,)]
        dtypes = ["f8"] * 4 + ["u1", "u1", "f8", "f8", "i8"]
        parts.append(
            [da.from_delayed(o, s, dtype=t) for o, s, t in zip(out, shapes, dtypes, strict=True)]
        )
    return [da.concatenate(list(col)) for col in zip(*parts, strict=True)]


LONLAT_PART = 100_000
"""Positions per thread when turning track positions into lon/lat."""


def _lonlat(X, Y, crs):
    """Longitude and latitude (degrees) of positions in ``crs`` (NaN where X is NaN), the
    positions split over threads (PROJ releases the GIL; each thread its own transformer,
    as PROJ objects are not shared between threads)."""
    ok = np.isfinite(X) & np.isfinite(Y)
    xs, ys = np.asarray(X, "f8")[ok], np.asarray(Y, "f8")[ok]
    n_parts = max(1, min(os.cpu_count() or 1, xs.size // LONLAT_PART))
    edges = np.linspace(0, xs.size, n_parts + 1).astype(int)

    def part(i: int) -> tuple[np.ndarray, np.ndarray]:
        tr = pyproj.Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
        return tr.transform(xs[edges[i] : edges[i + 1]], ys[edges[i] : edges[i + 1]])

    if n_parts == 1:
        parts = [part(0)]
    else:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(n_parts) as pool:
            parts = list(pool.map(part, range(n_parts)))
    lon, lat = np.full(np.shape(X), np.nan), np.full(np.shape(X), np.nan)
    lon[ok] = np.concatenate([p[0] for p in parts])
    lat[ok] = np.concatenate([p[1] for p in parts])
    return lon, lat


SeedsLike: TypeAlias = np.ndarray | list | pd.DataFrame | str | os.PathLike
"""Seed points: an (N, 2) array or list of x, y; a DataFrame with x, y (or lon, lat) and an
optional id; or a CSV path."""


@renamed_params(composite="period")
def track(
    ds: xr.Dataset,
    seeds: SeedsLike,
    start: DateLike,
    end: DateLike,
    *,
    dt_days: float = 5.0,
    method: AdvectionMethod = "rk4",
    backward: bool = False,
    period: str | None = None,
    steady: bool = False,
    estimator: Estimator = "auto",
    gap_radius: float | None = 3.0,
    seeds_crs: CRSLike | None = None,
    extrapolate: bool = False,
    output_every: int = 1,
    chunk_points: int = 100_000,
    _series: xr.Dataset | None = None,
    _checked: bool = False,
) -> xr.Dataset:
    """Track points through the cube's velocity between two dates.

    Lazy on dask-backed cubes: the composite fields are one task, and each block of
    ``chunk_points`` points is advected by its own task, so that millions of points
    stream (keep memory bounded with ``output_every``).

    Parameters
    ----------
    ds : cube from :func:`itscube.open_cube` (``vx``, ``vy`` in m/yr).
    seeds : (N, 2) array of x, y in the cube CRS (m), a DataFrame with x, y (or lon, lat)
        and optional id columns, or a CSV path.
    start, end : dates. Forward: seeds are at ``start`` and move to ``end``. With
        ``backward=True`` seeds are at ``end`` and move back to ``start``.
    dt_days : step (days); the schedule also stops at composite bin edges.
    method : ``rk4``, ``rk2`` or ``euler``.
    period : ``year``, ``season``, ``month`` or a pandas frequency (sub-yearly cubes);
        default ``month`` with the fit (which then follows the seasonal cycle), ``year``
        with ``pair-mean``.
    steady : use one mean field over the window (flowlines); the field is held over the
        whole window by definition, which may extend past the cube's dates. Not with
        ``period``.
    estimator : ``auto`` (the span-aware fit on image pairs), ``fit`` or ``pair-mean``
        (see :mod:`itscube.temporal`).
    gap_radius : pixels from data within which gaps are filled by harmonic inpainting
        (the spatial gap fallback; 0 or None disables it, as in :func:`itscube.strain_rates`).
    seeds_crs : CRS of array seeds when not in the cube's CRS (e.g. ``EPSG:4326``).
    extrapolate : allow a window that runs past the dates the cube covers: steps outside
        them use the nearest composite in time, are flagged (fill-flag bit 4) and their
        points get status ``extrapolated``. Without it such a window is an error.
    output_every : keep the positions of every n-th step (and the last): the output is
        ``N x S / n`` instead of ``N x S``; displacements use the last valid position.
    chunk_points : points per dask task on dask-backed cubes.

    Returns
    -------
    xarray.Dataset
        dims ``(point, time)``: ``x``, ``y`` (m), ``lon``, ``lat``, ``vx``, ``vy``, ``v``
        (m/yr), ``filled`` (fill flags, see the module docstring); per point ``status``
        (:data:`STATUS`), ``displacement_x``, ``displacement_y``, ``displacement`` (m, start
        to last valid position), ``id``.

    Raises
    ------
    InputError
        Bad dates or options, no seed in the cube, or a window past the cube's dates
        without ``extrapolate``.

    Examples
    --------
    Uniform flow of 100 m/yr toward +x moves a point 100 m per year of 365.25 days (2018
    has 365):

    >>> import numpy as np, xarray as xr
    >>> x = np.arange(0.0, 1200.0, 120.0)
    >>> t = np.array(["2018-07-02", "2019-07-02"], dtype="datetime64[ns]")
    >>> ds = xr.Dataset({"vx": (("time", "y", "x"), np.full((2, 10, 10), 100.0)),
    ...                  "vy": (("time", "y", "x"), np.zeros((2, 10, 10)))},
    ...                 coords={"time": t, "y": x[::-1], "x": x}).rio.write_crs(3413)
    >>> res = track(ds, [[300.0, 500.0]], "2018-01-01", "2019-01-01")
    >>> round(float(res.displacement[0]), 2), str(res.status.values[0])
    (99.93, 'ok')
    """
    order, t0, t1 = _check_options(method, dt_days, output_every, start, end)
    tdim = time_dim(ds)
    if ds.sizes[tdim] == 0:
        raise InputError("the cube has no layers (after the layer filters)")
    crs = ds.rio.crs
    x0, y0, ids = _seeds_xy(seeds, crs, seeds_crs)
    if len(x0) == 0:
        raise InputError("no seed points given", params="seeds")
    series = (
        _series
        if _series is not None  # an ensemble member: the members share one set of fields
        else velocity_series(ds, t0, t1, period, steady, estimator)
    )
    if not _checked:
        _check_inside(x0, y0, series, crs)
    steps = (order, t0, t1, dt_days, output_every, backward)
    schedule, times, mids, (cov0, cov1) = _schedule(ds, series, steps, steady, extrapolate)
    keep = schedule[-1]
    X, Y, VX, VY, flags, status, XE, YE, NS = _run_advection(
        series, x0, y0, schedule, gap_radius, None, chunk_points
    )
    outside = (mids < np.datetime64(cov0)) | (mids > np.datetime64(cov1))
    if outside.any() and not steady:
        flags, status = _flag_extrapolated(X, flags, status, NS, outside, keep)
    dxs, dys = XE - x0, YE - y0
    lon, lat = _lonlat(X, Y, crs) if isinstance(X, np.ndarray) else _lazy_lonlat(X, Y, crs)
    names = np.array(STATUS)
    pt = ("point", "time")
    out = xr.Dataset(
        {
            "x": (pt, X, {"units": "m", "long_name": "x position"}),
            "y": (pt, Y, {"units": "m", "long_name": "y position"}),
            "lon": (pt, lon, {"units": "degrees_east"}),
            "lat": (pt, lat, {"units": "degrees_north"}),
            "vx": (pt, VX, {"units": "m yr-1"}),
            "vy": (pt, VY, {"units": "m yr-1"}),
            "v": (pt, np.hypot(VX, VY), {"units": "m yr-1"}),
            "filled": (pt, flags, {"long_name": FLAG_MEANING}),
            "status": ("point", _names(status, names)),
            "displacement_x": ("point", dxs, {"units": "m"}),
            "displacement_y": ("point", dys, {"units": "m"}),
            "displacement": ("point", np.hypot(dxs, dys), {"units": "m"}),
            "id": ("point", np.asarray(ids)),
        },
        coords={"time": times[keep], "point": np.arange(len(x0))},
        attrs={
            "itscube_product": "tracks",
            "itscube_method": method,
            "itscube_dt_days": float(dt_days),
            "itscube_output_every": int(output_every),
            "itscube_direction": "backward" if backward else "forward",
            "itscube_period": "steady" if steady else _period_name(period, series),
            "itscube_estimator": series.attrs.get("itscube_estimator", ""),
        },
    )
    return out.rio.write_crs(crs, grid_mapping_name="mapping", inplace=True)  # no deep copy


def _schedule(ds: xr.Dataset, series: xr.Dataset, steps: tuple, steady: bool, extrapolate: bool):
    """The advection schedule (step lengths in years, the field of each step, the RK order,
    the direction, the kept steps), the step times and midpoints, and the dates the data
    cover; a window past them is an error unless ``extrapolate`` or ``steady``."""
    order, t0, t1, dt_days, output_every, backward = steps
    bnds = series["time_bnds"].values
    cov0, cov1 = data_coverage(ds, bnds, steady)
    if (t0 < cov0 or t1 > cov1) and not (extrapolate or steady):
        raise InputError(
            f"start/end {t0.date()}..{t1.date()} runs past the dates the cube's velocities "
            f"cover ({cov0.date()}..{(cov1 - pd.Timedelta(seconds=1)).date()}); narrow the "
            "dates, or pass extrapolate to hold the nearest field there (flagged)",
            params=("start", "end", "extrapolate"),
        )
    t_from, t_to = (t1, t0) if backward else (t0, t1)
    times = step_schedule(t_from, t_to, dt_days, np.unique(bnds.ravel()))
    mids = times[:-1] + (times[1:] - times[:-1]) / 2
    starts = bnds[:, 0]
    field_of_step = np.clip(np.searchsorted(starts, mids, side="right") - 1, 0, len(starts) - 1)
    dt_yr = np.abs(np.diff(times).astype("timedelta64[ns]").astype("f8")) / 86400e9 / DAYS_PER_YEAR
    keep = output_steps(len(dt_yr), int(output_every))
    schedule = (dt_yr, field_of_step.astype(np.int64), order, -1.0 if backward else 1.0, keep)
    return schedule, times, mids, (cov0, cov1)


def _period_name(period: str | None, series: xr.Dataset) -> str:
    if period is not None:
        return period
    return "month" if series.attrs.get("itscube_estimator") == "fit" else "year"


FLAG_MEANING = (
    "fallbacks used (bits, summed): 1 nearest composite in time, 2 spatial fill, "
    "4 extrapolated past the cube's dates"
)


def _names(status, names: np.ndarray):
    if isinstance(status, np.ndarray):
        return names[status].astype(str)
    return status.map_blocks(lambda s: names[s].astype(str), dtype=names.dtype)


def _lazy_lonlat(X, Y, crs):
    both = da.map_blocks(
        lambda x, y: np.stack(_lonlat(x, y, crs)),
        X,
        Y,
        new_axis=0,
        chunks=((2,), *X.chunks),
        dtype="f8",
    )
    return both[0], both[1]


def _flag_extrapolated(X, flags, status, NS, outside: np.ndarray, keep: np.ndarray):
    """Flag bit 4 on kept positions reached through a step outside the cube's dates, and
    status ``extrapolated`` for ``ok`` points that took such a step."""
    before = np.concatenate([[0], np.cumsum(outside)])  # outside steps before step index
    kept_outside = np.zeros(len(keep), bool)
    kept_outside[1:] = before[keep[1:]] > before[keep[:-1]]
    flags = np.where(np.isfinite(X) & kept_outside[None, :], flags | EXTRAPOLATED, flags)
    moved = before[NS] > 0 if isinstance(NS, np.ndarray) else NS.map_blocks(lambda n: before[n] > 0)
    status = np.where((status == 0) & moved, np.uint8(3), status)
    return flags.astype("u1"), status.astype("u1")


@renamed_params(composite="period")
def track_blocks(
    ds: xr.Dataset,
    seeds: SeedsLike,
    start: DateLike,
    end: DateLike,
    *,
    block_points: int = 100_000,
    seeds_crs: CRSLike | None = None,
    **kw,
) -> Iterator[xr.Dataset]:
    """:func:`track` for blocks of ``block_points`` seeds, computed one after the other:
    the composite fields are computed once, and each block is yielded as soon as it is
    done (with its ``point`` coordinate numbering the seeds overall), so that a million
    points stream to files in bounded memory. Options are :func:`track`'s."""
    x0, y0, ids = _seeds_xy(seeds, ds.rio.crs, seeds_crs)
    _, t0, t1 = _check_options(
        kw.get("method", "rk4"), kw.get("dt_days", 5.0), kw.get("output_every", 1), start, end
    )
    fields = velocity_series(
        ds, t0, t1, kw.get("period"), kw.get("steady", False), kw.get("estimator", "auto")
    ).compute()
    _check_inside(x0, y0, fields, ds.rio.crs)
    ids = np.asarray(ids)
    n = max(1, int(block_points))
    spans = [(a, min(a + n, len(x0))) for a in range(0, len(x0), n)]

    def seeds_of(a: int, b: int) -> pd.DataFrame:  # one block's table, made when it is due
        return pd.DataFrame({"x": x0[a:b], "y": y0[a:b], "id": ids[a:b]})

    client = current_client()
    if client is None:
        for a, b in spans:
            yield _track_block(ds, seeds_of(a, b), a, b, start, end, fields, kw)
        return
    # on a cluster: the fields once per worker, each block of seeds a task; the blocks
    # come back in order, a bounded number ahead (the client's memory stays bounded)
    light = _coordinates_only(ds)
    shared = client.scatter([light, fields], broadcast=True)
    ahead = 2 * worker_count(client)
    futures: list = []
    for i in range(len(spans) + ahead):
        if i < len(spans):
            a, b = spans[i]
            args = (shared[0], seeds_of(a, b), a, b, start, end, shared[1], kw)
            futures.append(client.submit(_track_block, *args, pure=False))
        if i >= ahead:
            yield futures.pop(0).result()


def _track_block(ds, block: pd.DataFrame, a: int, b: int, start, end, fields, kw) -> xr.Dataset:
    """Track one block of seeds (points ``a`` to ``b`` of the whole) against ``fields``."""
    # the seeds were checked as a whole: a block wholly outside is "out_of_domain"
    res = track(ds, block, start, end, _series=fields, _checked=True, **kw)
    return res.compute().assign_coords(point=np.arange(a, b))


def _coordinates_only(ds: xr.Dataset) -> xr.Dataset:
    """What :func:`track` reads of the cube once the fields exist: the coordinates, the
    grid mapping and the acquisition dates (a steady field's coverage), in memory."""
    keep = [v for v in ("acquisition_date_img1", "acquisition_date_img2", "mapping") if v in ds]
    light = ds[keep].reset_coords(drop=False).load()
    return light.rio.write_crs(ds.rio.crs, grid_mapping_name="mapping", inplace=True)


@renamed_params(composite="period", n="ensemble")
def ensemble_spread(
    ds: xr.Dataset,
    seeds: SeedsLike,
    start: DateLike,
    end: DateLike,
    ensemble: int,
    *,
    seed: int = 0,
    error_model: ErrorModel | None = None,
    **kw,
) -> xr.Dataset:
    """Monte-Carlo end-position spread (m) from the velocity errors.

    Each member perturbs the composite fields by error fields of ``error_model``
    (:class:`itscube.temporal.ErrorModel`, default ``ErrorModel()``) scaled by
    ``vx_error``/``vy_error`` (:func:`error_fields`): with ``pair-mean`` composites
    (independent sets of pairs) each composite gets its own field; fitted composites come
    from one fit, so one field serves all of a member's composites (errors fully correlated
    in time). Components are independent.
    Returns ``spread_x``, ``spread_y`` (standard deviations of the end positions) and
    ``spread`` = sqrt(spread_x^2 + spread_y^2).
    """
    if ensemble < 2:
        raise InputError(f"ensemble needs at least 2 members; got {ensemble}", params="ensemble")
    for name in ("vx_error", "vy_error"):
        if name not in ds.variables:
            raise InputError(f"ensemble needs {name} in the cube", params="ensemble")
    rng = np.random.default_rng(seed)
    model = error_model or ErrorModel()
    order, t0, t1 = _check_options(
        kw.get("method", "rk4"), kw.get("dt_days", 5.0), kw.get("output_every", 1), start, end
    )
    fields = velocity_series(  # once for all members (a fit per member cost minutes)
        ds, t0, t1, kw.get("period"), kw.get("steady", False), kw.get("estimator", "auto")
    ).compute()
    x0, y0, _ = _seeds_xy(seeds, ds.rio.crs, kw.get("seeds_crs"))
    steps = (order, t0, t1, kw.get("dt_days", 5.0), 1, kw.get("backward", False))
    schedule = _schedule(ds, fields, steps, kw.get("steady", False), kw.get("extrapolate", False))
    schedule = (*schedule[0][:-1], np.array([0, len(schedule[0][0])]))  # the end is enough
    gap_radius = kw.get("gap_radius", 3.0)
    ends = [  # each member: its error fields, then the advection alone (no dataset)
        _run_advection(fields, x0, y0, schedule, gap_radius, (rng, model), len(x0))[6:8]
        for _ in range(ensemble)
    ]
    ex = np.stack([np.asarray(e[0]) for e in ends])
    ey = np.stack([np.asarray(e[1]) for e in ends])
    sx, sy = np.nanstd(ex, axis=0, ddof=1), np.nanstd(ey, axis=0, ddof=1)
    return xr.Dataset(
        {
            "spread_x": ("point", sx, {"units": "m"}),
            "spread_y": ("point", sy, {"units": "m"}),
            "spread": (
                "point",
                np.hypot(sx, sy),
                {"units": "m", "long_name": "1-sigma end-position spread"},
            ),
        },
        attrs={"itscube_members": ensemble},
    )


@renamed_params(composite="period", step="grid_step")
def displacement_field(
    ds: xr.Dataset, start: DateLike, end: DateLike, *, grid_step: int = 1, **kw
) -> xr.Dataset:
    """Track every ``grid_step``-th pixel centre and map the displacement (m).

    Returns ``dx``, ``dy``, ``displacement`` (m; NaN where the point did not end ``ok`` or
    ``extrapolated``: a truncated track is not a displacement), ``status`` and
    ``status_code`` (:data:`STATUS` index) on the seed grid (y, x), with the cube's CRS.
    """
    if grid_step < 1:
        raise InputError(f"grid_step must be >= 1 pixel; got {grid_step}", params="grid_step")
    xs, ys = ds.x.values[::grid_step], ds.y.values[::grid_step]
    X, Y = np.meshgrid(xs, ys)
    res = track(ds, np.column_stack([X.ravel(), Y.ravel()]), start, end, **kw).compute()
    shape = X.shape
    status = res.status.values.reshape(shape)
    # a point that left the grid or met a gap stopped early: its displacement is truncated,
    # not slow ice, so it is masked (the status says why)
    ok = np.isin(status, ("ok", "extrapolated"))

    def masked(v):
        return np.where(ok, v.values.reshape(shape), np.nan)

    code = np.array([STATUS.index(s) for s in status.ravel()], np.uint8).reshape(shape)
    out = xr.Dataset(
        {
            "dx": (("y", "x"), masked(res.displacement_x), {"units": "m"}),
            "dy": (("y", "x"), masked(res.displacement_y), {"units": "m"}),
            "displacement": (
                ("y", "x"),
                masked(res.displacement),
                {"units": "m", "long_name": "total displacement"},
            ),
            "status": (("y", "x"), status),
            "status_code": (
                ("y", "x"),
                code,
                {
                    "long_name": "track status: "
                    + ", ".join(f"{i} {s}" for i, s in enumerate(STATUS))
                },
            ),
        },
        coords={"x": xs, "y": ys},
        attrs=dict(res.attrs),
    )
    return out.rio.write_crs(ds.rio.crs, grid_mapping_name="mapping", inplace=True)
