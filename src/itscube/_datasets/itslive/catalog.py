"""Catalog features (``catalog_v02.json`` entries) of synthetic cubes and the catalog file."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from itscube._datasets.itslive.grid import (
    tile_coords,
)
from itscube.geometry import footprint_rings

__all__ = [
    "catalog_feature",
    "write_catalog",
]


def catalog_feature(
    zarr_url: str,
    epsg: int,
    centre: tuple[float, float],
    shape: tuple[int, int],
    *,
    composite_zarr_url: str | None = None,
    granule_count: int | None = None,
    region: str = "SYNTH",
    new_style: bool = True,
    y_offset: float | None = None,
) -> dict:
    """A GeoJSON feature for ``catalog_v02.json`` describing one cube footprint."""
    x, y = tile_coords(centre, shape, y_offset=y_offset)
    proj_ring, geo_ring = footprint_rings(epsg, x, y)
    props: dict = {
        "fill-opacity": 0.98,
        "fill": "red",
        "roi_percent_coverage": 100.0,
        "geometry_epsg": {"type": "Polygon", "coordinates": [proj_ring]},
        "datacube_exist": 1,
        "zarr_url": zarr_url,
        "region_name": region,
        "region_id": region,
    }
    if new_style:
        props["epsg"] = int(epsg)
    else:
        props["data_epsg"] = f"EPSG:{epsg}"
    if granule_count is not None:
        props["granule_count"] = int(granule_count)
    if composite_zarr_url:
        props["composite_zarr_url"] = composite_zarr_url
    return {
        "type": "Feature",
        "geometry": {"type": "Polygon", "coordinates": [geo_ring]},
        "properties": props,
    }


def write_catalog(path: str | Path, features: Sequence[dict]) -> Path:
    """Write a GeoJSON FeatureCollection in the layout of ITS_LIVE ``catalog_v02.json``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"type": "FeatureCollection", "features": list(features)}))
    return path
