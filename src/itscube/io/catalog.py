"""The ITS_LIVE datacube catalog: a GeoJSON FeatureCollection of cube footprints.

Each feature has the footprint in lon/lat as its geometry and, in its
properties, the cube's ``zarr_url``, its projection (``epsg`` as an integer in
the current catalog, ``data_epsg`` as ``"EPSG:XXXX"`` in older ones), the
footprint in projected metres (``geometry_epsg``) and, for some tiles, the
``composite_zarr_url`` of the annual composite.

Two catalog formats are understood, and recognised by their fields:

* ``catalog_v02.json`` (the v2 cubes): ``zarr_url``, ``epsg``/``data_epsg``,
  ``geometry_epsg``, ``datacube_exist``, sometimes ``composite_zarr_url``;
* the chunk-aligned (v2.2) catalog: ``cube_id``, ``epsg``, ``geometry_epsg``,
  ``zarr_url`` + ``datacube_exist`` (a materialised Zarr v3 store) and ``icechunk_url`` +
  ``icechunk_exist`` (an Icechunk repository). The Zarr store is preferred when it exists,
  since its long time chunks suit subsetting; otherwise the Icechunk repository is read.

:func:`find_cubes_stac` finds cubes through a STAC API instead (collection
``itslive-cubes``, asset ``zarr``), as the official ``itslive`` client does.

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

from itscube._typing import KINDS, Kind, check_choice
from itscube.errors import CatalogError, CubeNotFoundError, ItscubeError
from itscube.geometry import Area
from itscube.grid import epsg_of
from itscube.io import remote

__all__ = [
    "CACHE_MAX_AGE_DAYS",
    "DEFAULT_ANNUAL_ROOT",
    "DEFAULT_CATALOG_URL",
    "DEFAULT_STAC_URL",
    "STAC_COLLECTION",
    "Catalog",
    "CubeEntry",
    "cache_dir",
    "catalog_format",
    "find_cubes",
    "find_cubes_stac",
    "load_catalog",
    "parse_catalog",
    "resolve_url",
]

DEFAULT_CATALOG_URL = "https://its-live-data.s3.amazonaws.com/datacubes/catalog_v02.json"
"""Official ITS_LIVE catalog of sub-yearly cubes (same object as s3://its-live-data/datacubes/catalog_v02.json)."""
DEFAULT_STAC_URL = "https://stac.itslive.cloud"
"""ITS_LIVE STAC API (``--stac itslive``)."""
STAC_COLLECTION = "itslive-cubes"
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
    icechunk_url : URL of the Icechunk repository of the tile (chunk-aligned catalog).
    cube_id : tile identifier (chunk-aligned catalog).
    """

    zarr_url: str
    epsg: int
    footprint: shapely.Geometry
    footprint_proj: shapely.Geometry | None = None
    composite_url: str | None = None
    region: str | None = None
    granule_count: int | None = None
    icechunk_url: str | None = None
    cube_id: str | None = None

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
            "icechunk_url": self.icechunk_url,
            "cube_id": self.cube_id,
            "footprint_lonlat": sg.mapping(self.footprint),
            "bounds_proj": list(self.footprint_proj.bounds) if self.footprint_proj else None,
        }


def _epsg_of(props: dict) -> int:
    epsg = epsg_of(*(props.get(k) for k in ("epsg", "data_epsg", "proj:code", "proj:epsg")))
    if epsg is None:
        raise ValueError("no epsg/data_epsg property")
    return epsg


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


def _exists(props: dict, key: str) -> bool:
    return props.get(key, 1) not in (0, "0", False, None)


def catalog_format(doc: object) -> str:
    """``"v02"`` or ``"chunk-aligned"``; a one-line :class:`CatalogError` otherwise."""
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection":
        kind = doc.get("type") if isinstance(doc, dict) else type(doc).__name__
        raise CatalogError(
            f"not an ITS_LIVE cube catalog (a GeoJSON FeatureCollection was expected, got "
            f"{kind!r}); give catalog_v02.json or the chunk-aligned catalog, or use stac",
            params="stac",
        )
    feats = doc.get("features") or []
    props = [f.get("properties") or {} for f in feats[:50] if isinstance(f, dict)]
    if any("icechunk_url" in p or "cube_id" in p for p in props):
        return "chunk-aligned"
    if any("zarr_url" in p for p in props) or not feats:
        return "v02"
    keys = sorted({k for p in props for k in p})[:8]
    raise CatalogError(
        "unknown catalog format: its features have neither zarr_url (catalog_v02.json) nor "
        f"icechunk_url/cube_id (chunk-aligned catalog) (properties: {', '.join(keys) or 'none'})"
    )


def parse_catalog(doc: dict, source: str = "catalog") -> list[CubeEntry]:
    """Entries of a catalog document, in either format (see the module notes).

    Features whose cube does not exist (``datacube_exist = 0``, and for the chunk-aligned
    catalog also ``icechunk_exist = 0``) are skipped.
    """
    try:
        fmt = catalog_format(doc)
    except CatalogError as exc:
        raise CatalogError(f"{source}: {exc}") from None
    entries = []
    for i, feat in enumerate(doc.get("features", [])):
        props = feat.get("properties") or {}
        has_zarr = bool(props.get("zarr_url")) and _exists(props, "datacube_exist")
        has_ice = bool(props.get("icechunk_url")) and _exists(props, "icechunk_exist")
        if not (has_zarr or (fmt == "chunk-aligned" and has_ice)):
            continue
        try:
            url = props["zarr_url"] if has_zarr else props["icechunk_url"]
            epsg = _epsg_of(props)
            geom = sg.shape(feat["geometry"])
            proj = sg.shape(props["geometry_epsg"]) if props.get("geometry_epsg") else None
        except Exception as exc:
            raise CatalogError(f"{source}: feature {i} is malformed ({exc})") from exc
        composite = props.get("composite_zarr_url")
        ice = props.get("icechunk_url") if has_ice else None
        entries.append(
            CubeEntry(
                zarr_url=resolve_url(url, source),
                epsg=epsg,
                footprint=geom,
                footprint_proj=proj,
                composite_url=resolve_url(composite, source) if composite else None,
                region=props.get("region_name"),
                granule_count=props.get("granule_count"),
                icechunk_url=resolve_url(ice, source) if ice else None,
                cube_id=props.get("cube_id"),
            )
        )
    return entries


def find_cubes_stac(
    area: Area, url: str | None = None, collection: str = STAC_COLLECTION
) -> list[CubeEntry]:
    """Cubes intersecting ``area`` from a STAC API (items with a ``zarr`` asset).

    Parameters
    ----------
    area : area of interest.
    url : STAC API root (default or ``"itslive"``: :data:`DEFAULT_STAC_URL`).
    collection : STAC collection of the cubes.

    Raises
    ------
    CatalogError
        The API cannot be reached or answers something else than STAC.
    CubeNotFoundError
        No cube intersects the area.
    """
    from pystac_client import Client
    from pystac_client.exceptions import APIError

    root = remote.normalise_url(DEFAULT_STAC_URL if url in (None, "", "itslive") else str(url))
    try:
        client = Client.open(root)
        items = list(
            client.search(collections=[collection], intersects=sg.mapping(area.lonlat())).items()
        )
    except (APIError, OSError, ValueError, Exception) as exc:
        if isinstance(exc, ItscubeError):
            raise
        raise CatalogError(
            f"STAC API {root} cannot be searched ({type(exc).__name__}: "
            f"{str(exc).strip().splitlines()[0] if str(exc).strip() else ''}); check stac",
            params="stac",
        ) from exc
    entries = []
    for item in items:
        asset = item.assets.get("zarr")
        if asset is None:
            continue
        props = dict(item.properties)
        try:
            epsg = _epsg_of(props)
        except ValueError:
            raise CatalogError(
                f"STAC item {item.id} has no proj:code/proj:epsg; cannot tell its projection"
            ) from None
        proj = sg.shape(props["proj:geometry"]) if props.get("proj:geometry") else None
        entries.append(
            CubeEntry(
                zarr_url=remote.normalise_url(asset.href),
                epsg=epsg,
                footprint=sg.shape(item.geometry),
                footprint_proj=proj,
                cube_id=item.id,
            )
        )
    hits = Catalog(entries, f"stac:{root}").find(area) if entries else []
    if not hits:
        raise CubeNotFoundError(
            f"no ITS_LIVE cube covers {area.label} (STAC API {root}, collection {collection})"
        )
    return hits


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
    """Where the catalog fetched for ``url`` is cached: keyed by the URL actually fetched
    (after ``ITSCUBE_MIRRORS``), so a mirror's copy never answers for the official one."""
    fetched = remote.normalise_url(url)
    return cache_dir() / f"catalog_{hashlib.sha256(fetched.encode()).hexdigest()[:16]}.json"


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
    if not is_remote and not Path(src.removeprefix("file://")).is_file():
        raise CatalogError(
            f"catalog {src}: no such file; give an existing GeoJSON file, or a URL",
            params="catalog",
        )
    cached = _cache_path(src) if (cache and is_remote) else None
    raw: bytes | None = None
    fresh = cached is not None and cached.exists() and not refresh
    if cached is not None and fresh and time.time() - cached.stat().st_mtime < max_age_days * 86400:
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
                    "or network, or pass catalog PATH",
                    params="catalog",
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


def find_cubes(area: Area, catalog: Catalog | str | os.PathLike | None = None) -> list[CubeEntry]:
    """Cubes intersecting ``area``.

    Parameters
    ----------
    area : point, box or polygon (:mod:`itscube.geometry`).
    catalog : a :class:`Catalog`, a catalog URL or path, or None for the official one
        (``ITSCUBE_CATALOG`` overrides it).

    Raises
    ------
    CubeNotFoundError
        No cube covers ``area``.
    CatalogError
        The catalog cannot be read.
    """
    if not isinstance(catalog, Catalog):
        catalog = load_catalog(catalog)
    hits = catalog.find(area)
    if not hits:
        raise CubeNotFoundError(
            f"no ITS_LIVE cube covers {area.label} "
            f"(catalog {catalog.source}, {len(catalog)} cubes); "
            "check the coordinates (lon lat order) or crs",
            params="crs",
        )
    return hits
