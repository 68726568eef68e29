"""Synthetic optical scenes (Sentinel-2 L2A style) of an analytic glacier, for the offline
sample and the tests: an RGB ``visual`` COG and a scene-classification (``scl``) COG in a UTM
projection, with the STAC item that describes them as Earth Search does.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyproj
import rioxarray  # noqa: F401  (registers the .rio accessor)
import shapely.geometry as sg
import xarray as xr

from itscube._datasets.fields import OutletGlacier

__all__ = ["SCL_CLOUD", "SCL_ICE", "SCL_ROCK", "write_scene"]

SCL_ROCK, SCL_ICE = 5, 11
"""Scene-classification codes of bare ground and snow/ice (Sentinel-2 L2A)."""
SCL_CLOUD = (8, 9, 10)
"""Cloud (medium, high probability) and cirrus codes."""


def _cog(da: xr.DataArray, path: Path) -> Path:
    da.rio.to_raster(path, driver="COG", compress="DEFLATE")
    return path


def write_scene(
    folder: str | Path,
    scene_id: str,
    date: str,
    field: OutletGlacier,
    bounds: tuple[float, float, float, float],
    *,
    bounds_crs: str = "EPSG:3413",
    epsg: int = 32622,
    resolution: float = 20.0,
    cloud: float = 0.0,
    href_root: str = "",
    seed: int = 0,
) -> dict:
    """Write ``<id>_visual.tif`` (RGB, uint8) and ``<id>_scl.tif`` of the glacier in
    ``bounds`` (in ``bounds_crs``), in UTM ``epsg`` at ``resolution`` m, with a share
    ``cloud`` of the area under cloud; return the STAC item (asset hrefs under ``href_root``).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    to_utm = pyproj.Transformer.from_crs(bounds_crs, f"EPSG:{epsg}", always_xy=True)
    box = sg.box(*bounds)
    ring = np.asarray(box.exterior.coords)
    ux, uy = to_utm.transform(ring[:, 0], ring[:, 1])
    x = np.arange(min(ux) // resolution * resolution, max(ux), resolution) + resolution / 2
    y = np.arange(max(uy) // resolution * resolution, min(uy), -resolution) - resolution / 2
    X, Y = np.meshgrid(x, y)
    back = pyproj.Transformer.from_crs(f"EPSG:{epsg}", bounds_crs, always_xy=True)
    PX, PY = back.transform(X, Y)
    speed = np.hypot(*field(PX, PY, 2018.5))
    ice = speed > 1.0
    rng = np.random.default_rng(seed)
    texture = rng.normal(0, 8, X.shape)
    crevasses = 18 * (np.sin(PX / 60.0 + 0.3 * np.sin(PY / 500.0)) > 0.92) * ice
    rgb = np.where(
        ice,
        np.stack([205 + texture - crevasses, 220 + texture - crevasses, 235 + texture - crevasses]),
        np.stack([110 + texture, 95 + texture, 80 + texture]),
    )
    scl = np.where(ice, SCL_ICE, SCL_ROCK).astype("u1")
    if cloud > 0:
        cx = x.min() + (x.max() - x.min()) * 0.45
        cy = y.min() + (y.max() - y.min()) * 0.5
        r = np.hypot(X - cx, Y - cy)
        cut = np.quantile(r, cloud)  # the share ``cloud`` of the scene nearest its centre
        clouds = r <= cut
        rgb = np.where(clouds, 245 + rng.normal(0, 3, X.shape), rgb)
        scl = np.where(clouds, SCL_CLOUD[1], scl).astype("u1")
    coords = {"y": y, "x": x}
    visual = (
        xr.DataArray(
            np.clip(rgb, 1, 255).astype("u1"),
            dims=("band", "y", "x"),
            coords={"band": [1, 2, 3], **coords},
        )
        .rio.write_crs(f"EPSG:{epsg}")
        .rio.write_nodata(0)
    )
    scl_da = xr.DataArray(scl, dims=("y", "x"), coords=coords).rio.write_crs(f"EPSG:{epsg}")
    _cog(visual, folder / f"{scene_id}_visual.tif")
    _cog(scl_da.rio.write_nodata(0), folder / f"{scene_id}_scl.tif")
    to_ll = pyproj.Transformer.from_crs(f"EPSG:{epsg}", "EPSG:4326", always_xy=True)
    lx, ly = to_ll.transform(
        [x.min(), x.max(), x.max(), x.min()], [y.min(), y.min(), y.max(), y.max()]
    )
    footprint = sg.Polygon(zip(lx, ly, strict=True))
    when = pd.Timestamp(date)
    root = href_root.rstrip("/")
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": scene_id,
        "collection": "sentinel-2-l2a",
        "geometry": sg.mapping(footprint),
        "bbox": list(footprint.bounds),
        "properties": {
            "datetime": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "eo:cloud_cover": round(100.0 * float(cloud), 2),
            "proj:code": f"EPSG:{epsg}",
            "platform": "sentinel-2a",
            "constellation": "sentinel-2",
            "itscube:synthetic": True,
        },
        "links": [],
        "assets": {
            "visual": {
                "href": f"{root}/{scene_id}_visual.tif",
                "type": "image/tiff; application=geotiff; profile=cloud-optimized",
                "roles": ["visual"],
            },
            "scl": {
                "href": f"{root}/{scene_id}_scl.tif",
                "type": "image/tiff; application=geotiff; profile=cloud-optimized",
                "roles": ["data"],
            },
        },
    }
