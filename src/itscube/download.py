"""Download space/time subsets of ITS_LIVE cubes to a local Zarr store.

Only the chunk objects that intersect the requested area and dates are
fetched, in parallel (bounded), with retries. Raw chunk bytes are cached in a
``.partial`` folder while the download runs, so an interrupted download (Ctrl-C,
killed process, server gone) continues where it stopped when the same command
is run again; the final store is written under a temporary name and renamed,
and ``provenance.json`` is written last: a folder without it is not complete.

Several cubes in the same projection are mosaicked onto one grid (their pixel
lattices must coincide, as ITS_LIVE tiles do); cubes in different projections
are written to one store each.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import json
import os
import platform
import shutil
from collections.abc import Sequence
from pathlib import Path

import numcodecs
import numpy as np
import pandas as pd
import xarray as xr
import zarr

from . import __version__, remote
from ._typing import KINDS, Kind, check_choice
from .area import Area, footprint_rings, polygon_wkt
from .catalog import Catalog, CubeEntry, find_cubes, load_catalog
from .errors import (
    CubeFormatError,
    EmptySelectionError,
    InputError,
    OutputExistsError,
)
from .temporal import Filters, date_window, layer_mask, parse_date
from .zarrstore import NO_OWNER, ArrayMeta, ChunkCache, RemoteStore, chunk_tasks, fetch_into

DEFAULT_VARIABLES: dict[str, tuple[str, ...]] = {
    "subyearly": (
        "vx",
        "vy",
        "v",
        "v_error",
        "vx_error",
        "vy_error",
        "date_dt",
        "acquisition_date_img1",
        "acquisition_date_img2",
        "date_center",
        "satellite_img1",
        "satellite_img2",
        "mission_img1",
        "mission_img2",
        "sensor_img1",
        "sensor_img2",
        "roi_valid_percentage",
    ),
    "annual": ("vx", "vy", "v", "v_error", "vx_error", "vy_error", "count"),
}
"""Variables downloaded by default (the coordinates and ``mapping`` always come along)."""

TIME_DIM = {"subyearly": "mid_date", "annual": "time"}
OUTPUT_CHUNK_BYTES = 8_000_000
OUTPUT_COMPRESSOR = numcodecs.Blosc(cname="zstd", clevel=1, shuffle=numcodecs.Blosc.SHUFFLE)
"""Compressor of downloaded stores: values and dtypes are the source's, but zstd-1 writes
several times faster than ITS_LIVE's zlib-2 at a similar size."""
"""Target size of one output chunk (a whole spatial tile times a few time steps)."""


@dataclasses.dataclass
class DownloadResult:
    """What a download produced.

    Attributes
    ----------
    folder : output folder (``<kind>_<area>_<start>_<end>``).
    stores : local Zarr stores written (one per projection).
    provenance : path of the provenance JSON (written last: its presence marks completion).
    chunks : chunk objects of the selected variables and time coordinate the download needed.
    chunks_fetched : chunk objects fetched over the network in this run (rest came from the
        resume cache).
    bytes_fetched : bytes fetched over the network in this run (metadata included).
    layers : time steps in each store.
    already_complete : the folder already held this exact download; nothing was fetched.
    """

    folder: Path
    stores: list[Path]
    provenance: Path
    chunks: int = 0
    chunks_fetched: int = 0
    bytes_fetched: int = 0
    layers: list[int] = dataclasses.field(default_factory=list)
    already_complete: bool = False


# --------------------------------------------------------------------------- helpers


def _decode_time(meta: ArrayMeta, raw: np.ndarray) -> np.ndarray:
    attrs = dict(meta.cf_attrs)
    if meta.encoded_fill is not None:
        attrs["_FillValue"] = meta.encoded_fill
    var = xr.conventions.decode_cf_variable(meta.name, xr.Variable((meta.name,), raw, attrs))
    values = np.asarray(var.values)
    if not np.issubdtype(values.dtype, np.datetime64):
        raise CubeFormatError(f"{meta.name}: cannot decode as dates (units {attrs.get('units')!r})")
    return values.astype("datetime64[ns]")


def _cell_overlap(coord: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Indices of pixels whose cell intersects [lo, hi] (a zero-width window picks one)."""
    h = abs(float(coord[1] - coord[0])) / 2 if len(coord) > 1 else 60.0
    return np.nonzero((coord + h > lo) & (coord - h <= hi))[0]


@dataclasses.dataclass
class _Source:
    """One source cube's part of a download."""

    entry_url: str
    store: RemoteStore
    cache: ChunkCache
    xi: np.ndarray
    yi: np.ndarray
    ti: np.ndarray  # source indices of selected layers (source order)
    x: np.ndarray  # full coordinates
    y: np.ndarray
    times: np.ndarray  # decoded times of selected layers
    small: dict[str, np.ndarray]  # coordinates and per-layer arrays read up front
    catalog_entry: dict | None = None


def _lattice_index(coord: np.ndarray, ref: float, step: float, url: str) -> np.ndarray:
    k = (coord - ref) / step
    if np.any(np.abs(k - np.round(k)) > 1e-3):
        raise CubeFormatError(
            f"{url}: its pixel grid is not aligned with the other cubes' grid; "
            "download the cubes separately (one --bbox each)"
        )
    return np.round(k).astype(np.int64)


def _check_same_encoding(sources: Sequence[_Source], variables: Sequence[str]) -> None:
    first = sources[0].store
    for s in sources[1:]:
        for v in variables:
            a, b = first.meta(v), s.store.meta(v)
            same = (
                a.dtype == b.dtype
                and str(a.fill_value) == str(b.fill_value)
                and a.dims == b.dims
                and a.attrs.get("units") == b.attrs.get("units")
                and a.attrs.get("scale_factor") == b.attrs.get("scale_factor")
            )
            if not same:
                raise CubeFormatError(
                    f"{v} is encoded differently in {first.url} and {s.store.url}; "
                    "download these cubes separately"
                )


def _output_chunks(meta: ArrayMeta, shape: tuple[int, ...], tdim: str) -> tuple[int, ...]:
    dims = meta.dims
    if not shape:
        return ()
    if "y" in dims and "x" in dims and dims[0] != "y":
        plane = int(np.prod([n for d, n in zip(dims, shape, strict=True) if d in ("y", "x")]))
        per = max(1, OUTPUT_CHUNK_BYTES // max(1, plane * meta.dtype.itemsize))
        first = min(shape[0], per) if dims[0] == tdim else 1
        return (max(1, first), *shape[1:])
    return tuple(shape)


# --------------------------------------------------------------------------- main entry


def output_folder(
    out: str | os.PathLike, kind: str, area: Area, t0: pd.Timestamp, t1: pd.Timestamp, start, end
) -> Path:
    s = "start" if start is None else f"{t0:%Y%m%d}"
    e = "end" if end is None else f"{parse_date(end, '--end'):%Y%m%d}"
    return Path(out) / f"{kind}_{area.label}_{s}_{e}"


def download(
    area: Area,
    *,
    start: str | None = None,
    end: str | None = None,
    kind: Kind = "subyearly",
    variables: Sequence[str] | None = None,
    out: str | os.PathLike = ".",
    catalog: Catalog | str | None = None,
    urls: Sequence[str] | None = None,
    filters: Filters | None = None,
    workers: int = 32,
    progress: bool = False,
    overwrite: bool = False,
    keep_cache: bool = False,
    storage_options: dict | None = None,
    console=None,
) -> DownloadResult:
    """Download the part of ITS_LIVE cubes covering ``area`` and [start, end].

    Parameters
    ----------
    area : area of interest (see :mod:`itscube.area`); polygons are downloaded by their
        bounding box in the cube projection.
    start, end : dates (inclusive; None = open).
    kind : ``"subyearly"`` (image pairs) or ``"annual"`` (annual composites).
    variables : data variables (default :data:`DEFAULT_VARIABLES`).
    out : parent folder; the output folder ``<kind>_<area>_<start>_<end>`` is created in it.
    catalog : catalog object, URL or path (default: official catalog, or ``ITSCUBE_CATALOG``).
    urls : cube URLs to use instead of a catalog search.
    filters : sub-yearly layer filters.
    workers : parallel requests.
    progress : show a progress bar (rich).
    overwrite : replace a different download already in the output folder.
    keep_cache : keep the raw chunk cache (``.partial``) after success.

    Returns
    -------
    DownloadResult
    """
    check_choice(kind, KINDS, "--kind")
    filters = filters or Filters()
    if kind == "annual" and filters.active():
        raise InputError(
            "--min-dt-days/--max-dt-days/--sensor/--min-valid apply to sub-yearly cubes only"
        )
    if workers < 1:
        raise InputError("--workers must be >= 1")
    t0, t1 = date_window(start, end)
    tdim = TIME_DIM[kind]
    variables = list(variables) if variables else list(DEFAULT_VARIABLES[kind])

    if urls:
        sources_urls = [(remote.normalise_url(u), None) for u in urls]
    else:
        cat = catalog if isinstance(catalog, Catalog) else load_catalog(catalog)
        entries: list[CubeEntry] = find_cubes(area, cat)
        sources_urls = [(e.url(kind), e.to_dict()) for e in entries]

    folder = output_folder(out, kind, area, t0, t1, start, end)
    query = {
        "kind": kind,
        "area": {
            "wkt": area.geometry.wkt,
            "crs": area.crs.to_string(),
            "buffer_m": area.buffer,
            "label": area.label,
        },
        "start": None if start is None else str(start),
        "end": None if end is None else str(end),
        "variables": variables,
        "filters": dataclasses.asdict(filters),
        "sources": [u for u, _ in sources_urls],
    }
    query_id = hashlib.sha256(json.dumps(query, sort_keys=True, default=str).encode()).hexdigest()
    prov_path = folder / "provenance.json"
    if prov_path.exists():
        prev = json.loads(prov_path.read_text())
        if prev.get("query_id") == query_id:
            stores = [folder / s for s in prev.get("stores", [])]
            if all(s.exists() for s in stores):
                return DownloadResult(
                    folder, stores, prov_path, already_complete=True, layers=prev.get("layers", [])
                )
        if not overwrite:
            raise OutputExistsError(
                f"{folder} already holds a different download; use --overwrite or another --out"
            )
        prov_path.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / ".partial"
    partial.mkdir(exist_ok=True)
    (partial / "query.json").write_text(json.dumps(query, indent=1, default=str))

    # ---- open sources and select pixels / layers
    sources: list[_Source] = []
    for url, entry in sources_urls:
        store = RemoteStore(url, storage_options)
        cache = ChunkCache(
            partial / "chunks" / hashlib.sha256(url.encode()).hexdigest()[:16], store.fingerprint
        )
        if tdim not in store:
            other = "annual" if kind == "subyearly" else "subyearly"
            raise CubeFormatError(
                f"{url} has no {tdim!r} dimension: is it an {other} cube? (--kind)"
            )
        unknown = [v for v in variables if v not in store]
        if unknown:
            raise InputError(
                f"unknown variable(s) {', '.join(unknown)} for {store.url}; available: "
                + ", ".join(sorted(n for n in store.arrays if n not in ("x", "y", tdim)))
            )
        missing_filter = [v for v in filters.needed_variables() if v not in store]
        if missing_filter:
            raise CubeFormatError(f"{url} lacks {', '.join(missing_filter)} needed by the filters")
        epsg = _store_epsg(store)
        names = ["x", "y", tdim, *filters.needed_variables()]
        names += [n for n in ("mapping", "sensor") if n in store]
        small = store.read_many(names, cache, workers=workers)
        x, y = small["x"].astype("f8"), small["y"].astype("f8")
        geom = area.in_crs(epsg)
        xmin, ymin, xmax, ymax = geom.bounds
        xi, yi = _cell_overlap(x, xmin, xmax), _cell_overlap(y, ymin, ymax)
        times = _decode_time(store.meta(tdim), small[tdim])
        mask = (times >= np.datetime64(t0)) & (times < np.datetime64(t1))
        mask &= layer_mask(small, filters, len(times))
        ti = np.nonzero(mask)[0]
        if len(xi) == 0 or len(yi) == 0:
            continue
        if len(ti) == 0:
            rng = (
                f"{times.min().astype('datetime64[D]')} to {times.max().astype('datetime64[D]')}"
                if len(times)
                else "no layers"
            )
            raise EmptySelectionError(
                f"no layers of {store.url.rsplit('/', 1)[-1]} between {t0.date()} and "
                f"{(t1 - pd.Timedelta(days=1)).date()} with the given filters (cube covers {rng})"
            )
        sources.append(_Source(url, store, cache, xi, yi, ti, x, y, times[ti], small, entry))
    if not sources:
        raise EmptySelectionError(f"{area.label} selects no pixel of the matching cube(s)")

    groups: dict[int, list[_Source]] = {}
    for s in sources:
        groups.setdefault(_store_epsg(s.store), []).append(s)

    # ---- fetch, decode and place every chunk needed (parallel, resumable), then write
    plans = {epsg: _plan(group, variables, tdim) for epsg, group in groups.items()}
    n_chunks = _fetch_all(plans, workers, progress, console)
    stores: list[Path] = []
    layers: list[int] = []
    for epsg, plan in plans.items():
        name = f"{kind}_EPSG{epsg}.zarr"
        _write_store(folder / name, plan, groups[epsg], variables, tdim, epsg)
        stores.append(folder / name)
        layers.append(len(plan["times"]))

    fetched_chunks = sum(s.store.chunks_fetched for s in sources)
    fetched_bytes = sum(s.store.bytes_fetched + len(s.store.zmetadata_bytes) for s in sources)
    prov = {
        "itscube_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "complete": True,
        "query_id": query_id,
        "query": query,
        "catalog": None
        if urls
        else (
            catalog.source
            if isinstance(catalog, Catalog)
            else str(catalog or os.environ.get("ITSCUBE_CATALOG") or "official")
        ),
        "stores": [s.name for s in stores],
        "layers": layers,
        "sources": [
            {
                "url": s.store.url,
                "epsg": _store_epsg(s.store),
                "catalog_entry": s.catalog_entry,
                "x_range": [float(s.x[s.xi].min()), float(s.x[s.xi].max())],
                "y_range": [float(s.y[s.yi].min()), float(s.y[s.yi].max())],
                "layers_selected": len(s.ti),
            }
            for s in sources
        ],
        "projections": {str(k): [s.store.url for s in v] for k, v in groups.items()},
        "transfer": {
            "chunks_needed": n_chunks,
            "chunks_fetched_this_run": fetched_chunks,
            "bytes_fetched_this_run": fetched_bytes,
        },
        "versions": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "xarray": xr.__version__,
            "zarr": zarr.__version__,
            "pandas": pd.__version__,
        },
    }
    tmp = prov_path.with_name(".provenance.json.tmp")
    tmp.write_text(json.dumps(prov, indent=1, default=str))
    tmp.replace(prov_path)
    if not keep_cache:
        shutil.rmtree(partial, ignore_errors=True)
    return DownloadResult(
        folder,
        stores,
        prov_path,
        chunks=n_chunks,
        chunks_fetched=fetched_chunks,
        bytes_fetched=fetched_bytes,
        layers=layers,
    )


def _store_epsg(store: RemoteStore) -> int:
    if "mapping" in store.arrays and store.meta("mapping").attrs.get("spatial_epsg"):
        return int(store.meta("mapping").attrs["spatial_epsg"])
    proj = store.attrs.get("projection")
    if proj and str(proj).isdigit():
        return int(proj)
    raise CubeFormatError(
        f"{store.url}: no projection (mapping.spatial_epsg or 'projection' attribute)"
    )


def _plan(group: list[_Source], variables: Sequence[str], tdim: str) -> dict:
    """Output grid (mosaic of the group on a shared lattice) and per-source chunk jobs."""
    _check_same_encoding(group, [*variables, "x", "y", tdim])
    first = group[0]
    dx = float(first.x[1] - first.x[0])
    dy = float(first.y[1] - first.y[0])
    kx = [_lattice_index(s.x[s.xi], first.x[0], dx, s.store.url) for s in group]
    ky = [_lattice_index(s.y[s.yi], first.y[0], dy, s.store.url) for s in group]
    for s in group[1:]:
        if abs(float(s.x[1] - s.x[0]) - dx) > 1e-6 or abs(float(s.y[1] - s.y[0]) - dy) > 1e-6:
            raise CubeFormatError(f"{s.store.url}: pixel size differs from {first.store.url}")
    kx0, kx1 = min(k.min() for k in kx), max(k.max() for k in kx)
    ky0, ky1 = min(k.min() for k in ky), max(k.max() for k in ky)
    x_out = first.x[0] + dx * np.arange(kx0, kx1 + 1)
    y_out = first.y[0] + dy * np.arange(ky0, ky1 + 1)
    times = np.unique(np.concatenate([s.times for s in group]))
    jobs_per_source = []
    outputs: dict[str, np.ndarray] = {}
    for s, kxs, kys in zip(group, kx, ky, strict=True):
        jobs = []
        t_pos = np.searchsorted(times, s.times)
        for v in variables:
            m = s.store.meta(v)
            src, dst = [], []
            for d, n in zip(m.dims, m.shape, strict=True):
                if d == tdim:
                    src.append(s.ti), dst.append(t_pos)
                elif d == "x":
                    src.append(s.xi), dst.append(kxs - kx0)
                elif d == "y":
                    src.append(s.yi), dst.append(kys - ky0)
                else:
                    src.append(np.arange(n)), dst.append(np.arange(n))
            if v not in outputs:
                shape = tuple(
                    len(d_)
                    if dim not in (tdim, "x", "y")
                    else {tdim: len(times), "x": len(x_out), "y": len(y_out)}[dim]
                    for dim, d_ in zip(m.dims, src, strict=True)
                )
                outputs[v] = m.filled(shape)
            jobs.append((m, src, dst, outputs[v]))
        t_meta = s.store.meta(tdim)
        if tdim not in outputs:
            outputs[tdim] = t_meta.filled((len(times),))
        jobs.append((t_meta, [s.ti], [t_pos], outputs[tdim]))
        jobs_per_source.append((s, jobs))
    return {"x": x_out, "y": y_out, "times": times, "jobs": jobs_per_source, "outputs": outputs}


def _fetch_all(plans: dict, workers: int, progress: bool, console) -> int:
    """Fetch every chunk of every plan in one bounded pool; returns the number of chunks."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    sources, owners = [], {}
    for plan in plans.values():
        if len(plan["jobs"]) > 1:  # a mosaic: remember which cube wrote each cell
            owners.update(
                {id(o): np.full(o.shape, NO_OWNER, np.int16) for o in plan["outputs"].values()}
            )
        sources += [(src.store, src.cache, jobs) for src, jobs in plan["jobs"]]
    total = sum(1 for _, _, jobs in sources for m, a, b, _ in jobs for _ in chunk_tasks(m, a, b))
    columns = [
        TextColumn("[bold]download"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("chunks"),
        TextColumn("{task.fields[mb]:.1f} MB"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, console=console, disable=not progress) as bar:
        task = bar.add_task("chunks", total=total, mb=0.0)
        received = [0]

        def advance(nbytes: int) -> None:
            received[0] += nbytes
            bar.update(task, advance=1, mb=received[0] / 1e6)

        fetch_into(sources, workers=workers, owners=owners, on_chunk=advance)
    return total


def _write_store(
    path: Path,
    plan: dict,
    group: list[_Source],
    variables: Sequence[str],
    tdim: str,
    epsg: int,
) -> None:
    """Write the assembled output arrays as a Zarr v2 store, atomically (temp name, rename)."""
    first = group[0].store
    tmp = path.with_name(f".{path.name}.tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    root = zarr.open_group(str(tmp), mode="w", zarr_format=2)
    x, y = plan["x"], plan["y"]
    proj_ring, geo_ring = footprint_rings(epsg, x, y)
    attrs = dict(first.attrs)
    attrs.update(
        proj_polygon=polygon_wkt(proj_ring),
        geo_polygon=polygon_wkt(geo_ring),
        itscube_source_urls=" ".join(s.store.url for s in group),
        history=f"subset by itscube {__version__}",
    )
    root.attrs.update(attrs)

    def put(name, data, meta: ArrayMeta | None, dims, attrs, chunks=None):
        if data.dtype.kind == "O":  # variable-length strings are written fixed-width
            data = data.astype(str)
        dtype = data.dtype
        fill = meta.fill_value if meta is not None else None
        if isinstance(fill, float) and np.isnan(fill):
            fill = np.nan
        if dtype.kind in "US":
            fill = None
        arr = root.create_array(
            name,
            shape=data.shape,
            chunks=chunks if chunks is not None else data.shape,
            dtype=dtype,
            fill_value=fill,
            compressors=(OUTPUT_COMPRESSOR,),
            attributes={**attrs, "_ARRAY_DIMENSIONS": list(dims)},
        )
        arr[...] = data

    put("x", x, first.meta("x"), ("x",), first.meta("x").cf_attrs)
    put("y", y, first.meta("y"), ("y",), first.meta("y").cf_attrs)
    tmeta = first.meta(tdim)
    put(tdim, plan["outputs"][tdim], tmeta, (tdim,), tmeta.cf_attrs)
    for v in variables:
        m = first.meta(v)
        data = plan["outputs"][v]
        put(v, data, m, m.dims, m.cf_attrs, _output_chunks(m, data.shape, tdim))
    for extra in ("sensor",):
        if extra in first and any(extra in first.meta(v).dims for v in variables):
            put(
                extra,
                group[0].small[extra],
                first.meta(extra),
                (extra,),
                first.meta(extra).cf_attrs,
            )
    if "mapping" in first:
        m = first.meta("mapping")
        mattrs = dict(m.cf_attrs)
        dx, dy = (x[1] - x[0]) if len(x) > 1 else 120.0, (y[1] - y[0]) if len(y) > 1 else -120.0
        mattrs["GeoTransform"] = " ".join(
            f"{g:.12g}" for g in (x[0] - dx / 2, dx, 0.0, y[0] - dy / 2, 0.0, dy)
        )
        put("mapping", np.array(group[0].small["mapping"]), m, (), mattrs)
    zarr.consolidate_metadata(str(tmp), zarr_format=2)
    if path.exists():
        shutil.rmtree(path)
    tmp.replace(path)
