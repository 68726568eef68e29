"""The ITS_LIVE datacube catalog: a GeoJSON FeatureCollection of cube footprints.

Each feature has the footprint in lon/lat as its geometry and, in its
properties, the cube's ``zarr_url``, its projection (``epsg`` as an integer in
the current catalog, ``data_epsg`` as ``"EPSG:XXXX"`` in older ones), the
footprint in projected metres (``geometry_epsg``) and, for some tiles, the
``composite_zarr_url`` of the annual composite.

The catalog is downloaded once and cached (``ITSCUBE_CACHE_DIR``, default
``~/.cache/itscube``) for :data:`CACHE_MAX_AGE_DAYS`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import time
import warnings
from pathlib import Path
from urllib.parse import urljoin

import shapely
import shapely.geometry as sg

from . import remote
from ._typing import KINDS, Kind, check_choice
from .area import Area
from .errors import CatalogError, CubeNotFoundError, ItscubeError

DEFAULT_CATALOG_URL = "https://its-live-data.s3.amazonaws.com/datacubes/catalog_v02.json"
"""Official ITS_LIVE catalog of sub-yearly cubes (same object as s3://its-live-data/datacubes/catalog_v02.json)."""
DEFAULT_ANNUAL_ROOT = "https://its-live-data.s3.amazonaws.com/composites/annual/v2"
"""Where annual composites are looked for when a feature has no ``composite_zarr_url``
(override with ``ITSCUBE_ANNUAL_ROOT``)."""
CACHE_MAX_AGE_DAYS = 7.0


def cache_dir() -> Path:
    """Folder for cached catalogs (``ITSCUBE_CACHE_DIR`` or ``$XDG_CACHE_HOME/itscube``)."""
    if os.environ.get("ITSCUBE_CACHE_DIR"):
        return Path(os.environ["ITSCUBE_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "itscube"


@dataclasses.dataclass(frozen=True)
class CubeEntry:
    """One catalog feature: a datacube and its footprint.

    Attributes
    ----------
    zarr_url : URL of the sub-yearly (image-pair) cube.
    epsg : EPSG code of the cube's projection.
    footprint : footprint polygon in lon/lat (degrees).
    footprint_proj : footprint polygon in the cube projection (m), if the catalog gives it.
    composite_url : URL of the annual composite, if the catalog gives it.
    region : ITS_LIVE region name, if given.
    granule_count : number of image pairs, if given.
    """

    zarr_url: str
    epsg: int
    footprint: shapely.Geometry
    footprint_proj: shapely.Geometry | None = None
    composite_url: str | None = None
    region: str | None = None
    granule_count: int | None = None

    @property
    def name(self) -> str:
        return self.zarr_url.rstrip("/").rsplit("/", 1)[-1]

    def url(self, kind: Kind = "subyearly") -> str:
        """URL of the cube of ``kind`` for this tile (annual: composite URL, or derived)."""
        check_choice(kind, KINDS, "kind")
        if kind == "subyearly":
            return remote.normalise_url(self.zarr_url)
        if self.composite_url:
            return remote.normalise_url(self.composite_url)
        m = re.search(r"_X(-?\d+)_Y(-?\d+)\.zarr", self.name)
        if not m:
            raise CatalogError(f"cannot derive the annual composite URL of {self.zarr_url}")
        root = os.environ.get("ITSCUBE_ANNUAL_ROOT", DEFAULT_ANNUAL_ROOT).rstrip("/")
        region = self.zarr_url.rstrip("/").rsplit("/", 2)[-2]
        return f"{root}/{region}/ITS_LIVE_velocity_EPSG{self.epsg}_120m_X{m[1]}_Y{m[2]}.zarr"

    def to_dict(self) -> dict:
        """JSON-friendly summary (footprints as GeoJSON-like mappings)."""
        return {
            "name": self.name,
            "zarr_url": remote.normalise_url(self.zarr_url),
            "composite_url": self.composite_url,
            "epsg": self.epsg,
            "region": self.region,
            "granule_count": self.granule_count,
            "footprint_lonlat": sg.mapping(self.footprint),
            "bounds_proj": list(self.footprint_proj.bounds) if self.footprint_proj else None,
        }


def _epsg_of(props: dict) -> int:
    for key in ("epsg", "data_epsg", "proj:code"):
        if key in props and props[key] not in (None, ""):
            value = str(props[key]).upper().replace("EPSG:", "")
            return int(value)
    raise ValueError("no epsg/data_epsg property")


def resolve_url(url: str, source: str) -> str:
    """``url`` as given when absolute (a scheme or an absolute path), else relative to the
    catalog ``source`` (a URL or a file path): a mirrored catalog may list its cubes by
    relative names."""
    url = str(url)
    if "://" in url or url.startswith("/"):
        return url
    if remote.protocol_of(source) == "file":
        return str(Path(source).expanduser().resolve().parent / url)
    return urljoin(source, url)


def parse_catalog(doc: dict, source: str = "catalog") -> list[CubeEntry]:
    """Entries of a catalog document (features with ``datacube_exist = 0`` are skipped)."""
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection":
        raise CatalogError(f"{source}: not a GeoJSON FeatureCollection")
    entries = []
    for i, feat in enumerate(doc.get("features", [])):
        props = feat.get("properties") or {}
        if props.get("datacube_exist", 1) in (0, "0", False):
            continue
        try:
            url = props["zarr_url"]
            epsg = _epsg_of(props)
            geom = sg.shape(feat["geometry"])
            proj = sg.shape(props["geometry_epsg"]) if props.get("geometry_epsg") else None
        except Exception as exc:
            raise CatalogError(f"{source}: feature {i} is malformed ({exc})") from exc
        composite = props.get("composite_zarr_url")
        entries.append(
            CubeEntry(
                zarr_url=resolve_url(url, source),
                epsg=epsg,
                footprint=geom,
                footprint_proj=proj,
                composite_url=resolve_url(composite, source) if composite else None,
                region=props.get("region_name"),
                granule_count=props.get("granule_count"),
            )
        )
    return entries


class Catalog:
    """Cube footprints with spatial queries.

    Use :func:`load_catalog` to build one from the official URL, another URL or a file.
    """

    def __init__(self, entries: list[CubeEntry], source: str = "catalog"):
        self.entries = entries
        self.source = source
        self._tree = shapely.STRtree([e.footprint for e in entries])

    def __len__(self) -> int:
        return len(self.entries)

    def find(self, area: Area) -> list[CubeEntry]:
        """Cubes whose footprint intersects ``area``.

        Candidates are found on the lon/lat footprints, then confirmed on the
        projected footprint (``geometry_epsg``) where the catalog gives it, since
        a point near a tile edge can fall inside the lon/lat polygon but outside
        the projected box.
        """
        ll = area.lonlat()
        ll_query = ll.buffer(1e-6) if area.buffer > 0 else ll
        hits = []
        for i in sorted(self._tree.query(ll_query, predicate="intersects")):
            e = self.entries[i]
            if e.footprint_proj is not None:
                g = area.in_crs(e.epsg)
                if not (g.intersects(e.footprint_proj) and not g.touches(e.footprint_proj)):
                    continue
            hits.append(e)
        return hits


def _cache_path(url: str) -> Path:
    return cache_dir() / f"catalog_{hashlib.sha256(url.encode()).hexdigest()[:16]}.json"


def load_catalog(
    source: str | os.PathLike | None = None,
    *,
    cache: bool = True,
    refresh: bool = False,
    max_age_days: float = CACHE_MAX_AGE_DAYS,
) -> Catalog:
    """Load the cube catalog.

    Parameters
    ----------
    source : URL or path; default ``ITSCUBE_CATALOG`` or :data:`DEFAULT_CATALOG_URL`.
    cache : cache remote catalogs on disk.
    refresh : ignore the cached copy.
    max_age_days : cached copies older than this are fetched again.

    Raises
    ------
    CatalogError
        The catalog cannot be reached (and no cached copy exists) or is malformed.
    """
    src = str(source or os.environ.get("ITSCUBE_CATALOG") or DEFAULT_CATALOG_URL)
    is_remote = remote.protocol_of(src) != "file"
    cached = _cache_path(src) if (cache and is_remote) else None
    raw: bytes | None = None
    fresh = cached is not None and cached.exists() and not refresh
    if fresh and time.time() - cached.stat().st_mtime < max_age_days * 86400:
        raw = cached.read_bytes()
    if raw is None:
        try:
            raw = remote.read_text_url(src)
        except (ItscubeError, OSError, Exception) as exc:
            if cached and cached.exists():
                warnings.warn(f"catalog {src} unreachable ({exc}); using cached copy", stacklevel=2)
                raw = cached.read_bytes()
            else:
                raise CatalogError(
                    f"catalog {src} is unreachable ({type(exc).__name__}: {exc}); check the URL "
                    "or network, or pass --catalog PATH"
                ) from exc
        else:
            if cached:
                cached.parent.mkdir(parents=True, exist_ok=True)
                tmp = cached.with_suffix(".tmp")
                tmp.write_bytes(raw)
                tmp.replace(cached)
    try:
        doc = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise CatalogError(f"catalog {src} is not valid JSON ({exc.msg})") from exc
    return Catalog(parse_catalog(doc, src), src)


def find_cubes(area: Area, catalog: Catalog | None = None) -> list[CubeEntry]:
    """Cubes intersecting ``area``; raises :class:`CubeNotFoundError` if there are none."""
    catalog = catalog if catalog is not None else load_catalog()
    hits = catalog.find(area)
    if not hits:
        raise CubeNotFoundError(
            f"no ITS_LIVE cube covers {area.label} "
            f"(catalog {catalog.source}, {len(catalog)} cubes); "
            "check the coordinates (lon lat order) or --crs"
        )
    return hits
