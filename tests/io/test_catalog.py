"""Catalog parsing, spatial lookup and caching."""

from __future__ import annotations

import json

import pytest
import shapely.geometry as sg

from itscube import CatalogError, CubeNotFoundError, bbox_area, load_catalog, point_area
from itscube._datasets.itslive import catalog_feature, write_catalog
from itscube.io.catalog import parse_catalog
from itscube.testing.server import StoreServer
from tests.helpers import CENTRE_A, CENTRE_B, EPSG, SHAPE


def test_both_catalog_generations_parse(catalog_file):
    cat = load_catalog(catalog_file)
    assert len(cat) == 3
    by_name = {e.name: e for e in cat.entries}
    assert by_name["A.zarr"].epsg == 3413  # new style: integer epsg
    assert by_name["B.zarr"].epsg == 3413  # old style: data_epsg "EPSG:3413"
    assert by_name["UTM.zarr"].epsg == 32622
    assert by_name["A.zarr"].granule_count == 120


def test_find_point_bbox_and_projected(catalog_file):
    cat = load_catalog(catalog_file)
    # a point in the part of A that B does not cover
    x, y = CENTRE_A[0] - 1500, CENTRE_A[1]
    hits = cat.find(point_area(x, y, crs="EPSG:3413"))
    assert [h.name for h in hits] == ["A.zarr"]
    both = cat.find(
        bbox_area(CENTRE_A[0], CENTRE_A[1] - 100, CENTRE_B[0], CENTRE_B[1] + 100, crs="EPSG:3413")
    )
    assert sorted(h.name for h in both) == ["A.zarr", "B.zarr"]
    lonlat = cat.find(point_area(*cat.entries[2].footprint.centroid.coords[0]))
    assert [h.name for h in lonlat] == ["UTM.zarr"]
    assert cat.find(point_area(10.0, 45.0)) == []


def test_edge_point_checked_against_projected_footprint(tmp_path):
    """Inside the lon/lat polygon but outside the projected box: not a hit."""
    feat = catalog_feature("http://x/T.zarr", EPSG, CENTRE_A, SHAPE)
    ll = sg.shape(feat["geometry"]).buffer(0.05)  # a generous lon/lat polygon
    feat["geometry"] = sg.mapping(ll)
    cat = load_catalog(write_catalog(tmp_path / "c.json", [feat]))
    proj = sg.shape(feat["properties"]["geometry_epsg"])
    outside = point_area(proj.bounds[2] + 500, CENTRE_A[1], crs="EPSG:3413")
    assert ll.contains(outside.lonlat())
    assert cat.find(outside) == []
    assert len(cat.find(point_area(proj.bounds[2] - 500, CENTRE_A[1], crs="EPSG:3413"))) == 1


def test_annual_url_listed_or_derived(catalog_file, monkeypatch):
    cat = load_catalog(catalog_file)
    a = next(e for e in cat.entries if e.name == "A.zarr")
    assert a.url("annual").endswith("/A_annual.zarr")
    feat = catalog_feature(
        "http://its-live-data.s3.amazonaws.com/datacubes/v2/N60W040/"
        "ITS_LIVE_vel_EPSG3413_G0120_X-150000_Y-2250000.zarr",
        EPSG,
        CENTRE_A,
        SHAPE,
    )
    (entry,) = parse_catalog({"type": "FeatureCollection", "features": [feat]})
    assert entry.url("subyearly").startswith("https://its-live-data.s3.amazonaws.com/")
    monkeypatch.setenv("ITSCUBE_ANNUAL_ROOT", "https://example.org/annual")
    assert entry.url("annual") == (
        "https://example.org/annual/N60W040/ITS_LIVE_velocity_EPSG3413_120m_X-150000_Y-2250000.zarr"
    )


def test_datacube_exist_zero_is_skipped():
    feat = catalog_feature("http://x/T.zarr", EPSG, CENTRE_A, SHAPE)
    feat["properties"]["datacube_exist"] = 0
    assert parse_catalog({"type": "FeatureCollection", "features": [feat]}) == []


def test_remote_catalog_is_cached(tmp_path, catalog_file):
    served = tmp_path / "served"
    served.mkdir()
    (served / "catalog_v02.json").write_bytes(catalog_file.read_bytes())
    with StoreServer(served) as srv:
        url = f"{srv.url}/catalog_v02.json"
        assert len(load_catalog(url)) == 3
        assert srv.stats.requests == 1
    # server gone: the cached copy is used
    assert len(load_catalog(url)) == 3
    with pytest.raises(CatalogError, match="unreachable"):
        load_catalog(url, refresh=True, cache=False)


def test_bad_catalogs(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(CatalogError, match="not valid JSON"):
        load_catalog(bad)
    bad.write_text(json.dumps({"type": "Feature"}))
    with pytest.raises(CatalogError, match="FeatureCollection"):
        load_catalog(bad)
    with pytest.raises(CatalogError):
        load_catalog(tmp_path / "missing.json")


def test_find_cubes_outside_raises(catalog_file):
    from itscube import find_cubes

    with pytest.raises(CubeNotFoundError, match="no ITS_LIVE cube covers"):
        find_cubes(point_area(10.0, 45.0), load_catalog(catalog_file))


def test_a_mirrored_catalog_is_cached_under_the_url_fetched(tmp_path, catalog_file, monkeypatch):
    """With ITSCUBE_MIRRORS the mirror's copy is cached under the mirror's URL: an unmirrored
    run never answers for the official catalog from it."""
    from itscube.io.catalog import DEFAULT_CATALOG_URL, _cache_path, cache_dir

    served = tmp_path / "served" / "datacubes"
    served.mkdir(parents=True)
    (served / "catalog_v02.json").write_bytes(catalog_file.read_bytes())
    monkeypatch.setenv("ITSCUBE_CACHE_DIR", str(tmp_path / "cache"))
    official_key = _cache_path(DEFAULT_CATALOG_URL)
    with StoreServer(tmp_path / "served") as srv:
        monkeypatch.setenv("ITSCUBE_MIRRORS", f"https://its-live-data.s3.amazonaws.com={srv.url}")
        assert len(load_catalog(DEFAULT_CATALOG_URL)) == 3
        mirror_key = _cache_path(DEFAULT_CATALOG_URL)
    assert mirror_key.exists() and mirror_key != official_key
    assert not official_key.exists()
    assert [p.name for p in cache_dir().glob("catalog_*.json")] == [mirror_key.name]
