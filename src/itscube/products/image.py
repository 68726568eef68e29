"""Image products: ``OUT/image/<collection>_<YYYYMMDD>/`` (rgb.tif, rgb.png, summary.json)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import matplotlib.pyplot as plt
import pyproj

from itscube.geometry import Area
from itscube.grid import grid_template
from itscube.io.files import check_out_dir, staged_folder
from itscube.io.imagery import pick_scene, read_rgb, search_scenes
from itscube.products._common import Product, close_product
from itscube.window import DateLike

__all__ = ["default_crs", "run_image"]


def default_crs(area: Area) -> pyproj.CRS:
    """ITS_LIVE's projection for an area: polar stereographic north (EPSG:3413) above 55 N,
    south (EPSG:3031) below 55 S, else the UTM zone of its centre."""
    c = area.in_crs(4326).centroid
    if c.y >= 55:
        return pyproj.CRS.from_epsg(3413)
    if c.y <= -55:
        return pyproj.CRS.from_epsg(3031)
    zone = int((c.x + 180) // 6) + 1
    return pyproj.CRS.from_epsg((32600 if c.y >= 0 else 32700) + zone)


def run_image(
    area: Area,
    date: DateLike,
    *,
    out: str | os.PathLike = ".",
    window_days: float = 30,
    max_cloud: float = 20,
    collection: str = "sentinel-2-l2a",
    stac: str | None = None,
    like: str | os.PathLike | None = None,
    resolution: float | None = None,
    overwrite: bool = False,
) -> Product:
    """The clearest image nearest ``date`` over ``area``: ``rgb.tif`` (COG, in the cube's CRS
    at native resolution, or on the grid of the cube ``like``), ``rgb.png`` and
    ``summary.json`` (scene, date, cloud cover, provider, licence, the asset URLs read).

    Raises
    ------
    EmptySelectionError
        No scene within ``window_days`` with at most ``max_cloud`` % cloud over the area.
    DownloadError
        The STAC API or the images cannot be reached.
    InputError
        A collection without RGB assets, or requester-pays assets without credentials.
    """
    t_start = time.perf_counter()
    check_out_dir(out)
    scenes = search_scenes(area, date, window_days=window_days, collection=collection, stac=stac)
    scene = pick_scene(scenes, date, area, max_cloud)
    template = None
    if like is not None:
        from itscube.io.cube import open_cube

        template = grid_template(open_cube(like))
        crs = template.rio.crs
    else:
        crs = default_crs(area) if area.crs.is_geographic else area.crs
    rgb = read_rgb(scene, area, crs, like=template, resolution=resolution)
    folder = Path(out) / "image" / f"{collection}_{scene.datetime:%Y%m%d}"
    with staged_folder(folder, overwrite) as tmp:
        files = [_rgb_cog(rgb, tmp / "rgb.tif")]
        files.append(_png(rgb, tmp / "rgb.png"))
        summary = {
            "product": "image",
            "scene": scene.id,
            "collection": scene.collection,
            "datetime": str(scene.datetime),
            "requested_date": str(date),
            "scene_cloud_cover_percent": scene.cloud_cover,
            "area_cloud_percent": None if scene.area_cloud is None else 100 * scene.area_cloud,
            "provider": scene.provider,
            "licence": scene.licence,
            "stac": scene.stac_url,
            "assets": {n: scene.assets[n] for n in scene.rgb_assets()},
            "crs": str(rgb.rio.crs),
            "shape": list(rgb.shape),
            "resolution_m": [abs(v) for v in rgb.rio.resolution()],
        }
        product = close_product(folder, tmp, files, summary, t_start)
    return product


def _rgb_cog(rgb, path: Path) -> Path:
    """An 8-bit RGB Cloud-Optimized GeoTIFF (0 = no data), bands named red, green, blue."""
    out = rgb.copy()
    out.attrs = {"long_name": ("red", "green", "blue")}
    tmp = path.with_name(path.name + ".tmp.tif")
    out.rio.to_raster(tmp, driver="COG", compress="DEFLATE")
    tmp.replace(path)
    return path


def _png(rgb, path: Path) -> Path:
    from itscube.products.figures import draw_background, save

    fig, ax = plt.subplots(figsize=(7, 6))
    draw_background(ax, rgb)
    ax.set_xlabel("x (km)")
    ax.set_ylabel("y (km)")
    ax.set_title(f"{rgb.attrs.get('scene', '')} {rgb.attrs.get('datetime', '')[:10]}", fontsize=10)
    return save(fig, path)
