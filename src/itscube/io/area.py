"""Areas of interest: a point, a bounding box or a polygon, in lon/lat or a projected CRS."""

from __future__ import annotations

import csv
import dataclasses
import itertools
import math
from pathlib import Path

import numpy as np
import pyproj
import shapely
import shapely.geometry as sg

from itscube._typing import CRSLike
from itscube.errors import InputError
from itscube.grid import grid_bounds

__all__ = [
    "LONLAT",
    "Area",
    "bbox_area",
    "check_degrees",
    "footprint_rings",
    "parse_crs",
    "point_area",
    "polygon_area",
    "polygon_from_coords",
    "polygon_wkt",
    "read_csv_points",
    "transform_geometry",
]

LONLAT = pyproj.CRS.from_epsg(4326)

_X_NAMES = ("x", "easting", "east", "xcoord", "x_m", "lon", "longitude", "long", "lng")
_Y_NAMES = ("y", "northing", "north", "ycoord", "y_m", "lat", "latitude")


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


def _check_lonlat(lon: float, lat: float, what: str) -> None:
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
        _check_lonlat(x, y, "point")
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
        _check_lonlat(west, south, "bbox")
        _check_lonlat(east, north, "bbox")
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


def read_csv_points(path: Path) -> tuple[np.ndarray, bool]:
    """Points from a CSV with x/y or lon/lat columns; returns (points, looks_lonlat)."""
    text = path.read_text().splitlines()
    rows = [r for r in csv.reader(text) if r and any(c.strip() for c in r)]
    if not rows:
        raise InputError(f"{path}: CSV is empty")
    header = [c.strip().lower() for c in rows[0]]

    def is_num(s: str) -> bool:
        try:
            float(s)
            return True
        except ValueError:
            return False

    has_header = not all(is_num(c) for c in header if c)
    body = rows[1:] if has_header else rows
    if has_header:
        xi = next((header.index(n) for n in _X_NAMES if n in header), None)
        yi = next((header.index(n) for n in _Y_NAMES if n in header), None)
        lonlat = xi is not None and header[xi] in ("lon", "longitude", "long", "lng")
        if xi is None or yi is None:
            others = ", ".join(n for n in _X_NAMES + _Y_NAMES if n not in ("x", "y", "lon", "lat"))
            raise InputError(
                f"{path}: needs two coordinate columns, x, y (projected metres) or lon, lat "
                f"(degrees); found {', '.join(header)} (also accepted: {others})"
            )
    else:
        xi, yi, lonlat = 0, 1, False
    pts = []
    for lineno, r in enumerate(body, start=2 if has_header else 1):
        if len(r) <= max(xi, yi):
            raise InputError(f"{path}, line {lineno}: expected at least {max(xi, yi) + 1} columns")
        try:
            pts.append((float(r[xi]), float(r[yi])))
        except ValueError as exc:
            raise InputError(
                f"{path}, line {lineno}: {r[xi]!r}, {r[yi]!r} are not numbers"
            ) from exc
    return np.array(pts), lonlat


def polygon_area(path: str | Path, crs: CRSLike | None = None) -> Area:
    """Area from a polygon file (GeoJSON, GeoPackage, Shapefile) or a CSV of vertices.

    Parameters
    ----------
    path : vector file with Polygon features, or ``.csv`` with x, y (or lon, lat) columns.
    crs : CRS of the coordinates (default: the file's; lon/lat for CSV and GeoJSON;
        projected CSVs need it).

    Raises
    ------
    InputError
        Missing or unreadable file, no polygon, an invalid polygon, or projected
        coordinates without ``crs``.
    """
    from itscube.io.vector import read_features  # reads with this module's helpers

    feats = read_features(path, "polygon", crs)
    geom = feats.polygon()
    if feats.crs is None and max(abs(b) for b in geom.bounds) > 360:  # CSV x, y in metres
        raise InputError(
            f"polygon {path}: coordinates look projected (metres); add crs EPSG:XXXX",
            params=("polygon", "crs"),
        )
    c = feats.crs or LONLAT
    if c.is_geographic:
        minx, miny, maxx, maxy = geom.bounds
        _check_lonlat(minx, miny, f"polygon {path}")
        _check_lonlat(maxx, maxy, f"polygon {path}")
    return Area(geom, c, f"polygon_{Path(path).stem}")


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
