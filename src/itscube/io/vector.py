"""One reader for every vector input: seeds, points, profiles, polygons and boundaries.

Formats: CSV (x, y or lon, lat columns, optional ``id``), GeoJSON, GeoPackage and
Shapefile (any format GDAL reads, through geopandas/pyogrio). The coordinates' CRS is,
in order: the one the user gives, the file's own (GeoJSON is lon/lat unless it says
otherwise), lon/lat for CSV ``lon, lat`` columns; CSV ``x, y`` columns have none (the
caller decides: the cube's, or an error asking for one).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
from pathlib import Path

import numpy as np
import pyproj
import shapely
import shapely.geometry as sg

from itscube._typing import CRSLike
from itscube.errors import InputError
from itscube.geometry import LONLAT, Area, check_lonlat, parse_crs, polygon_from_coords

__all__ = [
    "CSV_SUFFIXES",
    "Features",
    "polygon_area",
    "read_csv_points",
    "read_features",
]

CSV_SUFFIXES = (".csv", ".txt")


@dataclasses.dataclass
class Features:
    """The geometries of one vector file.

    Attributes
    ----------
    geometries : shapely geometries, one per row or feature (CSV rows are points).
    ids : the ``id`` column or property as text, or None.
    crs : the coordinates' CRS, or None for CSV x, y columns with no CRS given.
    where : how to name the input in messages (``"seeds pts.geojson"``).
    param : the parameter to point at in messages.
    from_csv : whether the file was a CSV of coordinates.
    """

    geometries: list
    ids: list[str] | None
    crs: pyproj.CRS | None
    where: str
    param: str
    from_csv: bool

    def points(self) -> np.ndarray:
        """``(n, 2)`` coordinates of point features (multi-points are split)."""
        pts = [
            (p.x, p.y)
            for g in self.geometries
            for p in (g.geoms if g.geom_type == "MultiPoint" else [g])
            if p.geom_type == "Point"
        ]
        others = {g.geom_type for g in self.geometries} - {"Point", "MultiPoint"}
        if others or not pts:
            found = ", ".join(sorted(others)) or "nothing"
            raise InputError(
                f"{self.where}: needs Point geometries; found {found}", params=self.param
            )
        return np.asarray(pts, "f8")

    def polygon(self):
        """The union of the polygon features (a CSV's rows are the vertices of one)."""
        if self.from_csv:
            return polygon_from_coords(self.points().tolist(), self.where, self.param)
        shapes = [g for g in self.geometries if g.geom_type in ("Polygon", "MultiPolygon")]
        if not shapes:
            raise InputError(f"{self.where}: no Polygon geometry found", params=self.param)
        geom = shapely.union_all(shapes)
        if not geom.is_valid:
            raise InputError(
                f"{self.where}: polygon is not valid ({shapely.is_valid_reason(geom)})",
                params=self.param,
            )
        return geom

    def line(self) -> list[list[float]]:
        """The vertices of the first LineString (a CSV's rows are its vertices)."""
        if self.from_csv:
            return self.points().tolist()
        for g in self.geometries:
            if g.geom_type == "LineString":
                return [list(c[:2]) for c in g.coords]
            if g.geom_type == "MultiLineString":
                return [list(c[:2]) for c in g.geoms[0].coords]
        raise InputError(f"{self.where}: no LineString geometry", params=self.param)


def read_features(
    path: str | os.PathLike, what: str, crs: CRSLike | None = None, param: str | None = None
) -> Features:
    """Read a vector file (CSV, GeoJSON, GeoPackage, Shapefile...).

    Parameters
    ----------
    path : the file.
    what : the input's name in messages (``"seeds"``, ``"points"``, ``"boundary"``...).
    crs : CRS of the coordinates, overriding the file's (``EPSG:XXXX``, an integer, WKT).
    param : the parameter to name in errors (default ``what``).

    Raises
    ------
    InputError
        A missing or unreadable file, no coordinates, a bad CRS.
    """
    p = Path(path)
    param = param or what
    where = f"{what} {path}"
    if not p.is_file():
        raise InputError(f"{where}: file not found", params=param)
    given = parse_crs(crs) if crs is not None else None
    if p.suffix.lower() in CSV_SUFFIXES:
        pts, lonlat = read_csv_points(p)
        geoms = [sg.Point(x, y) for x, y in pts]
        file_crs = LONLAT if lonlat else None
        return Features(geoms, _csv_ids(p), given or file_crs, where, param, True)
    if p.suffix.lower() in (".geojson", ".json"):
        try:
            json.loads(p.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            msg = f"{exc.msg}, line {exc.lineno}" if isinstance(exc, json.JSONDecodeError) else exc
            raise InputError(f"{where}: not valid JSON ({msg})", params=param) from exc
    import geopandas as gpd

    try:
        gdf = gpd.read_file(p)
    except Exception as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        first = first.replace(f"'{p}' ", "").split("; It might help")[0]
        raise InputError(
            f"{where}: cannot read it as a vector file ({first}); give a CSV with x, y or "
            "lon, lat columns, GeoJSON, GeoPackage or Shapefile",
            params=param,
        ) from exc
    gdf = gdf[gdf.geometry.notna() & ~gdf.geometry.is_empty]
    if gdf.empty:
        raise InputError(f"{where}: no geometries in the file", params=param)
    ids = [str(v) for v in gdf["id"]] if "id" in gdf.columns else None
    file_crs = pyproj.CRS(gdf.crs) if gdf.crs is not None else None
    return Features(list(gdf.geometry), ids, given or file_crs, where, param, False)


def _csv_ids(path: Path) -> list[str] | None:
    rows = [r for r in csv.reader(path.read_text().splitlines()) if r and any(r)]
    header = [c.strip().lower() for c in rows[0]]
    if "id" not in header:
        return None
    i = header.index("id")
    return [r[i].strip() if len(r) > i else "" for r in rows[1:]]


_X_NAMES = ("x", "easting", "east", "xcoord", "x_m", "lon", "longitude", "long", "lng")


_Y_NAMES = ("y", "northing", "north", "ycoord", "y_m", "lat", "latitude")


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
        check_lonlat(minx, miny, f"polygon {path}")
        check_lonlat(maxx, maxy, f"polygon {path}")
    return Area(geom, c, f"polygon_{Path(path).stem}")
