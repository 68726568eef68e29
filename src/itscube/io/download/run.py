"""Running a download: sources from the catalog (or URLs), the plan, the transfer (in this
process or on a dask cluster), resume and provenance; :func:`download` is the entry point."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import json
import os
import platform
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from itscube._typing import KINDS, Kind, check_choice
from itscube._version import __version__
from itscube.cluster import connect
from itscube.errors import (
    DownloadError,
    InputError,
    InsufficientSpaceError,
    OutputExistsError,
)
from itscube.geometry import Area
from itscube.io import remote
from itscube.io.catalog import Catalog, CubeEntry, find_cubes, find_cubes_stac, load_catalog
from itscube.io.download import plan as _plan
from itscube.io.download.encode import _TIMEDELTA_UNITS
from itscube.io.download.plan import (
    DEFAULT_VARIABLES,
    SPACE_FACTOR,
    Block,
    StorePlan,
    plan_download,
)
from itscube.io.download.write import StagedStore, _assemble, _read_static
from itscube.io.files import check_out_dir, date_label
from itscube.io.location import Location
from itscube.io.stores import (
    run_sync,
)
from itscube.options import get_options
from itscube.progress import Progress, ProgressLike, as_progress
from itscube.window import DateLike, Filters, date_bounds

__all__ = [
    "DEFAULT_WORKERS",
    "DownloadResult",
    "check_disk_space",
    "download",
    "output_folder",
]

DEFAULT_WORKERS = 64
"""Requests in flight per source cube by default (S3 and CloudFront serve far more); the
``concurrency`` setting (:func:`itscube.set_options`) changes it."""


@dataclasses.dataclass
class DownloadResult:
    """What a download produced.

    Attributes
    ----------
    folder : output folder (``<kind>_<area>_<start>_<end>``).
    stores : Zarr stores written (one per projection; paths, or URLs on object storage).
    provenance : path of the provenance JSON (written last: its presence marks completion).
    chunks : source chunks the download needed (selected variables and the time coordinate).
    chunks_fetched : requests sent over the network in this run (a sharded chunk costs an
        index read too).
    chunks_cached : chunk reads served by the local chunk cache instead (chunks of an
        interrupted run, or a chunk read twice in this one).
    bytes_fetched : bytes fetched over the network in this run (metadata included).
    layers : time steps in each store.
    blocks : output blocks assembled in this run (of ``blocks_total``).
    notes : what was skipped and why (optional variables a cube lacks).
    already_complete : the folder already held this exact download; nothing was fetched.
    """

    folder: Path | str
    stores: list[Path | str]
    provenance: Path | str
    chunks: int = 0
    chunks_fetched: int = 0
    chunks_cached: int = 0
    bytes_fetched: int = 0
    layers: list[int] = dataclasses.field(default_factory=list)
    blocks: int = 0
    blocks_total: int = 0
    notes: list[str] = dataclasses.field(default_factory=list)
    already_complete: bool = False


# --------------------------------------------------------------------------- plan


_TIMEDELTA_UNITS |= {"seconds": 1.0, "second": 1.0, "s": 1.0, "d": 86400.0}


# --------------------------------------------------------------------------- fetch


# --------------------------------------------------------------------------- write


# --------------------------------------------------------------------------- run


def _free_bytes(path: Path) -> int:
    return shutil.disk_usage(path).free


def check_disk_space(plans: Sequence[StorePlan], folder: Path) -> int:
    """Raise :class:`InsufficientSpaceError` if the output cannot fit; return bytes needed."""
    decoded = sum(p.decoded_bytes for p in plans)
    need = int(decoded * SPACE_FACTOR) + 50_000_000
    free = _free_bytes(folder)
    if free < need:
        raise InsufficientSpaceError(
            f"not enough disk space in {folder}: this download needs about {need / 1e9:.1f} GB "
            f"({decoded / 1e9:.1f} GB decoded) and {free / 1e9:.1f} GB are free; choose "
            "another out, or a smaller area, date range or fewer variables",
            params=("out", "variables"),
        )
    return need


def output_folder(
    out: str | os.PathLike,
    kind: str,
    area: Area,
    t0: _dt.datetime,
    t1: _dt.datetime,
    start: DateLike | None,
    end: DateLike | None,
) -> Path:
    """``OUT/<kind>_<area>_<first day>_<last day>`` (the inclusive end: ``--end 2018`` is
    ``20181231``); open ends say so: ``all-dates``, ``to_<last day>``, ``<first day>_onward``.
    """
    s = None if start is None else f"{t0:%Y%m%d}"
    e = None if end is None else date_label(end, end=True)
    dates = {
        (False, False): f"{s}_{e}",
        (True, True): "all-dates",
        (True, False): f"to_{e}",
        (False, True): f"{s}_onward",
    }[(s is None, e is None)]
    return Path(out) / f"{kind}_{area.label}_{dates}"


def _source_urls(area, kind, catalog, urls, stac) -> list[tuple[str, dict | None]]:
    if urls:
        return [(remote.normalise_url(u), None) for u in urls]
    if stac:
        entries: list[CubeEntry] = find_cubes_stac(area, stac)
    else:
        cat = catalog if isinstance(catalog, Catalog) else load_catalog(catalog)
        entries = find_cubes(area, cat)
    return [(e.url(kind), e.to_dict()) for e in entries]


def download(
    area: Area,
    *,
    start: DateLike | None = None,
    end: DateLike | None = None,
    kind: Kind = "subyearly",
    variables: Sequence[str] | None = None,
    out: str | os.PathLike = ".",
    catalog: Catalog | str | None = None,
    urls: Sequence[str] | None = None,
    stac: str | None = None,
    filters: Filters | None = None,
    workers: int | None = None,
    progress: ProgressLike = None,
    overwrite: bool = False,
    keep_cache: bool = False,
    storage_options: dict | None = None,
    announce: Callable[[str], None] | None = None,
    out_crs: str | int | None = None,
    resolution: float | None = None,
    force: bool = False,
    scheduler: str | None = None,
    client: Any = None,
    out_options: dict | None = None,
) -> DownloadResult:
    """Download the part of ITS_LIVE cubes covering ``area`` and [start, end].

    Reads Zarr v2 and v3 stores (sharded or not) and Icechunk repositories; peak memory
    does not grow with the size of the request (see the module notes).

    Parameters
    ----------
    area : area of interest (see :mod:`itscube.area`); polygons are downloaded by their
        bounding box in the cube projection.
    start, end : dates (inclusive; None = open).
    kind : ``"subyearly"`` (image pairs) or ``"annual"`` (annual composites).
    variables : data variables (default :data:`DEFAULT_VARIABLES`; defaults a cube lacks
        are skipped with a note, variables named here must exist in every cube).
    out : parent folder, local or on object storage (an fsspec URL such as
        ``s3://bucket/prefix``); the output folder ``<kind>_<area>_<start>_<end>`` is
        created in it.
    catalog : catalog object, URL or path (default: official catalog, or ``ITSCUBE_CATALOG``);
        ``catalog_v02.json`` and the chunk-aligned (v2.2) catalog are both understood.
    urls : cube URLs to use instead of a catalog search.
    stac : a STAC API URL to find cubes with instead of a catalog (collection
        ``itslive-cubes``; ``"itslive"`` = the ITS_LIVE endpoint).
    filters : sub-yearly layer filters.
    workers : parallel requests per source cube (default: the ``concurrency`` setting).
    progress : a :class:`itscube.progress.Progress` to report blocks to, or ``True`` for a
        rich progress bar with ETA.
    overwrite : replace a different download already in the output folder.
    keep_cache : keep the raw chunk cache (``.partial``) after success.
    storage_options : extra fsspec options for remote Zarr stores.
    announce : called once with a one-line summary of the plan (layers, grid, decoded size)
        before anything is fetched.
    out_crs : write one store on a regular grid of this CRS (``EPSG:3338``...), with the
        velocity vectors turned to its axes (:mod:`itscube.io.reproject`); the folder name
        ends ``_EPSG<code>``. Default: each cube's own projection, one store per projection.
    resolution : pixel size of that grid, in its units (default 120 m).
    force : allow a resolution finer than a tenth of the source's.
    scheduler : a dask.distributed scheduler address (default ``ITSCUBE_SCHEDULER`` or
        ``DASK_SCHEDULER_ADDRESS``; none: this process). The workers fetch the blocks and
        write them into the output store themselves (:mod:`itscube.io.download.cluster`),
        so ``out`` must be a folder they all reach.
    client : a ``distributed.Client`` to use instead of ``scheduler``.
    out_options : fsspec options for an ``out`` on object storage (``s3://bucket/prefix``;
        default: the environment's credentials, see :mod:`itscube.io.location`).

    Returns
    -------
    DownloadResult

    Raises
    ------
    InputError, CatalogError, CubeNotFoundError, CubeFormatError, EmptySelectionError,
    DownloadError, InsufficientSpaceError, OutputExistsError
    """
    check_choice(kind, KINDS, "kind")
    options = {k: v for k, v in locals().items() if k not in ("area", "scheduler", "client")}
    with connect(scheduler, client) as cluster:
        options.pop("out_crs")
        if out_crs is not None:  # one mosaic in another CRS: the cubes first, then resampled
            from itscube.io.reproject import download_reprojected

            return download_reprojected(area, out_crs=out_crs, client=cluster, **options)
        options = {k: v for k, v in options.items() if k not in ("resolution", "force")}
        return _download(area, cluster=cluster, **options)


def _download(
    area: Area,
    *,
    start,
    end,
    kind,
    variables,
    out,
    catalog,
    urls,
    stac,
    filters,
    workers,
    progress,
    overwrite,
    keep_cache,
    storage_options,
    announce,
    cluster,
    out_options,
) -> DownloadResult:
    """:func:`download` in the cubes' own projections (``cluster``: a client or None)."""
    filters = filters or Filters()
    if kind == "annual" and filters.active():
        raise InputError(
            "min_dt_days/max_dt_days/sensors/min_valid_percent apply to sub-yearly cubes only",
            params=("min_dt_days", "max_dt_days", "sensors", "min_valid_percent"),
        )
    workers = get_options()["concurrency"] if workers is None else workers
    if workers < 1:
        raise InputError("workers must be >= 1", params="workers")
    t0, t1 = date_bounds(start, end)
    top = Location.of(out, out_options)
    if cluster is not None and top.local:  # the workers' working folder is not this one
        top = Location(str(Path(top.url).absolute()))
    if top.local:
        check_out_dir(out)
    else:
        top.check_writable()
    variables = list(variables) if variables else None
    sources = _source_urls(area, kind, catalog, urls, stac)
    folder = top / output_folder(".", kind, area, t0, t1, start, end).name
    query = _query(kind, area, start, end, variables, filters, sources)
    query_id = hashlib.sha256(json.dumps(query, sort_keys=True, default=str).encode()).hexdigest()
    done = _completed(folder, query_id, overwrite)
    if done is not None:
        return done
    partial = folder / ".partial"
    fresh = not folder.exists()
    try:
        partial.mkdir()
        plans, notes = plan_download(
            sources,
            area,
            kind=kind,
            start=start,
            end=end,
            variables=variables,
            filters=filters,
            workers=workers,
            storage_options=storage_options,
            # raw chunks are cached for resuming on a local disk; elsewhere blocks resume
            cache_root=Path(partial.url) / "chunks" if partial.local else None,
        )
        need = check_disk_space(plans, Path(folder.url)) if folder.local else 0
        if announce is not None:
            announce(_plan_line(plans, need))
    except BaseException:
        if fresh:  # nothing worth resuming: leave no debris
            folder.remove()
        raise
    (partial / "query.json").write_text(json.dumps(query, indent=1, default=str))
    try:
        if cluster is not None:  # the workers lay out the same plans from this recipe
            from itscube.io.download.cluster import Recipe, probe_workers

            probe_workers(cluster, partial, remote.normalise_url(sources[0][0]), storage_options)
            what = (area, kind, start, end, tuple(variables or ()) or None, filters, workers)
            here = tuple((remote.normalise_url(u), e) for u, e in sources)  # this env's mirrors
            cluster = (cluster, Recipe(here, *what, storage_options, _plan.BLOCK_BYTES))
        stores, transfer = _fetch_and_write(
            plans, folder, partial, workers, as_progress(progress), cluster
        )
    except DownloadError as exc:  # what was fetched is kept under .partial
        raise DownloadError(f"{exc}; the blocks written are kept: a re-run resumes") from exc
    finally:
        for part in {id(p.cube.store): p for plan in plans for p in plan.parts}.values():
            part.cube.store.close_cache()
    layers = [len(p.times) for p in plans]
    prov = _provenance(plans, query, query_id, catalog, urls, stac, stores, layers, notes, transfer)
    (folder / "provenance.json").write_text(json.dumps(prov, indent=1, default=str))
    if not keep_cache:
        partial.remove()
    return _result(folder, stores, layers, transfer, notes)


def _result(folder: Location, stores, layers, transfer: dict, notes) -> DownloadResult:
    return DownloadResult(
        folder.as_path(),
        stores,
        (folder / "provenance.json").as_path(),
        chunks=transfer["chunks_needed"],
        chunks_fetched=transfer["chunks_fetched_this_run"],
        chunks_cached=transfer["chunks_from_resume_cache"],
        bytes_fetched=transfer["bytes_fetched_this_run"],
        layers=layers,
        blocks=transfer["blocks_assembled_this_run"],
        blocks_total=transfer["blocks"],
        notes=notes,
    )


def _query(kind, area: Area, start, end, variables, filters: Filters, sources) -> dict:
    """What was asked, as recorded in ``provenance.json`` (its hash identifies a download)."""
    return {
        "kind": kind,
        "area": {
            "wkt": area.geometry.wkt,
            "crs": area.crs.to_string(),
            "buffer_m": area.buffer,
            "label": area.label,
        },
        "start": None if start is None else str(start),
        "end": None if end is None else str(end),
        "variables": variables or list(DEFAULT_VARIABLES[kind]),
        "filters": dataclasses.asdict(filters),
        "sources": [u for u, _ in sources],
    }


def _completed(folder: Location | Path, query_id: str, overwrite: bool) -> DownloadResult | None:
    """The finished download of the same query in ``folder``, if there is one; a different
    download there is an error unless ``overwrite`` (then its provenance is dropped)."""
    if not isinstance(folder, Location):
        folder = Location.of(folder)
    prov_path = folder / "provenance.json"
    if not prov_path.exists():
        return None
    prev = json.loads(prov_path.read_text())
    if prev.get("query_id") == query_id:
        stores = [folder / s for s in prev.get("stores", [])]
        if all(s.exists() for s in stores):
            return DownloadResult(
                folder.as_path(),
                [s.as_path() for s in stores],
                prov_path.as_path(),
                already_complete=True,
                layers=prev.get("layers", []),
            )
    if not overwrite:
        raise OutputExistsError(
            f"{folder} already holds a different download; use overwrite or another out",
            params=("overwrite", "out"),
        )
    prov_path.remove()
    return None


def _plan_line(plans: Sequence[StorePlan], need: int) -> str:
    return (
        "; ".join(
            f"{p.name}: {len(p.times)} layers x {len(p.y)} x {len(p.x)} px x "
            f"{len(p.tiled)} variables from {len(p.parts)} cube(s), "
            f"{p.decoded_bytes / 1e9:.2f} GB decoded"
            for p in plans
        )
        + f" (disk needed about {need / 1e9:.2f} GB)"
    )


def _fetch_and_write(
    plans: Sequence[StorePlan],
    folder: Location,
    partial: Location,
    workers: int,
    progress: Progress,
    cluster: tuple | None = None,
) -> tuple[list[Path | str], dict]:
    """Fetch every block into staged stores (here, or as tasks on ``cluster``: a client
    and the recipe of the plans), then finish them; the stores and the transfer figures
    for the provenance."""
    staged = [StagedStore(plan, folder, partial) for plan in plans]
    total = sum(p.n_blocks for p in plans)
    all_parts = [p for plan in plans for p in plan.parts]
    remote_work = {"blocks": 0, "requests": 0, "bytes": 0}
    with progress.task(
        "download", total, detail="blocks · {mb:.1f} MB fetched", keep=True, mb=0.0
    ) as step:
        if cluster is not None:
            from itscube.io.download.cluster import fetch_on_cluster

            for store in staged:
                store.write_small()
            client, recipe = cluster
            remote_work = fetch_on_cluster(client, recipe, staged, step)
            assembled = remote_work["blocks"]
        else:

            def advance(_block: Block, _plan: StorePlan) -> None:
                step(1, mb=sum(p.cube.store.stats.bytes for p in all_parts) / 1e6)

            with zarr.config.set({"async.concurrency": max(10, workers)}):
                assembled = run_sync(_assemble(staged, advance))
    stores: list[Path | str] = []
    for store in staged:
        statics = {
            n: run_sync(_read_static(store.plan, s))
            for n, s in store.plan.specs.items()
            if s.role in ("static", "other")
        }
        stores.append(store.finish(statics))
    transfer = {
        "chunks_needed": sum(p.chunks_needed() for p in plans),
        "chunks_fetched_this_run": sum(p.cube.store.stats.requests for p in all_parts)
        + remote_work["requests"],
        "chunks_from_resume_cache": sum(p.cube.store.stats.cache_hits for p in all_parts),
        "bytes_fetched_this_run": sum(
            p.cube.store.stats.bytes + p.cube.metadata_bytes for p in all_parts
        )
        + remote_work["bytes"],
        "blocks": total,
        "blocks_assembled_this_run": assembled,
    }
    return stores, transfer


def _dist_version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


def _provenance(plans, query, query_id, catalog, urls, stac, stores, layers, notes, transfer):
    if urls:
        cat = None
    elif stac:
        cat = f"stac:{stac}"
    elif isinstance(catalog, Catalog):
        cat = catalog.source
    else:
        cat = str(catalog or os.environ.get("ITSCUBE_CATALOG") or "official")
    versions = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "xarray": _dist_version("xarray"),
        "zarr": zarr.__version__,
        "pandas": _dist_version("pandas"),
    }
    if any(p.cube.format == "icechunk" for plan in plans for p in plan.parts):
        import icechunk

        versions["icechunk"] = icechunk.__version__
    return {
        "itscube_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "complete": True,
        "query_id": query_id,
        "query": query,
        "catalog": cat,
        "stores": [str(s).rstrip("/").rsplit("/", 1)[-1] for s in stores],
        "layers": layers,
        "notes": notes,
        "sources": [
            {
                "url": p.cube.url,
                "format": p.cube.format,
                "snapshot": p.cube.snapshot,
                "epsg": p.cube.epsg,
                "catalog_entry": p.entry,
                "x_range": [float(p.x[p.xi].min()), float(p.x[p.xi].max())],
                "y_range": [float(p.y[p.yi].min()), float(p.y[p.yi].max())],
                "layers_selected": len(p.ti),
            }
            for plan in plans
            for p in plan.parts
        ],
        "projections": {str(plan.epsg): [p.cube.url for p in plan.parts] for plan in plans},
        "transfer": transfer,
        "versions": versions,
    }
