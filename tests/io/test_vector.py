"""One vector reader for seeds, points, profiles, polygons and boundaries, in every format."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pyproj
import pytest
import shapely.geometry as sg
import xarray as xr

from itscube import polygon_area, read_boundary
from itscube.errors import InputError
from itscube.io.vector import read_features
from itscube.series import line_from_file, points_from_file
from itscube.track import _seeds_xy

X0, Y0 = -150000.0, -2250000.0
PTS = [(X0, Y0), (X0 + 500, Y0 - 300), (X0 - 700, Y0 + 200)]
RING = [
    (X0 - 3000, Y0 - 3000),
    (X0 + 3000, Y0 - 3000),
    (X0 + 3000, Y0 + 3000),
    (X0 - 3000, Y0 + 3000),
]
FORMATS = {"geojson": "GeoJSON", "gpkg": "GPKG", "shp": "ESRI Shapefile"}
TO_LONLAT = pyproj.Transformer.from_crs(3413, 4326, always_xy=True)


def _write(tmp_path, name, geoms, fmt, crs="EPSG:3413", ids=None):
    gdf = gpd.GeoDataFrame({"id": ids or [f"p{i}" for i in range(len(geoms))]}, geometry=geoms)
    gdf = gdf.set_crs(crs)
    path = tmp_path / f"{name}.{fmt}"
    gdf.to_file(path, driver=FORMATS[fmt])
    return path


@pytest.mark.parametrize("fmt", ["csv", *FORMATS])
def test_points_in_every_format_with_the_files_crs(tmp_path, fmt):
    if fmt == "csv":
        path = tmp_path / "pts.csv"
        path.write_text("id,x,y\n" + "".join(f"p{i},{x},{y}\n" for i, (x, y) in enumerate(PTS)))
        crs = "EPSG:3413"  # a CSV of x, y says nothing of its CRS
    else:
        path = _write(tmp_path, "pts", [sg.Point(p) for p in PTS], fmt)
        crs = None  # taken from the file
    feats = read_features(path, "points", crs)
    np.testing.assert_allclose(feats.points(), PTS)
    assert feats.crs.to_epsg() == 3413 and feats.ids == ["p0", "p1", "p2"]
    targets = points_from_file(path, crs)
    np.testing.assert_allclose(np.column_stack([targets.x, targets.y]), PTS)
    assert targets.crs.to_epsg() == 3413 and list(targets.ids) == ["p0", "p1", "p2"]
    # tracking seeds: the same points in the cube's CRS, whatever the file's
    x, y, ids = _seeds_xy(path, pyproj.CRS(3413), crs)
    np.testing.assert_allclose(np.column_stack([x, y]), PTS, atol=1e-6)
    assert [str(i) for i in ids] == ["p0", "p1", "p2"]


def test_geojson_in_lonlat_is_transformed_to_the_cube(tmp_path):
    lonlat = [TO_LONLAT.transform(*p) for p in PTS]
    path = _write(tmp_path, "pts", [sg.Point(p) for p in lonlat], "geojson", crs="EPSG:4326")
    x, y, _ = _seeds_xy(path, pyproj.CRS(3413))
    np.testing.assert_allclose(np.column_stack([x, y]), PTS, atol=1e-3)


@pytest.mark.parametrize("fmt", ["csv", *FORMATS])
def test_polygons_and_boundaries_in_every_format(tmp_path, fmt):
    if fmt == "csv":
        path = tmp_path / "ring.csv"
        path.write_text("x,y\n" + "".join(f"{x},{y}\n" for x, y in RING))
        crs = "EPSG:3413"
    else:
        path = _write(tmp_path, "ring", [sg.Polygon(RING)], fmt)
        crs = None
    area = polygon_area(path, crs)
    assert area.crs.to_epsg() == 3413 and area.geometry.area == pytest.approx(36e6)
    like = xr.Dataset(
        coords={"x": X0 + 120.0 * np.arange(-40, 41), "y": Y0 - 120.0 * np.arange(-40, 41)}
    )
    like = like.rio.write_crs(3413)
    poly = read_boundary(path, like, crs)
    assert poly.area == pytest.approx(36e6) and poly.exterior.is_ccw


@pytest.mark.parametrize("fmt", ["csv", "geojson", "gpkg"])
def test_profiles_from_a_line_or_csv_vertices(tmp_path, fmt):
    line = [(X0 - 1000, Y0), (X0 + 1000, Y0)]
    if fmt == "csv":
        path = tmp_path / "line.csv"
        path.write_text("x,y\n" + "".join(f"{x},{y}\n" for x, y in line))
        crs = "EPSG:3413"
    else:
        path = _write(tmp_path, "line", [sg.LineString(line)], fmt)
        crs = None
    targets = line_from_file(path, 250.0, crs)
    assert len(targets.x) == 9 and targets.crs.to_epsg() == 3413
    np.testing.assert_allclose(targets.y, Y0)
    np.testing.assert_allclose([targets.x.min(), targets.x.max()], [X0 - 1000, X0 + 1000])


def test_bad_vector_inputs_say_what_is_wrong(tmp_path):
    path = _write(tmp_path, "ring", [sg.Polygon(RING)], "geojson")
    with pytest.raises(
        InputError, match=r"seeds .*ring.geojson: needs Point geometries; found Polygon"
    ):
        _seeds_xy(path, pyproj.CRS(3413))
    junk = tmp_path / "junk.geojson"
    junk.write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON"):
        read_features(junk, "points")
    gpkg = tmp_path / "junk.gpkg"
    gpkg.write_text("not a geopackage")
    with pytest.raises(InputError, match="cannot read it as a vector file"):
        read_features(gpkg, "points")
    with pytest.raises(InputError, match="file not found"):
        read_features(tmp_path / "none.gpkg", "boundary")
    xy = tmp_path / "xy.csv"
    xy.write_text("x,y\n-150000,-2250000\n")
    with pytest.raises(InputError, match="give crs"):
        points_from_file(xy)
