"""Lagrangian tracking of surface points through ITS_LIVE velocity fields.

Velocity in time
----------------
The cube is first reduced to a series of composite fields (:func:`velocity_series`):
``composite="year" | "season" | "month"`` (or any pandas frequency) gives
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
data within ``fill_radius`` pixels (flag bit 2). A point whose interpolation needs a pixel
that is still empty stops with status ``no_data``; a point leaving the grid stops with
status ``out_of_domain``. Points never move with a silent zero velocity.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyproj
import xarray as xr
from numba import njit, prange

from .cube import time_dim
from .errors import InputError
from .gaps import fill_gaps_2d
from .temporal import PERIOD_ALIASES, date_window, period_mean

DAYS_PER_YEAR = 365.25
STATUS = ("ok", "out_of_domain", "no_data", "extrapolated")
"""Point status: ``extrapolated`` points (``extrapolate=True``) moved for part of the window
on the nearest velocity field in time, outside the dates the cube covers."""
EXTRAPOLATED = 4
"""Fill-flag bit of a step taken outside the cube's dates (``extrapolate=True``)."""
COMPOSITES = PERIOD_ALIASES


# ------------------------------------------------------------------ kernel


@njit(inline="always", cache=True)
def _sample(U, V, F, k, x, y, gx0, gdx, gy0, gdy):
    """Bilinear (u, v, flag, code) at (x, y) from field ``k``; code 1 outside, 2 NaN."""
    ny, nx = U.shape[1], U.shape[2]
    fj = (x - gx0) / gdx
    fi = (y - gy0) / gdy
    if not (fi >= 0.0 and fj >= 0.0 and fi <= ny - 1 and fj <= nx - 1):
        return np.nan, np.nan, np.uint8(0), 1
    i0 = min(int(fi), ny - 2)
    j0 = min(int(fj), nx - 2)
    wi = fi - i0
    wj = fj - j0
    u = (U[k, i0, j0] * (1 - wj) + U[k, i0, j0 + 1] * wj) * (1 - wi) + (
        U[k, i0 + 1, j0] * (1 - wj) + U[k, i0 + 1, j0 + 1] * wj
    ) * wi
    v = (V[k, i0, j0] * (1 - wj) + V[k, i0, j0 + 1] * wj) * (1 - wi) + (
        V[k, i0 + 1, j0] * (1 - wj) + V[k, i0 + 1, j0 + 1] * wj
    ) * wi
    f = np.uint8(F[k, i0, j0] | F[k, i0, j0 + 1] | F[k, i0 + 1, j0] | F[k, i0 + 1, j0 + 1])
    if np.isnan(u) or np.isnan(v):
        return np.nan, np.nan, f, 2
    return u, v, f, 0


@njit(parallel=True, cache=True)
def advect(x0, y0, U, V, F, gx0, gdx, gy0, gdy, dt_yr, field_of_step, order, sign):
    """Move points through piecewise-constant-in-time fields.

    Parameters
    ----------
    x0, y0 : (N,) start positions (m).
    U, V : (K, ny, nx) velocity fields (m/yr); F : (K, ny, nx) uint8 fill flags.
    gx0, gdx, gy0, gdy : coordinate of pixel (0, 0) and signed spacings (m).
    dt_yr : (S,) step lengths (yr, > 0); field_of_step : (S,) field index of each step.
    order : 1 (Euler), 2 (midpoint RK2) or 4 (RK4); sign : +1 forward, -1 backward.

    Returns
    -------
    X, Y : (N, S+1) positions (NaN after a point stops); VX, VY : (N, S+1) velocity at
    each position; flags : (N, S+1) fill flags used by the step ending there;
    status : (N,) 0 ok, 1 out_of_domain, 2 no_data.
    """
    n = x0.shape[0]
    s_count = dt_yr.shape[0]
    X = np.full((n, s_count + 1), np.nan)
    Y = np.full((n, s_count + 1), np.nan)
    VX = np.full((n, s_count + 1), np.nan)
    VY = np.full((n, s_count + 1), np.nan)
    flags = np.zeros((n, s_count + 1), np.uint8)
    status = np.zeros(n, np.uint8)
    for p in prange(n):
        x = x0[p]
        y = y0[p]
        k = field_of_step[0] if s_count > 0 else 0
        u, v, f, code = _sample(U, V, F, k, x, y, gx0, gdx, gy0, gdy)
        X[p, 0] = x
        Y[p, 0] = y
        VX[p, 0] = u
        VY[p, 0] = v
        flags[p, 0] = f
        if code != 0:
            status[p] = code
            continue
        for s in range(s_count):
            k = field_of_step[s]
            h = sign * dt_yr[s]
            u1, v1, f1, c1 = _sample(U, V, F, k, x, y, gx0, gdx, gy0, gdy)
            fl = np.uint8(f1)
            code = c1
            if order == 1:
                nx_ = x + h * u1
                ny_ = y + h * v1
            elif order == 2:
                u2, v2, f2, c2 = _sample(
                    U, V, F, k, x + 0.5 * h * u1, y + 0.5 * h * v1, gx0, gdx, gy0, gdy
                )
                fl = np.uint8(fl | f2)
                code = max(code, c2)
                nx_ = x + h * u2
                ny_ = y + h * v2
            else:
                u2, v2, f2, c2 = _sample(
                    U, V, F, k, x + 0.5 * h * u1, y + 0.5 * h * v1, gx0, gdx, gy0, gdy
                )
                u3, v3, f3, c3 = _sample(
                    U, V, F, k, x + 0.5 * h * u2, y + 0.5 * h * v2, gx0, gdx, gy0, gdy
                )
                u4, v4, f4, c4 = _sample(U, V, F, k, x + h * u3, y + h * v3, gx0, gdx, gy0, gdy)
                fl = np.uint8(fl | f2 | f3 | f4)
                code = max(max(code, c2), max(c3, c4))
                nx_ = x + h * (u1 + 2 * u2 + 2 * u3 + u4) / 6.0
                ny_ = y + h * (v1 + 2 * v2 + 2 * v3 + v4) / 6.0
            ue = np.nan
            ve = np.nan
            if code == 0:
                ue, ve, _, ce = _sample(
                    U, V, F, field_of_step[min(s + 1, s_count - 1)], nx_, ny_, gx0, gdx, gy0, gdy
                )
                if ce != 0:
                    code = ce
            if code != 0:
                status[p] = code
                break
            x = nx_
            y = ny_
            X[p, s + 1] = x
            Y[p, s + 1] = y
            VX[p, s + 1] = ue
            VY[p, s + 1] = ve
            flags[p, s + 1] = fl
    return X, Y, VX, VY, flags, status


# ------------------------------------------------------------------ fields


def velocity_series(
    ds: xr.Dataset, start, end, composite: str | None = "year", steady: bool = False
) -> xr.Dataset:
    """Composite velocity fields with bin bounds ``time_bnds`` (see the module docstring).

    Annual cubes use their own layers (one per year, bins = calendar years) unless
    ``steady``.
    """
    tdim = time_dim(ds)
    t0, t1 = date_window(start, end)
    lo, hi = sorted((t0, t1))
    sub = ds.sel({tdim: slice(lo - pd.Timedelta(days=400), hi + pd.Timedelta(days=400))})
    if sub.sizes[tdim] == 0:
        sub = ds
    if steady:
        window = sub.sel({tdim: slice(lo, hi)})
        mean = period_mean(window if window.sizes[tdim] else sub, "all")
        wide = np.array([["1678-01-01", "2261-01-01"]], dtype="datetime64[ns]")
        return mean.assign(time_bnds=(("time", "bnds"), wide))
    freq = "YS" if tdim == "time" else COMPOSITES.get(composite or "year", composite)
    try:
        return period_mean(sub, freq, within_span=True)
    except InputError as exc:
        raise InputError(
            f"--composite {composite!r} is not month, season, year or a pandas frequency"
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


def fill_series(U: np.ndarray, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """Fill gaps: nearest composite in time first (flag 1), then space within ``radius``
    pixels (flag 2). Returns (filled fields, uint8 flags)."""
    U = np.array(U, dtype="f8")
    flags = np.zeros(U.shape, np.uint8)
    valid = np.isfinite(U)
    K = U.shape[0]
    if K > 1:
        idx = np.arange(K)[:, None, None]
        # index of the nearest valid composite in time at every pixel
        big = K * 10
        prev = np.where(valid, idx, -big)
        prev = np.maximum.accumulate(prev, axis=0)
        nxt = np.where(valid, idx, 2 * big)
        nxt = np.minimum.accumulate(nxt[::-1], axis=0)[::-1]
        choose = np.where(idx - prev <= nxt - idx, prev, nxt)
        ok = (choose >= 0) & (choose < K) & ~valid
        src = np.clip(choose, 0, K - 1)
        filled = np.take_along_axis(U, src, axis=0)
        U = np.where(ok, filled, U)
        flags[ok] = 1
    if radius and radius > 0:
        for k in range(K):
            gap = ~np.isfinite(U[k])
            if gap.any():
                U[k] = fill_gaps_2d(U[k], radius)
                flags[k][gap & np.isfinite(U[k])] = 2
    return U, flags


# ------------------------------------------------------------------ API


def _seeds_xy(seeds, crs: pyproj.CRS, seeds_crs=None) -> tuple[np.ndarray, np.ndarray, list]:
    from pathlib import Path

    ids: list = []
    if isinstance(seeds, str | Path):
        from .area import _read_csv_points

        pts, lonlat = _read_csv_points(Path(seeds))
        if lonlat and seeds_crs is None:
            seeds_crs = "EPSG:4326"
    elif isinstance(seeds, pd.DataFrame):
        cols = {c.lower(): c for c in seeds.columns}
        if "x" in cols and "y" in cols:
            pts = seeds[[cols["x"], cols["y"]]].to_numpy(float)
        elif "lon" in cols and "lat" in cols:
            pts = seeds[[cols["lon"], cols["lat"]]].to_numpy(float)
            seeds_crs = seeds_crs or "EPSG:4326"
        else:
            raise InputError("seed table needs x, y (or lon, lat) columns")
        if "id" in cols:
            ids = list(seeds[cols["id"]])
    else:
        pts = np.asarray(seeds, dtype="f8").reshape(-1, 2)
    if seeds_crs is not None:
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


def track(
    ds: xr.Dataset,
    seeds,
    start,
    end,
    *,
    dt_days: float = 5.0,
    method: str = "rk4",
    backward: bool = False,
    composite: str | None = "year",
    steady: bool = False,
    fill_radius: float = 3.0,
    seeds_crs=None,
    extrapolate: bool = False,
    _perturb: np.random.Generator | None = None,
) -> xr.Dataset:
    """Track points through the cube's velocity between two dates.

    Parameters
    ----------
    ds : cube from :func:`itscube.open_cube` (``vx``, ``vy`` in m/yr).
    seeds : (N, 2) array of x, y in the cube CRS (m), a DataFrame with x, y (or lon, lat)
        and optional id columns, or a CSV path.
    start, end : dates. Forward: seeds are at ``start`` and move to ``end``. With
        ``backward=True`` seeds are at ``end`` and move back to ``start``.
    dt_days : step (days); the schedule also stops at composite bin edges.
    method : ``rk4``, ``rk2`` or ``euler``.
    composite : ``year``, ``season``, ``month`` or a pandas frequency (sub-yearly cubes).
    steady : use one mean field over the window (flowlines); the field is held over the
        whole window by definition, which may extend past the cube's dates.
    fill_radius : pixels for the spatial gap fallback (0 disables it).
    seeds_crs : CRS of array seeds when not in the cube's CRS (e.g. ``EPSG:4326``).
    extrapolate : allow a window that runs past the dates the cube covers: steps outside
        them use the nearest composite in time, are flagged (fill-flag bit 4) and their
        points get status ``extrapolated``. Without it such a window is an error.

    Returns
    -------
    xarray.Dataset
        dims ``(point, time)``: ``x``, ``y`` (m), ``lon``, ``lat``, ``vx``, ``vy``, ``v``
        (m/yr), ``filled`` (fill flags, see the module docstring); per point ``status``
        (``ok``/``out_of_domain``/``no_data``), ``displacement_x``, ``displacement_y``,
        ``displacement`` (m, start to last valid position), ``id``.
    """
    orders = {"euler": 1, "rk2": 2, "rk4": 4}
    if method not in orders:
        raise InputError(f"--method must be one of {', '.join(orders)}; got {method!r}")
    if not dt_days > 0:
        raise InputError(f"--dt-days must be > 0; got {dt_days}")
    t0, t1 = date_window(start, end)
    t1 = t1 - pd.Timedelta(days=1) if t1 == t1.normalize() else t1
    if t1 <= t0:
        raise InputError(f"--end {t1.date()} must be after --start {t0.date()}")
    tdim = time_dim(ds)
    if ds.sizes[tdim] == 0:
        raise InputError("the cube has no layers (after the layer filters)")
    crs = ds.rio.crs
    x0, y0, ids = _seeds_xy(seeds, crs, seeds_crs)
    if len(x0) == 0:
        raise InputError("no seed points given")
    series = velocity_series(ds, t0, t1, composite, steady)
    U, FU = fill_series(series["vx"].transpose("time", "y", "x").values, fill_radius)
    V, FV = fill_series(series["vy"].transpose("time", "y", "x").values, fill_radius)
    F = FU | FV
    if _perturb is not None:  # one ensemble member (see ensemble_spread)
        K = U.shape[0]
        su = np.nan_to_num(series["vx_error"].transpose("time", "y", "x").values)
        sv = np.nan_to_num(series["vy_error"].transpose("time", "y", "x").values)
        U = U + _perturb.standard_normal(K)[:, None, None] * su
        V = V + _perturb.standard_normal(K)[:, None, None] * sv
    gx = series.x.values
    gy = series.y.values
    half = abs(gx[1] - gx[0]) / 2
    inside = (
        (x0 >= gx.min() - half)
        & (x0 <= gx.max() + half)
        & (y0 >= gy.min() - half)
        & (y0 <= gy.max() + half)
    )
    if not inside.any():
        raise InputError(
            f"no seed point lies inside the cube (x {gx.min():.0f}..{gx.max():.0f}, "
            f"y {gy.min():.0f}..{gy.max():.0f} in {crs}); are the seeds in its projection?"
        )
    bnds = series["time_bnds"].values
    cov0, cov1 = data_coverage(ds, bnds, steady)
    if (t0 < cov0 or t1 > cov1) and not (extrapolate or steady):
        raise InputError(
            f"--start/--end {t0.date()}..{t1.date()} runs past the dates the cube's velocities "
            f"cover ({cov0.date()}..{(cov1 - pd.Timedelta(seconds=1)).date()}); narrow the "
            "dates, or pass --extrapolate to hold the nearest field there (flagged)"
        )
    edges = np.unique(bnds.ravel())
    t_from, t_to = (t1, t0) if backward else (t0, t1)
    times = step_schedule(t_from, t_to, dt_days, edges)
    mids = times[:-1] + (times[1:] - times[:-1]) / 2
    starts = bnds[:, 0]
    field_of_step = np.clip(np.searchsorted(starts, mids, side="right") - 1, 0, len(starts) - 1)
    dt_yr = np.abs(np.diff(times).astype("timedelta64[ns]").astype("f8")) / 86400e9 / DAYS_PER_YEAR
    X, Y, VX, VY, flags, status = advect(
        x0,
        y0,
        U,
        V,
        F,
        float(gx[0]),
        float(gx[1] - gx[0]),
        float(gy[0]),
        float(gy[1] - gy[0]),
        dt_yr,
        field_of_step.astype(np.int64),
        orders[method],
        -1.0 if backward else 1.0,
    )
    outside = (mids < np.datetime64(cov0)) | (mids > np.datetime64(cov1))
    if outside.any() and not steady:
        moved = np.isfinite(X[:, 1:]) & outside[None, :]
        flags[:, 1:][moved] |= EXTRAPOLATED
        status = np.where((status == 0) & moved.any(axis=1), 3, status)
    last = np.where(np.isfinite(X), np.arange(X.shape[1]), 0).max(axis=1)
    pidx = np.arange(len(x0))
    dxs = X[pidx, last] - X[:, 0]
    dys = Y[pidx, last] - Y[:, 0]
    tr = pyproj.Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    lon, lat = tr.transform(X, Y)
    out = xr.Dataset(
        {
            "x": (("point", "time"), X, {"units": "m", "long_name": "x position"}),
            "y": (("point", "time"), Y, {"units": "m", "long_name": "y position"}),
            "lon": (
                ("point", "time"),
                np.where(np.isfinite(X), lon, np.nan),
                {"units": "degrees_east"},
            ),
            "lat": (
                ("point", "time"),
                np.where(np.isfinite(X), lat, np.nan),
                {"units": "degrees_north"},
            ),
            "vx": (("point", "time"), VX, {"units": "m yr-1"}),
            "vy": (("point", "time"), VY, {"units": "m yr-1"}),
            "v": (("point", "time"), np.hypot(VX, VY), {"units": "m yr-1"}),
            "filled": (
                ("point", "time"),
                flags,
                {
                    "long_name": "fallbacks used (bits, summed): 1 nearest composite in time, "
                    "2 spatial fill, 4 extrapolated past the cube's dates"
                },
            ),
            "status": ("point", np.array(STATUS, dtype=object)[status].astype(str)),
            "displacement_x": ("point", dxs, {"units": "m"}),
            "displacement_y": ("point", dys, {"units": "m"}),
            "displacement": ("point", np.hypot(dxs, dys), {"units": "m"}),
            "id": ("point", np.asarray(ids)),
        },
        coords={"time": times, "point": np.arange(len(x0))},
        attrs={
            "itscube_product": "tracks",
            "method": method,
            "dt_days": float(dt_days),
            "direction": "backward" if backward else "forward",
            "composite": "steady" if steady else str(composite),
        },
    )
    return out.rio.write_crs(crs, grid_mapping_name="mapping")


def ensemble_spread(
    ds: xr.Dataset,
    seeds,
    start,
    end,
    n: int,
    *,
    seed: int = 0,
    **kw,
) -> xr.Dataset:
    """Monte-Carlo end-position spread (m) from the velocity errors.

    Each member perturbs every composite field by ``z * vx_error`` and ``z' * vy_error``
    with one standard-normal draw per member, composite and component (errors fully
    correlated in space within a composite, independent between composites and members,
    as ITS_LIVE layer errors largely are). Returns ``spread_x``, ``spread_y`` (standard
    deviations of the end positions) and ``spread`` = sqrt(spread_x^2 + spread_y^2).
    """
    if n < 2:
        raise InputError(f"--ensemble needs at least 2 members; got {n}")
    for name in ("vx_error", "vy_error"):
        if name not in ds.variables:
            raise InputError(f"--ensemble needs {name} in the cube")
    rng = np.random.default_rng(seed)
    ends = []
    for _ in range(n):
        ends.append(track(ds, seeds, start, end, _perturb=rng, **kw))
    ex = np.stack([e.x.values[:, -1] for e in ends])
    ey = np.stack([e.y.values[:, -1] for e in ends])
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
        attrs={"members": n},
    )


def displacement_field(ds: xr.Dataset, start, end, *, step: int = 1, **kw) -> xr.Dataset:
    """Track every ``step``-th pixel centre and map the displacement (m).

    Returns ``dx``, ``dy``, ``displacement`` (m; NaN where the point did not end ``ok`` or
    ``extrapolated``: a truncated track is not a displacement), ``status`` and
    ``status_code`` (:data:`STATUS` index) on the seed grid (y, x), with the cube's CRS.
    """
    if step < 1:
        raise InputError(f"--grid step must be >= 1 pixel; got {step}")
    xs, ys = ds.x.values[::step], ds.y.values[::step]
    X, Y = np.meshgrid(xs, ys)
    res = track(ds, np.column_stack([X.ravel(), Y.ravel()]), start, end, **kw)
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
    return out.rio.write_crs(ds.rio.crs, grid_mapping_name="mapping")
