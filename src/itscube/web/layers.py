"""Map layers: the rasters and vectors of product folders and cubes, rendered as map tiles.

Rasters are drawn by the server from their GeoTIFFs with rio-tiler (the engine of
TiTiler): each 256 px Web-Mercator tile is warped from the file (its overviews when it is
a COG), scaled to the layer's colour limits and coloured with a matplotlib colour map.
Polar-stereographic and UTM files land where they belong because the warp is GDAL's.
Vectors (tracks, seeds, boundaries) are sent to the page as lon/lat GeoJSON.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import re
import warnings
from pathlib import Path

import numpy as np
from rio_tiler.errors import TileOutsideBounds
from rio_tiler.io import Reader  # imported here: a first import from two threads fails

from itscube.window import DateLike

__all__ = [
    "Layer",
    "colormap",
    "cube_speed_layer",
    "raster_layer",
    "render_tile",
    "scan_folder",
    "vector_geojson",
]

RASTER_SUFFIXES = (".tif", ".tiff")
VECTOR_SUFFIXES = (".gpkg", ".geojson")
_PERIOD = re.compile(r"(\d{8})[_-](\d{8})")


@dataclasses.dataclass
class Layer:
    """One map layer.

    Attributes
    ----------
    id : short stable identifier used in tile URLs.
    name : what the page shows (the file's stem, or the variable).
    path : the GeoTIFF or vector file.
    kind : ``"raster"`` or ``"vector"``.
    group : layers of one quantity over several periods share it (the time slider).
    period : ``"YYYYMMDD-YYYYMMDD"`` when the file's folder names one, else ``""``.
    units, vmin, vmax, cmap : legend and colour limits (rasters).
    bounds : lon/lat bounds (west, south, east, north).
    sublayer : the layer inside a multi-layer vector file (GeoPackage).
    """

    id: str
    name: str
    path: Path
    kind: str
    group: str = ""
    period: str = ""
    units: str = ""
    vmin: float = 0.0
    vmax: float = 1.0
    cmap: str = "viridis"
    bounds: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    sublayer: str = ""

    def to_json(self) -> dict:
        out = dataclasses.asdict(self)
        out.pop("path")
        out["file"] = self.path.name
        if self.kind == "raster" and self.cmap != "rgb":
            cm = colormap(self.cmap)
            stops = (cm[int(i)][:3] for i in np.linspace(0, 255, 11))
            out["legend"] = ["#{:02x}{:02x}{:02x}".format(*rgb) for rgb in stops]
        return out


def _layer_id(path: Path, sublayer: str = "") -> str:
    return hashlib.sha256(f"{path.resolve()}|{sublayer}".encode()).hexdigest()[:12]


@functools.cache
def _float4(bounds) -> tuple[float, float, float, float]:
    """West, south, east, north as floats."""
    west, south, east, north = (float(b) for b in bounds)
    return west, south, east, north


def colormap(name: str) -> dict[int, tuple[int, int, int, int]]:
    """A matplotlib colour map as rio-tiler's ``{value: (r, g, b, a)}`` over 0..255."""
    import matplotlib

    cm = matplotlib.colormaps[name]
    rgba = (np.asarray(cm(np.linspace(0, 1, 256))) * 255).round().astype(int)
    return {i: (int(r), int(g), int(b), int(a)) for i, (r, g, b, a) in enumerate(rgba)}


def raster_layer(path: Path, root: Path | None = None) -> Layer:
    """A raster layer of a GeoTIFF: colour limits from its 2nd-98th percentiles (symmetric
    with a diverging map when values take both signs)."""
    import rasterio
    from rasterio.warp import transform_bounds

    with rasterio.open(path) as src:
        if src.count >= 3 and all(d == "uint8" for d in src.dtypes[:3]):  # an image (rgb.tif)
            bounds = transform_bounds(src.crs, "EPSG:4326", *src.bounds, densify_pts=21)
            rel = path.relative_to(root) if root is not None else Path(path.name)
            return Layer(_layer_id(path), path.stem, path, "raster", group=str(rel),
                         vmin=0.0, vmax=255.0, cmap="rgb",
                         bounds=_float4(bounds))  # fmt: skip
        band = src.read(1, out_shape=(min(src.height, 512), min(src.width, 512))).astype("f8")
        if src.nodata is not None and np.isfinite(src.nodata):
            band[band == src.nodata] = np.nan
        units = (src.units[0] if src.units and src.units[0] else "") or src.tags(1).get(
            "units", src.tags().get("units", "")
        )
        bounds = transform_bounds(src.crs, "EPSG:4326", *src.bounds, densify_pts=21)
    values = band[np.isfinite(band)]
    lo, hi = np.percentile(values, [2, 98]) if values.size else (0.0, 1.0)
    cmap = "viridis"
    if lo < 0 < hi:
        hi = max(abs(lo), abs(hi))
        lo, cmap = -hi, "RdBu_r"
    if hi <= lo:
        hi = lo + 1.0
    period = ""
    rel = path.relative_to(root) if root is not None else Path(path.name)
    match = _PERIOD.search(str(rel.parent)) or _PERIOD.search(path.stem)
    if match:
        period = f"{match.group(1)}-{match.group(2)}"
    group = str(rel.parent.parent / path.stem) if period else str(rel.with_suffix(""))
    return Layer(
        _layer_id(path),
        path.stem,
        path,
        "raster",
        group=group,
        period=period,
        units=str(units),
        vmin=float(lo),
        vmax=float(hi),
        cmap=cmap,
        bounds=_float4(bounds),
    )


def scan_folder(folder: Path) -> list[Layer]:
    """Every GeoTIFF and vector file under a product folder, as layers."""
    layers = []
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or any(p.startswith(".") for p in path.relative_to(folder).parts):
            continue
        suffix = path.suffix.lower()
        if suffix in RASTER_SUFFIXES:
            layers.append(raster_layer(path, folder))
        elif suffix in VECTOR_SUFFIXES:
            import pyogrio

            rel = path.relative_to(folder).with_suffix("")
            names = [str(n) for n, _ in pyogrio.list_layers(path)]
            for name in names:
                sub = name if len(names) > 1 else ""
                group = f"{rel}:{name}" if sub else str(rel)
                layers.append(
                    Layer(_layer_id(path, sub), name, path, "vector", group=group, sublayer=sub)
                )
    return layers


def vector_geojson(path: Path, sublayer: str = "") -> dict:
    """A vector file (or one layer of it) as a lon/lat GeoJSON FeatureCollection."""
    import geopandas as gpd

    gdf = gpd.read_file(path, layer=sublayer or None)
    if gdf.crs is not None:
        gdf = gdf.to_crs(4326)
    return json.loads(gdf.to_json(na="null", drop_id=True))


def cube_speed_layer(cube: str, start: DateLike | None, end: DateLike | None, cache: Path) -> Layer:
    """The median speed of a cube over ``[start, end]`` as a raster layer (a COG written
    once under ``cache``)."""
    from itscube.io.cube import open_cube

    key = hashlib.sha256(f"{cube}|{start}|{end}".encode()).hexdigest()[:12]
    path = cache / f"speed_{key}.tif"
    if not path.exists():
        ds = open_cube(cube, start=start, end=end, variables=["v"], require=("v",))
        tdim = ds.attrs["itscube_time_dim"]
        speed = ds["v"].median(tdim, skipna=True).astype("float32")
        speed.attrs = {"units": "m/yr", "long_name": "median speed"}
        speed = speed.rio.write_crs(ds.rio.crs).rio.write_nodata(np.nan, encoded=False)
        cache.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        speed.rio.to_raster(tmp, driver="COG")
        tmp.replace(path)
    layer = raster_layer(path)
    layer.name = f"median speed {Path(str(cube).rstrip('/')).name}"
    layer.units = "m/yr"
    layer.vmin = 0.0
    layer.cmap = "viridis"
    return layer


def render_tile(layer: Layer, z: int, x: int, y: int) -> bytes | None:
    """A 256 x 256 PNG of ``layer`` at Web-Mercator tile ``z/x/y``; None outside it."""
    _quiet_tile_warnings()
    rgb = layer.cmap == "rgb"
    with Reader(str(layer.path)) as src:
        try:
            img = src.tile(
                x, y, z, tilesize=256, indexes=(1, 2, 3) if rgb else None,
                resampling_method="bilinear" if rgb else "nearest",
            )  # fmt: skip
        except TileOutsideBounds:
            return None
    if rgb:  # an optical image: its own colours
        return img.render(img_format="PNG")
    img.rescale(in_range=((layer.vmin, layer.vmax),))
    return img.render(img_format="PNG", colormap=colormap(layer.cmap))


def _quiet_tile_warnings() -> None:
    """Silence two warnings of the tile libraries, on every thread: numpy.ma casting the
    NaN fill of masked pixels, and rasterio writing a PNG tile (which has no geotransform).
    Process-wide filters (an identical filter replaces itself): ``catch_warnings`` in the
    server's threads swapped the global filters under each other and let them out."""
    from rasterio.errors import NotGeoreferencedWarning

    warnings.filterwarnings(
        "ignore", "invalid value encountered in cast", RuntimeWarning, module="numpy.ma"
    )
    warnings.filterwarnings("ignore", category=NotGeoreferencedWarning, module="rasterio")
