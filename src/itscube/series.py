"""Velocity time series at points, along profiles and over areas, read straight from cubes.

Where the series come from
--------------------------
A local cube, or the archive: cubes are found through the catalog (or a STAC API) as
:func:`itscube.download` finds them, and each target is read from the first cube whose grid
holds it, in that cube's projection. Only the chunk columns holding the sampled pixels are
read (:mod:`itscube.io.pixels`), concurrently and with retries.

Sampling
--------
* ``interp="nearest"`` (default): the pixel whose cell holds the point.
* ``interp="bilinear"``: the four pixels around the point, bilinear weights; NaN when any of
  them has no data (a gap is never filled silently).
* ``radius=R`` (m): every pixel whose centre lies within the disc of radius R around the
  point, averaged (an area of interest's ``buffer`` is a square; this is a disc).
* a polygon: every pixel whose centre lies inside, averaged, with the valid fraction.

Averages over several pixels weight each valid pixel by ``1/error^2`` where errors are per
pixel (annual composites) and equally where they are per layer (image pairs). Their error is
``1/sqrt(sum w)`` for per-pixel errors (independent pixels: optimistic) and the layer error
itself for per-layer errors (errors fully correlated within a layer: not reduced by
averaging). ``v`` is ``hypot(vx, vy)`` of the sampled components, and its error follows from
theirs.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pyproj
import shapely
import shapely.geometry as sg
import xarray as xr

from itscube._compat import renamed_params
from itscube._typing import INTERPOLATIONS as _INTERPOLATIONS
from itscube._typing import CRSLike, Kind, check_choice
from itscube.cluster import current_client, worker_count
from itscube.errors import CubeNotFoundError, EmptySelectionError, InputError
from itscube.geometry import LONLAT, Targets, line_targets, point_targets, transform_geometry
from itscube.grid import grid_bounds, spacing
from itscube.io.pixels import LAYER_VARIABLES, PIXEL_VARIABLES, read_layers, read_pixels
from itscube.io.stores import SourceCube, open_source
from itscube.io.vector import polygon_area, read_features
from itscube.temporal import ERROR_FLOOR
from itscube.window import DateLike, Filters, date_window, layer_mask

__all__ = [
    "INTERPOLATIONS",
    "SERIES_NAMES",
    "Interp",
    "line_from_file",
    "points_from_file",
    "polygon_target",
    "time_series",
]

SERIES_NAMES = {
    "vx": ("land_ice_surface_x_velocity", "velocity component in x direction (cube CRS)"),
    "vy": ("land_ice_surface_y_velocity", "velocity component in y direction (cube CRS)"),
    "v": ("land_ice_surface_velocity", "velocity magnitude"),
    "vx_error": ("vx_error", "error of vx"),
    "vy_error": ("vy_error", "error of vy"),
    "v_error": ("velocity_error", "error of v, from vx_error and vy_error"),
}
"""``standard_name`` (the ITS_LIVE archive's) and ``long_name`` of the series' velocities."""

Interp = Literal["nearest", "bilinear"]
INTERPOLATIONS = _INTERPOLATIONS


def points_from_file(path: str | Path, crs: CRSLike | None = None) -> Targets:
    """Points from a CSV (x, y or lon, lat columns, optional ``id``), or GeoJSON, GeoPackage
    or Shapefile points (optional ``id`` property; the file's CRS unless ``crs`` is given).

    Raises
    ------
    InputError
        A missing or unreadable file, or no points in it.
    """
    feats = read_features(path, "points", crs)
    if feats.crs is None:
        _needs_crs(Path(path))
    return point_targets(feats.points(), feats.crs, feats.ids)


def _needs_crs(path: Path, what: str = "points") -> None:
    raise InputError(
        f"{what} {path}: columns are x, y; give crs (e.g. EPSG:3413) to say their projection",
        params=(what, "crs"),
    )


def polygon_target(path: str | Path, crs: CRSLike | None = None) -> Targets:
    """An area mean over a polygon (GeoJSON or CSV of vertices, see
    :func:`itscube.polygon_area`)."""
    area = polygon_area(path, crs)
    c = area.geometry.centroid
    return Targets(
        "polygon",
        np.array([c.x]),
        np.array([c.y]),
        area.crs,
        [Path(path).stem],
        polygon=area.geometry,
    )


@renamed_params(spacing_m="spacing")
def line_from_file(path: str | Path, spacing: float | None = None, crs: CRSLike | None = None):
    """A profile along the (first) LineString of a GeoJSON, GeoPackage or Shapefile (the
    file's CRS unless ``crs``), or through the rows of a CSV of vertices."""
    feats = read_features(path, "profile", crs)
    if feats.crs is None:
        _needs_crs(Path(path), "profile")
    return line_targets(feats.line(), spacing, feats.crs)


# ------------------------------------------------------------------ sampling


@dataclasses.dataclass
class _Pixels:
    """The pixels of one target and their weights (nearest/bilinear: the interpolation
    weights; averages: equal, replaced by error weights when errors are per pixel)."""

    rows: np.ndarray
    cols: np.ndarray
    weights: np.ndarray
    average: bool


def _pixels(tx, ty, gx, gy, interp, radius, polygon) -> _Pixels | None:
    """The pixels of the grid (cell centres ``gx``, ``gy``) a target uses; None when the
    target lies off the grid."""
    xmin, ymin, xmax, ymax = grid_bounds(gx, gy)
    if polygon is not None:
        X, Y = np.meshgrid(gx, gy)
        rows, cols = np.nonzero(shapely.contains_xy(polygon, X, Y))
        if len(rows) == 0:
            return None
        return _Pixels(rows, cols, np.ones(len(rows)), True)
    if not (xmin <= tx <= xmax and ymin <= ty <= ymax):
        return None
    dx, dy = spacing(gx, "x"), spacing(gy, "y")
    fj, fi = (tx - gx[0]) / dx, (ty - gy[0]) / dy
    if radius > 0:
        X, Y = np.meshgrid(gx, gy)
        rows, cols = np.nonzero(np.hypot(X - tx, Y - ty) <= radius)
        if len(rows) == 0:
            rows, cols = np.array([round(fi)]), np.array([round(fj)])
        return _Pixels(rows, cols, np.ones(len(rows)), True)
    if interp == "nearest":
        i = int(np.clip(round(fi), 0, len(gy) - 1))
        j = int(np.clip(round(fj), 0, len(gx) - 1))
        return _Pixels(np.array([i]), np.array([j]), np.ones(1), False)
    i0 = int(np.clip(np.floor(fi), 0, max(len(gy) - 2, 0)))
    j0 = int(np.clip(np.floor(fj), 0, max(len(gx) - 2, 0)))
    wi, wj = float(np.clip(fi - i0, 0, 1)), float(np.clip(fj - j0, 0, 1))
    rows = np.array([i0, i0, i0 + 1, i0 + 1])
    cols = np.array([j0, j0 + 1, j0, j0 + 1])
    w = np.array([(1 - wi) * (1 - wj), (1 - wi) * wj, wi * (1 - wj), wi * wj])
    return _Pixels(rows, cols, w, False)


def _combine(values: np.ndarray, px: _Pixels, sigma: np.ndarray | None):
    """``(value, error, n_pixels)`` series of one target from its pixels' ``(time, pixel)``
    values (and per-pixel errors, if any)."""
    valid = np.isfinite(values)
    if not px.average:
        use = px.weights > 0
        bad = ~valid[:, use].all(axis=1)
        out = np.where(bad, np.nan, np.nan_to_num(values[:, use]) @ px.weights[use])
        err = None
        if sigma is not None:
            err = np.sqrt(np.nan_to_num(sigma[:, use]) ** 2 @ px.weights[use] ** 2)
            err = np.where(bad, np.nan, err)
        return out, err, np.where(bad, 0, use.sum())
    w = np.ones(values.shape)
    if sigma is not None:
        w = 1.0 / np.maximum(np.nan_to_num(sigma, nan=np.inf), ERROR_FLOOR) ** 2
    w = np.where(valid, w, 0.0)
    sw = w.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(sw > 0, (np.nan_to_num(values) * w).sum(axis=1) / sw, np.nan)
        err = np.where(sw > 0, 1.0 / np.sqrt(sw), np.nan) if sigma is not None else None
    return mean, err, valid.sum(axis=1)


def _layer_selection(layers: dict, tdim: str, start, end, filters: Filters) -> np.ndarray:
    """Indices of the layers inside the window that pass the filters, in time order."""
    times = layers[tdim]
    t0, t1 = date_window(start, end)
    mask = (times >= np.datetime64(t0)) & (times < np.datetime64(t1))
    need = [v for v in filters.needed_variables() if v not in layers]
    if need:
        raise InputError(
            f"the layer filters need {', '.join(need)}, which the cube lacks; drop those filters",
            params="filters",
        )
    mask &= layer_mask(layers, filters, len(times))
    if filters.max_error is not None:
        for name in ("vx_error", "vy_error"):
            if name in layers:
                mask &= ~(layers[name] > filters.max_error)
    idx = np.nonzero(mask)[0]
    return idx[np.argsort(times[idx], kind="stable")]


def _series_of(values, errors, layer_err, px: _Pixels, sel: np.ndarray, lookup: dict):
    """vx (or vy) of one target and its error: from its pixels' values, weighted by
    per-pixel errors where there are any, else with the per-layer error."""
    cols = np.array([lookup[(r, c)] for r, c in zip(px.rows, px.cols, strict=True)])
    sigma = errors[:, cols] if errors is not None else None
    value, err, n = _combine(values[:, cols], px, sigma)
    if err is None and layer_err is not None:
        err = np.where(np.isfinite(value), layer_err[sel], np.nan)
    return value, err, n


def _sample_cube(cube: SourceCube, targets: Targets, which: list[int], pixels: dict, sel, layers):
    """One cube's share of the targets: a (point, time) dataset."""
    tdim = cube.time_dim
    rows = np.concatenate([pixels[i].rows for i in which])
    cols = np.concatenate([pixels[i].cols for i in which])
    unique = sorted(set(zip(rows.tolist(), cols.tolist(), strict=True)))
    lookup = {rc: k for k, rc in enumerate(unique)}
    ur, uc = (np.array(a, np.int64) for a in zip(*unique, strict=True))
    data = read_pixels(cube, PIXEL_VARIABLES, ur, uc, times=sel)
    if "vx" not in data or "vy" not in data:
        raise CubeNotFoundError(f"{cube.url}: the cube has no vx/vy to sample")
    out: dict[str, list] = {k: [] for k in ("vx", "vy", "vx_error", "vy_error", "n_pixels")}
    out["valid_fraction"] = []
    for i in which:
        px = pixels[i]
        for comp in ("vx", "vy"):
            value, err, n = _series_of(
                data[comp], data.get(f"{comp}_error"), layers.get(f"{comp}_error"), px, sel, lookup
            )
            out[comp].append(value)
            out[f"{comp}_error"].append(err if err is not None else np.full(len(sel), np.nan))
        out["n_pixels"].append(n)
        out["valid_fraction"].append(n / len(px.rows))
    pt = ("point", tdim)
    ds = xr.Dataset(
        {k: (pt, np.asarray(v, "f8" if k != "n_pixels" else "i4")) for k, v in out.items()},
        coords={"point": np.asarray(which), tdim: layers[tdim][sel]},
    )
    for name in LAYER_VARIABLES:
        if name in layers and name not in ("vx_error", "vy_error", "v_error"):
            ds[name] = (pt, np.broadcast_to(layers[name][sel], (len(which), len(sel))).copy())
    ds["source"] = ("point", np.full(len(which), cube.url))
    ds["epsg"] = ("point", np.full(len(which), cube.epsg))
    return ds


def _sources(targets: Targets, cube, kind: Kind, catalog, stac) -> list[str]:
    if cube is not None:
        return [_cube_url(cube)]
    from itscube.geometry import Area
    from itscube.io.catalog import find_cubes, find_cubes_stac, load_catalog

    lon, lat = targets.lonlat()
    geom = (
        transform_geometry(targets.polygon, targets.crs, LONLAT)
        if targets.polygon is not None
        else sg.MultiPoint(np.column_stack([lon, lat])).envelope
    )
    area = Area(geom, LONLAT, targets.label())
    entries = find_cubes_stac(area, stac) if stac else find_cubes(area, load_catalog(catalog))
    return [e.url(kind) for e in entries]


def _cube_url(cube) -> str:
    """A local download folder names its single store; anything else is used as given."""
    p = Path(str(cube))
    if p.is_dir() and not any((p / m).exists() for m in (".zmetadata", "zarr.json", ".zgroup")):
        stores = sorted(p.glob("*.zarr"))
        if len(stores) == 1:
            return str(stores[0])
    return str(cube)


# ------------------------------------------------------------------ the API


@renamed_params(buffer="radius")
def time_series(
    targets: Targets | Sequence[Sequence[float]],
    cube: str | os.PathLike | None = None,
    *,
    crs: CRSLike | None = None,
    kind: Kind | None = None,
    start: DateLike | None = None,
    end: DateLike | None = None,
    filters: Filters | None = None,
    interp: Interp = "nearest",
    radius: float = 0.0,
    catalog=None,
    stac: str | None = None,
    workers: int = 32,
) -> xr.Dataset:
    """Velocity time series of ``targets`` (see the module docstring for the sampling).

    Parameters
    ----------
    targets : from :func:`point_targets`, :func:`points_from_file`, :func:`profile_targets`,
        :func:`line_from_file` or :func:`polygon_target`; or simply ``[(x, y), ...]``
        points in ``crs`` (default lon/lat).
    cube : a local or remote cube; default: the cubes of the catalog (or ``stac``) that
        cover the targets, each target read from the first one whose grid holds it.
    kind : ``subyearly`` (image pairs) or ``annual`` (composites); default the kind of
        ``cube``, or ``subyearly`` from the archive. A ``cube`` of the other kind is an
        error: a cube of image pairs holds no annual composites.
    start, end : inclusive dates (default: all layers).
    filters : layer filters, as for :func:`itscube.download`.
    interp : ``nearest`` or ``bilinear`` (points and profiles).
    radius : average the pixels within this radius (m) of each point instead (a disc).
    catalog, stac : where to find cubes (as :func:`itscube.download`).
    workers : concurrent requests per cube.

    Returns
    -------
    xarray.Dataset
        dims ``(point, mid_date)`` (``time`` for annual): ``vx``, ``vy``, ``v`` and their
        errors (m/yr), ``n_pixels`` (pixels averaged), ``valid_fraction``; the pairs'
        acquisition dates, ``date_dt`` (days) and platforms; per point ``id``, ``x``,
        ``y`` (m in the CRS of the point's cube: where it was sampled), ``lon``, ``lat``,
        ``distance`` (profiles, m), the ``source`` cube and its ``epsg``.

    Raises
    ------
    InputError
        Bad options.
    CubeNotFoundError
        A target lies outside every cube (the message lists them).
    EmptySelectionError
        No layer in the window, or a polygon without valid pixels.
    """
    if not isinstance(targets, Targets):
        targets = point_targets(targets, crs)
    check_choice(interp, INTERPOLATIONS, "interp")
    if kind is not None:
        check_choice(kind, ("subyearly", "annual"), "kind")
    if cube is not None:
        kind = _kind_of_cube(cube, kind, workers)
    kind = kind or "subyearly"
    if not radius >= 0:
        raise InputError(f"radius must be >= 0 m; got {radius}", params="radius")
    filters = filters or Filters()
    remaining = list(range(len(targets)))
    parts = []
    client = current_client()
    options = (interp, radius, start, end, filters)
    for url in _sources(targets, cube, kind, catalog, stac):
        if not remaining:
            break
        if client is not None and len(remaining) > 1:
            got, remaining = _from_cube_on_cluster(
                client, url, workers, targets, remaining, options
            )
            parts += got
            continue
        src = open_source(url, workers=workers)
        part, remaining = _from_cube(src, targets, remaining, *options)
        if part is not None:
            parts.append(part)
    if remaining:
        lon, lat = targets.lonlat()
        where = ", ".join(f"{targets.ids[i]} ({lon[i]:.4f}, {lat[i]:.4f})" for i in remaining[:5])
        raise CubeNotFoundError(
            f"{len(remaining)} of {len(targets)} target(s) lie outside every cube: {where}"
            f"{' ...' if len(remaining) > 5 else ''}; check the coordinates and their crs"
        )
    return _assemble(parts, targets, kind, interp, radius, start, end)


_HOLDS = {"subyearly": "image pairs (mid_date)", "annual": "annual composites (time)"}


def _kind_of_cube(cube, kind: Kind | None, workers: int) -> Kind:
    """The kind of the given cube; an error when it is not the ``kind`` asked for."""
    src = open_source(_cube_url(cube), workers=workers)
    found: Kind = "annual" if src.time_dim == "time" else "subyearly"
    if kind is not None and kind != found:
        raise InputError(
            f"cube {cube} holds {_HOLDS[found]}, not {_HOLDS[kind]}; give a cube of that kind, "
            "or no cube to read both kinds from the archive",
            params=("kind", "cube"),
        )
    return found


def _from_cube_task(url: str, workers: int, targets: Targets, group: list[int], options):
    """On a worker: :func:`_from_cube` for the targets ``group``."""
    return _from_cube(open_source(url, workers=workers), targets, group, *options)


def _from_cube_on_cluster(client, url, workers, targets, remaining, options):
    """:func:`_from_cube` with the targets split into groups, one task each (about two per
    worker); the parts of the groups that the cube holds, and the targets it does not."""
    n_groups = min(len(remaining), 2 * worker_count(client))
    groups = [list(g) for g in np.array_split(remaining, n_groups)]
    futures = [
        client.submit(_from_cube_task, url, workers, targets, g, options, pure=False)
        for g in groups
    ]
    parts, left = [], []
    for part, rest in client.gather(futures):
        if part is not None:
            parts.append(part)
        left += [int(i) for i in rest]
    return parts, left


def _from_cube(src: SourceCube, targets, remaining, interp, radius, start, end, filters):
    grid = src.read_many(["x", "y"])
    gx, gy = np.asarray(grid["x"], "f8"), np.asarray(grid["y"], "f8")
    tx, ty = targets.in_crs(src.epsg)
    poly = None
    if targets.polygon is not None:
        poly = transform_geometry(targets.polygon, targets.crs, pyproj.CRS.from_epsg(src.epsg))
    pixels = {}
    for i in remaining:
        px = _pixels(tx[i], ty[i], gx, gy, interp, radius, poly)
        if px is not None:
            pixels[i] = px
    if not pixels:
        return None, remaining
    tdim = src.time_dim
    names = LAYER_VARIABLES if tdim != "time" or "date_dt" in src else ()
    layers = read_layers(src, names)
    sel = _layer_selection(layers, tdim, start, end, filters)
    if len(sel) == 0:
        t = layers[tdim]
        span = f"{str(t.min())[:10]} .. {str(t.max())[:10]}" if len(t) else "no layers"
        raise EmptySelectionError(
            f"no layer of {src.url} lies in the window and passes the filters; it holds "
            f"{len(t)} layers ({span})",
            params=("start", "end"),
        )
    which = sorted(pixels)
    part = _sample_cube(src, targets, which, pixels, sel, layers)
    # where each series was sampled, in the cube's CRS: the pixel centre for nearest, the
    # point itself for bilinear and discs, the centroid of the pixels of a polygon
    sx, sy = [], []
    for i in which:
        px = pixels[i]
        pixel_based = poly is not None or (interp == "nearest" and radius == 0)
        sx.append(float(gx[px.cols].mean()) if pixel_based else float(tx[i]))
        sy.append(float(gy[px.rows].mean()) if pixel_based else float(ty[i]))
    part["sample_x"] = ("point", np.array(sx))
    part["sample_y"] = ("point", np.array(sy))
    part.attrs["source_description"] = " ".join(
        str(src.attrs.get(k, "")) for k in ("author", "institution", "title")
    ).strip()
    return part, [i for i in remaining if i not in pixels]


def _assemble(parts, targets: Targets, kind, interp, radius, start, end) -> xr.Dataset:
    tdim = "time" if kind == "annual" else "mid_date"
    parts = [
        p.rename({p.attrs.get("tdim", next(d for d in p.dims if d != "point")): tdim})
        for p in parts
    ]
    described = " ".join(dict.fromkeys(p.attrs.get("source_description", "") for p in parts))
    ds = (
        xr.concat(parts, dim="point", join="outer", fill_value={"n_pixels": 0})
        if len(parts) > 1
        else parts[0]
    )
    ds.attrs["source_description"] = described
    ds = ds.sortby("point").sortby(tdim)
    ds["v"] = np.hypot(ds["vx"], ds["vy"])
    with np.errstate(invalid="ignore", divide="ignore"):
        ds["v_error"] = (
            np.sqrt((ds["vx"] * ds["vx_error"]) ** 2 + (ds["vy"] * ds["vy_error"]) ** 2) / ds["v"]
        )
    if targets.polygon is not None and not np.isfinite(ds["vx"].values).any():
        raise EmptySelectionError(
            "the polygon has no valid pixel in the window; choose a larger area or other dates",
            params="polygon",
        )
    lon, lat = targets.lonlat()
    idx = ds["point"].values
    ds = ds.assign_coords(
        id=("point", np.asarray(targets.ids, dtype=object)[idx].astype(str)),
        x=("point", ds["sample_x"].values),
        y=("point", ds["sample_y"].values),
        lon=("point", np.asarray(lon)[idx]),
        lat=("point", np.asarray(lat)[idx]),
    ).drop_vars(["sample_x", "sample_y"])
    where = (
        ("the point's pixel centre" if interp == "nearest" and radius == 0 else "the point")
        if targets.polygon is None
        else "the centroid of the polygon's pixels"
    )
    for c in ("x", "y"):
        ds[c].attrs.update(
            units="m",
            long_name=f"{c} of {where} in the CRS of the point's cube (see epsg)",
        )
    ds["lon"].attrs.update(units="degrees_east", long_name="longitude of the point")
    ds["lat"].attrs.update(units="degrees_north", long_name="latitude of the point")
    ds["epsg"].attrs.update(long_name="EPSG code of the cube's CRS (of x, y, vx, vy)")
    if targets.distance is not None:
        ds = ds.assign_coords(distance=("point", targets.distance[idx]))
        ds["distance"].attrs.update(units="m", long_name="distance along the profile")
    for name, (standard, long) in SERIES_NAMES.items():
        ds[name].attrs.update(units="m yr-1", standard_name=standard, long_name=long)
    ds["n_pixels"].attrs.update(long_name="valid pixels combined", units="1")
    ds["valid_fraction"].attrs.update(long_name="valid share of the pixels sampled", units="1")
    ds.attrs.update(
        itscube_product="time_series",
        itscube_targets=targets.kind,
        itscube_kind=kind,
        itscube_interp=(
            "disc" if radius > 0 else ("polygon" if targets.polygon is not None else interp)
        ),
        itscube_radius_m=float(radius),
        itscube_crs=targets.crs.to_string(),
        itscube_start="" if start is None else str(start),
        itscube_end="" if end is None else str(end),
    )
    return ds
