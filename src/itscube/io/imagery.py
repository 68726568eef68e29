"""Optical images of an area (Sentinel-2 L2A, Landsat Collection 2 L2) from a STAC API.

Search with pystac-client (default: Earth Search; ``"planetary"`` = Microsoft Planetary
Computer, with URL signing by the ``planetary-computer`` package), pick the scene closest to
a date whose cloud over the *area* (from the scene-classification band where there is one,
else the scene's ``eo:cloud_cover``) is within a limit, and read only the window the area
needs from the Cloud-Optimized GeoTIFFs (GDAL range requests), reprojected to the cube's CRS.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence

import numpy as np
import pandas as pd
import shapely.geometry as sg
import xarray as xr

from itscube._typing import CRSLike
from itscube.errors import DownloadError, EmptySelectionError, InputError
from itscube.geometry import Area
from itscube.io import remote
from itscube.window import DateLike, parse_date

__all__ = [
    "COLLECTIONS",
    "EARTH_SEARCH",
    "PLANETARY",
    "Scene",
    "area_cloud",
    "pick_scene",
    "read_rgb",
    "search_scenes",
]

EARTH_SEARCH = "https://earth-search.aws.element84.com/v1"
PLANETARY = "https://planetarycomputer.microsoft.com/api/stac/v1"
COLLECTIONS = {
    "sentinel-2-l2a": {
        "licence": "Contains modified Copernicus Sentinel data (year), processed by ESA; "
        "Copernicus data licence (free, full and open access)",
        "provider": "ESA Copernicus (via the STAC API)",
    },
    "landsat-c2-l2": {
        "licence": "Landsat data courtesy of the U.S. Geological Survey (public domain)",
        "provider": "USGS Landsat Collection 2 (via the STAC API)",
    },
}
"""Collections understood, with their attribution lines."""
SCL_CLOUDY = (3, 8, 9, 10)
"""Scene-classification classes counted as cloud: shadow, medium and high cloud, cirrus."""
GDAL_ENV = {
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".tif,.TIF,.tiff",
    "GDAL_HTTP_MAX_RETRY": "3",
    "GDAL_HTTP_RETRY_DELAY": "0.5",
}


@dataclasses.dataclass
class Scene:
    """One image of a STAC search."""

    id: str
    collection: str
    datetime: pd.Timestamp
    cloud_cover: float | None
    assets: dict[str, str]
    stac_url: str
    area_cloud: float | None = None

    @property
    def licence(self) -> str:
        text = COLLECTIONS.get(self.collection, {}).get("licence", "see the provider's terms")
        return text.replace("(year)", str(self.datetime.year))

    @property
    def provider(self) -> str:
        return COLLECTIONS.get(self.collection, {}).get("provider", self.stac_url)

    def rgb_assets(self) -> list[str]:
        """``["visual"]`` (an RGB COG) or ``["red", "green", "blue"]``.

        Raises
        ------
        InputError
            The item has neither.
        """
        if "visual" in self.assets:
            return ["visual"]
        if {"red", "green", "blue"} <= set(self.assets):
            return ["red", "green", "blue"]
        raise InputError(
            f"scene {self.id} of collection {self.collection} has no RGB assets (visual, or "
            f"red/green/blue; it has {', '.join(sorted(self.assets))}); choose another "
            "collection",
            params="collection",
        )


def _stac_root(stac: str | None) -> str:
    if stac in (None, "", "earth-search"):
        return remote.normalise_url(EARTH_SEARCH)
    if stac == "planetary":
        return PLANETARY
    return remote.normalise_url(str(stac))


def search_scenes(
    area: Area,
    date: DateLike,
    *,
    window_days: float = 30,
    collection: str = "sentinel-2-l2a",
    stac: str | None = None,
    limit: int = 200,
) -> list[Scene]:
    """Scenes of ``collection`` intersecting ``area`` within ``window_days`` of ``date``.

    Raises
    ------
    DownloadError
        The STAC API cannot be reached or searched.
    """
    from pystac_client import Client
    from pystac_client.exceptions import APIError

    when = parse_date(date, "date")
    if collection not in COLLECTIONS and stac in (None, "planetary"):  # known APIs
        raise InputError(
            f"unknown collection {collection!r}; choose {' or '.join(COLLECTIONS)}",
            params="collection",
        )
    root = _stac_root(stac)
    if not window_days >= 0:
        raise InputError(f"window_days must be >= 0; got {window_days}", params="window_days")
    span = pd.Timedelta(days=float(window_days))
    # whole days: window_days=0 is the whole day of date, not its first second
    lo = when.normalize() - span
    hi = when.normalize() + span + pd.Timedelta(days=1) - pd.Timedelta(seconds=1)
    geom = area.lonlat()  # unbuffered: a buffer is metres, not degrees
    modifier = None
    if stac == "planetary":
        try:
            import planetary_computer
        except ImportError as exc:
            raise InputError(
                "stac planetary needs the planetary-computer package to sign asset URLs: "
                "pip install planetary-computer",
                params="stac",
            ) from exc
        modifier = planetary_computer.sign_inplace
    try:
        client = Client.open(root, modifier=modifier)
        found = client.search(
            collections=[collection],
            intersects=sg.mapping(geom),
            datetime=f"{lo:%Y-%m-%dT%H:%M:%SZ}/{hi:%Y-%m-%dT%H:%M:%SZ}",
            max_items=limit,
        )
        items = list(found.items())
    except (APIError, OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DownloadError(
            f"STAC API {root} cannot be searched ({first}); check stac or the network",
            params="stac",
        ) from exc
    return [
        Scene(
            i.id,
            i.collection_id or collection,
            pd.Timestamp(i.datetime).tz_localize(None) if i.datetime else when,
            i.properties.get("eo:cloud_cover"),
            {k: a.href for k, a in i.assets.items()},
            root,
        )
        for i in items
    ]


def _gdal_env(href: str):
    import rasterio

    env = dict(GDAL_ENV)
    if href.startswith("s3://"):
        env["AWS_REQUEST_PAYER"] = "requester"
        if not (os.environ.get("AWS_ACCESS_KEY_ID") or os.environ.get("AWS_PROFILE")):
            raise InputError(
                f"{href} is a requester-pays S3 object (USGS Landsat): set AWS credentials "
                "(AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY) to read it, at your "
                "account's cost, or choose collection sentinel-2-l2a",
                params="collection",
            )
    return rasterio.Env(**env)


def _open(href: str):
    import rioxarray

    with _gdal_env(href):
        try:
            return rioxarray.open_rasterio(href, masked=False)
        except Exception as exc:
            raise DownloadError(f"{href}: cannot be read ({exc})") from exc


def _window(href: str, area: Area, pad_m: float):
    """The part of a COG covering ``area`` (a bare point: a square of ``pad_m`` around it),
    read with range requests."""
    da = _open(href)
    with _gdal_env(href):
        geom = area.in_crs(da.rio.crs)
        if geom.geom_type == "Point":
            geom = geom.buffer(pad_m, cap_style="square")
        minx, miny, maxx, maxy = geom.bounds
        try:
            return da.rio.clip_box(minx, miny, maxx, maxy).load()
        except Exception as exc:  # rioxarray's NoDataInBounds, or a transfer error
            raise EmptySelectionError(
                f"{href} does not cover the area ({type(exc).__name__})"
            ) from exc


def area_cloud(scene: Scene, area: Area) -> float | None:
    """Share of the area under cloud or cloud shadow in the scene's classification band (None
    when the scene has no ``scl`` asset)."""
    href = scene.assets.get("scl")
    if href is None:
        return None
    scl = _window(href, area, 500.0)
    values = np.asarray(scl.values).ravel()
    values = values[values > 0]
    if values.size == 0:
        return 1.0
    return float(np.isin(values, SCL_CLOUDY).mean())


def pick_scene(scenes: Sequence[Scene], date: DateLike, area: Area, max_cloud: float) -> Scene:
    """The scene closest in time to ``date`` whose cloud over ``area`` is at most
    ``max_cloud`` per cent (the classification band decides where there is one).

    Raises
    ------
    EmptySelectionError
        None qualifies; the message lists the nearest dates and their cloud cover.
    """
    if not 0 <= max_cloud <= 100:
        raise InputError(
            f"max_cloud is a percentage from 0 to 100; got {max_cloud:g}", params="max_cloud"
        )
    when = parse_date(date, "date")
    ordered = sorted(scenes, key=lambda s: abs(s.datetime - when))
    for s in ordered:
        if s.cloud_cover is not None and "scl" not in s.assets and s.cloud_cover > max_cloud:
            continue
        s.area_cloud = area_cloud(s, area)
        share = 100 * s.area_cloud if s.area_cloud is not None else s.cloud_cover
        if share is not None and share <= max_cloud:
            return s
    near = (
        ", ".join(f"{s.datetime:%Y-%m-%d} ({_cloud_text(s)})" for s in ordered[:5])
        or "no scene at all"
    )
    raise EmptySelectionError(
        f"no scene with at most {max_cloud:g}% cloud over the area near {when:%Y-%m-%d}; "
        f"nearest: {near}; widen window_days or raise max_cloud",
        params=("window_days", "max_cloud"),
    )


def _cloud_text(s: Scene) -> str:
    if s.area_cloud is not None:
        return f"{100 * s.area_cloud:.0f}% cloud over the area"
    return "cloud unknown" if s.cloud_cover is None else f"{s.cloud_cover:.0f}% cloud"


def read_rgb(
    scene: Scene,
    area: Area,
    crs: CRSLike,
    *,
    like: xr.Dataset | xr.DataArray | None = None,
    resolution=None,
) -> xr.DataArray:
    """The RGB image of ``area`` (uint8, bands red, green, blue) in ``crs``: at native
    resolution (or ``resolution`` m), or on the grid of ``like`` (a cube)."""
    from rasterio.enums import Resampling

    names = scene.rgb_assets()
    bands = [_window(scene.assets[n], area, 2000.0) for n in names]
    if len(bands) == 1:
        rgb = bands[0]
    else:
        rgb = xr.concat([b.squeeze("band", drop=True) for b in bands], dim="band")
        rgb = rgb.assign_coords(band=[1, 2, 3])
        rgb = _stretch(rgb)
    rgb = rgb.astype("u1").rio.write_nodata(0)
    if like is not None:
        out = rgb.rio.reproject_match(
            like.rio.write_crs(like.rio.crs), resampling=Resampling.bilinear
        )
    else:
        out = rgb.rio.reproject(crs, resolution=resolution, resampling=Resampling.bilinear)
    out.attrs.update(scene=scene.id, datetime=str(scene.datetime), licence=scene.licence)
    return out


def _stretch(da: xr.DataArray) -> xr.DataArray:
    """Reflectance bands to 1..255 by a 2-98 percentile stretch (0 stays no data)."""
    v = da.values.astype("f8")
    valid = v > 0
    lo, hi = np.percentile(v[valid], [2, 98]) if valid.any() else (0.0, 1.0)
    scaled = np.clip(1 + 254 * (v - lo) / max(hi - lo, 1e-9), 1, 255)
    return da.copy(data=np.where(valid, scaled, 0))
