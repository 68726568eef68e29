"""Parsing points, boxes and polygons."""

from __future__ import annotations

import json

import pytest

from itscube import InputError, bbox_area, point_area, polygon_area


def test_point_and_buffer():
    a = point_area(-150000, -2250000, crs="EPSG:3413", buffer=500)
    g = a.in_crs(3413)
    assert g.bounds == pytest.approx((-150500, -2250500, -149500, -2249500))
    assert point_area(-49.0, 69.0).label == "point_-49_69"


@pytest.mark.parametrize("bbox", [(1, 2, 0, 3), (0, 3, 1, 2), (0, 0, 0, 1)])
def test_bbox_order_errors(bbox):
    with pytest.raises(InputError, match="W < E and S < N"):
        bbox_area(*bbox)


def test_lonlat_range_checked():
    with pytest.raises(InputError, match="not a lon/lat position"):
        point_area(-150000, -2250000)
    with pytest.raises(InputError, match="CRS"):
        point_area(0, 0, crs="EPSG:99999999")


def test_polygon_csv_and_geojson(tmp_path):
    csv = tmp_path / "outline.csv"
    csv.write_text("Longitude,Latitude\n-49,69\n-48,69\n-48,70\n")
    a = polygon_area(csv)
    assert a.geometry.area == pytest.approx(0.5)
    gj = tmp_path / "outline.geojson"
    gj.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "properties": {},
                        "geometry": {
                            "type": "Polygon",
                            "coordinates": [[[-49, 69], [-48, 69], [-48, 70], [-49, 69]]],
                        },
                    }
                ],
            }
        )
    )
    assert polygon_area(gj).geometry.equals(a.geometry)
    proj = tmp_path / "proj.csv"
    proj.write_text("x,y\n-150000,-2250000\n-149000,-2250000\n-149000,-2249000\n")
    with pytest.raises(InputError, match="look projected"):
        polygon_area(proj)
    assert polygon_area(proj, crs="EPSG:3413").geometry.area == pytest.approx(5e5)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("x,y\n1,2\n3,4\n", "at least 3 distinct"),
        ("x,y\n1,2\n3,abc\n5,6\n", "not numbers"),
        ("x,y\n0,0\n1,1\n1,0\n0,1\n", "not valid"),
    ],
)
def test_polygon_csv_errors(tmp_path, text, match):
    p = tmp_path / "p.csv"
    p.write_text(text)
    with pytest.raises(InputError, match=match):
        polygon_area(p, crs="EPSG:3413")


def test_polygon_file_errors(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        polygon_area(tmp_path / "nope.geojson")
    bad = tmp_path / "bad.geojson"
    bad.write_text("{")
    with pytest.raises(InputError, match="not valid JSON"):
        polygon_area(bad)
    pt = tmp_path / "pt.geojson"
    pt.write_text(json.dumps({"type": "Point", "coordinates": [0, 0]}))
    with pytest.raises(InputError, match="no Polygon"):
        polygon_area(pt)
