"""Geometry of the domain: CRSs, areas of interest and the targets sampled in them.

Plain shapely/pyproj objects, no files and no network: :mod:`itscube.io` (catalog search,
downloads, vector files) and the domain modules (series, track, flux) both build on it.

* :class:`Area`: a point (with a buffer), a bounding box or a polygon, in lon/lat or a
  projected CRS (metres); :func:`point_area`, :func:`bbox_area`.
* :class:`Targets`: points, a profile or a polygon to sample (:func:`point_targets`,
  :func:`profile_targets`, :func:`line_targets`).
* :func:`parse_crs`, :func:`transform_geometry`, :func:`check_degrees`.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Sequence

import numpy as np
import pyproj
import shapely
import shapely.geometry as sg

from itscube._compat import renamed_params
from itscube._typing import CRSLike
from itscube.errors import InputError
from itscube.grid import grid_bounds

__all__ = [
    "LONLAT",
    "Area",
    "Targets",
    "bbox_area",
    "check_degrees",
    "check_lonlat",
    "footprint_rings",
    "line_targets",
    "parse_crs",
    "point_area",
    "point_targets",
    "polygon_from_coords",
    "polygon_wkt",
    "profile_targets",
    "transform_geometry",
]


LONLAT = pyproj.CRS.from_epsg(4326)


def parse_crs(crs: CRSLike | None) -> pyproj.CRS:
    """A :class:`pyproj.CRS` from ``EPSG:XXXX``, an integer or WKT (None = lon/lat)."""
    if crs is None:
        return LONLAT
    if isinstance(crs, pyproj.CRS):
        return crs
    try:
        return pyproj.CRS.from_user_input(int(crs) if str(crs).isdigit() else crs)
    except pyproj.exceptions.CRSError as exc:
        raise InputError(
            f"crs {crs!r} is not a known CRS; use e.g. EPSG:3413", params="crs"
        ) from exc


def transform_geometry(geom, src: pyproj.CRS, dst: pyproj.CRS, *, densify: float | None = None):
    """Transform a shapely geometry between CRSs (x/y axis order, edges densified first)."""
    if src == dst:
        return geom
    if densify is None:
        densify = 0.01 if src.is_geographic else 1000.0
    geom = shapely.segmentize(geom, densify) if geom.geom_type != "Point" else geom
    tr = pyproj.Transformer.from_crs(src, dst, always_xy=True)
    return shapely.transform(geom, tr.transform, interleaved=False)


@dataclasses.dataclass(frozen=True)
class Area:
    """An area of interest.

    Attributes
    ----------
    geometry : shapely geometry in ``crs`` (Point, or Polygon for bbox/polygon).
    crs : CRS of ``geometry`` (EPSG:4326 = lon/lat, degrees).
    label : short text used in folder names.
    buffer : half-width (m, in the cube projection) around a point.
    """

    geometry: shapely.Geometry
    crs: pyproj.CRS
    label: str
    buffer: float = 0.0

    def __repr__(self) -> str:
        epsg = self.crs.to_epsg()
        crs = f"EPSG:{epsg}" if epsg else self.crs.name
        b = ", ".join(f"{v:.6g}" for v in self.geometry.bounds)
        extra = f", buffer={self.buffer:g} m" if self.buffer else ""
        return f"Area({self.label!r}, {self.geometry.geom_type} bounds=({b}), crs={crs}{extra})"

    def in_crs(self, crs: pyproj.CRS | int | str) -> shapely.Geometry:
        """The geometry projected to ``crs`` (a point is buffered there by ``buffer`` m)."""
        dst = parse_crs(crs)
        geom = transform_geometry(self.geometry, self.crs, dst)
        if self.buffer > 0 and geom.geom_type == "Point":
            geom = geom.buffer(self.buffer, cap_style="square")
        return geom

    def lonlat(self) -> shapely.Geometry:
        """The geometry in lon/lat (degrees)."""
        return transform_geometry(self.geometry, self.crs, LONLAT)


def check_degrees(x, y, crs: pyproj.CRS, what: str, crs_param: str = "crs") -> None:
    """One-line :class:`InputError` when coordinates given in a geographic ``crs`` (lon/lat)
    cannot be degrees: they look like projected metres, and ``crs_param`` fixes that."""
    if not crs.is_geographic:
        return
    x, y = np.atleast_1d(np.asarray(x, "f8")), np.atleast_1d(np.asarray(y, "f8"))
    bad = ~((np.abs(x) <= 360) & (np.abs(y) <= 90))
    if bad.any():
        i = int(np.argmax(bad))
        raise InputError(
            f"{what}: ({_fmt(x[i])}, {_fmt(y[i])}) looks like metres, not lon/lat degrees; "
            f"give {crs_param} EPSG:XXXX (the cube's, e.g. EPSG:3413) for projected coordinates",
            params=(what.split()[0], crs_param),
        )


def check_lonlat(lon: float, lat: float, what: str) -> None:
    if not (-180 <= lon <= 360 and -90 <= lat <= 90):
        raise InputError(
            f"{what}: ({lon}, {lat}) is not a lon/lat position; give LON LAT in degrees "
            "or add crs EPSG:XXXX for projected metres",
            params=(what.split()[0], "crs"),
        )


def _fmt(v: float) -> str:
    return f"{v:.4f}".rstrip("0").rstrip(".") if abs(v) < 1000 else f"{v:.0f}"


def point_area(x: float, y: float, crs: CRSLike | None = None, buffer: float = 0.0) -> Area:
    """Area from one point with an optional square buffer.

    Parameters
    ----------
    x, y : longitude and latitude (degrees), or projected coordinates (m) with ``crs``.
    crs : CRS of ``x, y`` (default lon/lat, EPSG:4326).
    buffer : half-width (m) of the square around the point; 0 = the point itself.

    Raises
    ------
    InputError
        Non-finite coordinates, lon/lat out of range, a negative buffer or an unknown CRS.

    Examples
    --------
    >>> point_area(-49.7, 69.17).label
    'point_-49.7_69.17'
    """
    c = parse_crs(crs)
    if not (math.isfinite(x) and math.isfinite(y)):
        raise InputError("point: coordinates must be finite numbers", params="point")
    if c.is_geographic:
        check_lonlat(x, y, "point")
    if buffer < 0:
        raise InputError("buffer must be >= 0 metres", params="buffer")
    return Area(sg.Point(x, y), c, f"point_{_fmt(x)}_{_fmt(y)}", float(buffer))


def bbox_area(
    west: float, south: float, east: float, north: float, crs: CRSLike | None = None
) -> Area:
    """Area from a bounding box.

    Parameters
    ----------
    west, south, east, north : bounds in degrees (lon/lat), or metres with ``crs``.
    crs : CRS of the bounds (default lon/lat, EPSG:4326).

    Raises
    ------
    InputError
        Non-finite bounds, ``west >= east`` or ``south >= north``, lon/lat out of range, or
        an unknown CRS.
    """
    c = parse_crs(crs)
    vals = [west, south, east, north]
    if not all(math.isfinite(v) for v in vals):
        raise InputError("bbox: W S E N must be finite numbers", params="bbox")
    if west >= east or south >= north:
        raise InputError(
            f"bbox {west} {south} {east} {north}: need W < E and S < N (order is W S E N)",
            params="bbox",
        )
    if c.is_geographic:
        check_lonlat(west, south, "bbox")
        check_lonlat(east, north, "bbox")
    label = "bbox_" + "_".join(_fmt(v) for v in vals)
    return Area(sg.box(west, south, east, north), c, label)


def polygon_from_coords(coords: list, where: str, param: str):
    """A valid polygon from x, y vertices (``where`` and ``param`` name the input in errors)."""
    pts = np.asarray(coords, dtype="f8")
    if pts.ndim != 2 or pts.shape[1] < 2:
        raise InputError(f"{where}: expected a list of x, y coordinates", params=param)
    pts = pts[:, :2]
    if len({tuple(p) for p in pts}) < 3:
        raise InputError(f"{where}: a polygon needs at least 3 distinct points", params=param)
    poly = sg.Polygon(pts)
    if not poly.is_valid:
        raise InputError(
            f"{where}: polygon is not valid ({shapely.is_valid_reason(poly)})", params=param
        )
    return poly


def footprint_rings(
    epsg: int, x: np.ndarray, y: np.ndarray, n: int = 10, spacing: float | None = None
) -> tuple[list, list]:
    """Closed footprint rings of a grid's outer pixel edges: (projected m, lon/lat degrees).

    Edges are densified with ``n`` points per side before projecting to lon/lat.
    """
    if spacing is None:
        x0, y0, x1, y1 = grid_bounds(x, y)
    else:
        h = abs(spacing) / 2
        x0, x1 = float(x.min() - h), float(x.max() + h)
        y0, y1 = float(y.min() - h), float(y.max() + h)
    proj = [[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]
    t = np.linspace(0, 1, n, endpoint=False)
    edges = [
        np.column_stack([xa + (xb - xa) * t, ya + (yb - ya) * t])
        for (xa, ya), (xb, yb) in itertools.pairwise(proj)
    ]
    ring = np.vstack([*edges, edges[0][:1]])
    tr = pyproj.Transformer.from_crs(epsg, 4326, always_xy=True)
    lon, lat = tr.transform(ring[:, 0], ring[:, 1])
    return proj, [[float(a), float(b)] for a, b in zip(lon, lat, strict=True)]


def polygon_wkt(ring: list) -> str:
    """WKT POLYGON text of one closed ring (as ITS_LIVE ``proj_polygon``/``geo_polygon``)."""
    return "POLYGON((" + ",".join(f"{a:.6f} {b:.6f}" for a, b in ring) + "))"


@dataclasses.dataclass(frozen=True)
class Targets:
    """Where to sample.

    Attributes
    ----------
    kind : ``"points"``, ``"profile"`` or ``"polygon"``.
    x, y : coordinates of the points (of the polygon's centroid) in ``crs``.
    crs : their CRS (EPSG:4326 for lon/lat).
    ids : one identifier per point.
    distance : metres along the profile (profiles only).
    polygon : the area (polygons only), in ``crs``.
    """

    kind: str
    x: np.ndarray
    y: np.ndarray
    crs: pyproj.CRS
    ids: list[str]
    distance: np.ndarray | None = None
    polygon: shapely.Geometry | None = None

    def __len__(self) -> int:
        return len(self.x)

    def lonlat(self) -> tuple[np.ndarray, np.ndarray]:
        tr = pyproj.Transformer.from_crs(self.crs, LONLAT, always_xy=True)
        return tr.transform(self.x, self.y)

    def in_crs(self, epsg: int) -> tuple[np.ndarray, np.ndarray]:
        tr = pyproj.Transformer.from_crs(self.crs, pyproj.CRS.from_epsg(epsg), always_xy=True)
        x, y = tr.transform(self.x, self.y)
        return np.asarray(x, "f8"), np.asarray(y, "f8")

    def label(self) -> str:
        if self.kind == "points" and len(self) == 1:
            lon, lat = self.lonlat()
            return f"point_{lon[0]:.4f}_{lat[0]:.4f}"
        return self.kind


def point_targets(
    points: Sequence[Sequence[float]] | np.ndarray,
    crs: CRSLike | None = None,
    ids: Sequence | None = None,
) -> Targets:
    """Points as ``[(x, y), ...]`` in ``crs`` (default lon/lat).

    Raises
    ------
    InputError
        No points, or non-finite coordinates.
    """
    xy = np.asarray(points, "f8").reshape(-1, 2)
    if len(xy) == 0:
        raise InputError("give at least one point", params="points")
    if not np.isfinite(xy).all():
        raise InputError("points must be finite numbers", params="points")
    names = [str(i) for i in (ids if ids is not None else range(len(xy)))]
    crs = parse_crs(crs)
    check_degrees(xy[:, 0], xy[:, 1], crs, "point")
    return Targets("points", xy[:, 0], xy[:, 1], crs, names)


@renamed_params(spacing_m="spacing")
def profile_targets(
    x0: float,
    y0: float,
    x1: float,
    y1: float,
    spacing: float | None = None,
    crs: CRSLike | None = None,
) -> Targets:
    """Points every ``spacing`` metres (default 120, one ITS_LIVE pixel) from (x0, y0) to
    (x1, y1), along the geodesic for lon/lat ends, straight for projected ones.

    Raises
    ------
    InputError
        A profile of zero length, or a spacing that is not positive.
    """
    c = parse_crs(crs)
    return line_targets([(x0, y0), (x1, y1)], spacing, c)


@renamed_params(spacing_m="spacing")
def line_targets(
    vertices: Sequence[Sequence[float]], spacing: float | None = None, crs: CRSLike | None = None
) -> Targets:
    """Points every ``spacing`` metres along a polyline (a flowline or a transect)."""
    step = 120.0 if spacing is None else float(spacing)
    if not step > 0:
        raise InputError(f"spacing must be > 0 m; got {spacing}", params="spacing")
    c = parse_crs(crs)
    v = np.asarray(vertices, "f8").reshape(-1, 2)
    xs, ys, dist = [v[0, 0]], [v[0, 1]], [0.0]
    geod = pyproj.Geod(ellps="WGS84") if c.is_geographic else None
    total = 0.0
    for (ax, ay), (bx, by) in itertools.pairwise(v):
        length = geod.inv(ax, ay, bx, by)[2] if geod else float(np.hypot(bx - ax, by - ay))
        n = int(np.floor(length / step))
        for k in range(1, n + 1):
            f = k * step / length
            if geod:
                px, py = _geod_point(geod, ax, ay, bx, by, f)
            else:
                px, py = ax + f * (bx - ax), ay + f * (by - ay)
            xs.append(px)
            ys.append(py)
            dist.append(total + k * step)
        total += length
    if total <= 0:
        raise InputError("the profile has zero length; give two different ends", params="profile")
    return Targets(
        "profile", np.array(xs), np.array(ys), c, [str(i) for i in range(len(xs))], np.array(dist)
    )


def _geod_point(geod: pyproj.Geod, ax, ay, bx, by, f) -> tuple[float, float]:
    az, _, length = geod.inv(ax, ay, bx, by)
    lon, lat, _ = geod.fwd(ax, ay, az, f * length)
    return float(lon), float(lat)
