"""Download space/time subsets of ITS_LIVE cubes to a local Zarr store, in bounded memory.

A download runs in three steps that can be used (and tested) on their own:

1. :func:`plan_download` opens every source cube (Zarr v2, Zarr v3 or Icechunk, through
   :mod:`itscube.io.stores`), selects pixels and layers, and lays out one output store per
   projection: the mosaic grid on the shared 120 m lattice, the sorted time axis, the
   encodings and the *blocks* the output is assembled in.
2. :func:`fetch_block` reads one block from every source cube that covers it (only the
   chunks that intersect it; each raw chunk is cached on disk as it arrives, so nothing
   crosses the network twice and an interrupted download resumes at chunk granularity)
   and mosaics them: the first cube wins where tiles overlap, later cubes fill its gaps.
3. :class:`StagedStore` writes each block into the output store under a temporary name,
   marks it done, and finally moves the store into place; ``provenance.json`` is written
   last, so a folder without it is not complete.

Peak memory is set by the block size (:data:`BLOCK_BYTES`) and the number of blocks in
flight (:data:`IN_FLIGHT_BYTES`), not by the size of the request.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as _dt
import hashlib
import json
import math
import os
import platform
import shutil
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numcodecs
import numpy as np
import pandas as pd
import zarr

from itscube._typing import KINDS, Kind, check_choice
from itscube._version import __version__
from itscube.cluster import connect
from itscube.errors import (
    CubeFormatError,
    DownloadError,
    EmptySelectionError,
    InputError,
    InsufficientSpaceError,
    OutputExistsError,
)
from itscube.geometry import Area, footprint_rings, polygon_wkt
from itscube.grid import PIXEL_M, half_cell, spacing
from itscube.io import cf, remote
from itscube.io._zarr_private import async_array
from itscube.io.catalog import Catalog, CubeEntry, find_cubes, find_cubes_stac, load_catalog
from itscube.io.chunkread import orthogonal_index
from itscube.io.files import check_out_dir, date_label
from itscube.io.location import Location
from itscube.io.stores import (
    SourceArray,
    SourceCube,
    decode_values,
    missing_mask,
    open_source,
    run_sync,
)
from itscube.options import get_options
from itscube.progress import Progress, ProgressLike, as_progress
from itscube.window import Filters, date_window, layer_mask

__all__ = [
    "BLOCK_BYTES",
    "DEFAULT_VARIABLES",
    "DEFAULT_WORKERS",
    "IN_FLIGHT_BYTES",
    "LONG_TIME_CHUNK",
    "MID_DATE_ENCODING",
    "OUTPUT_CHUNK_BYTES",
    "OUTPUT_COMPRESSOR",
    "SPACE_FACTOR",
    "TIME_DIM",
    "Block",
    "DownloadResult",
    "Part",
    "StagedStore",
    "StorePlan",
    "VarSpec",
    "check_disk_space",
    "decode_times",
    "download",
    "fetch_block",
    "missing_mask",
    "output_folder",
    "plan_download",
    "to_output",
]

DEFAULT_WORKERS = 64
"""Requests in flight per source cube by default (S3 and CloudFront serve far more); the
``concurrency`` setting (:func:`itscube.set_options`) changes it."""

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
"""Variables downloaded by default (the coordinates and ``mapping`` always come along).
A default variable that a cube lacks (optional metadata differs between cube vintages) is
skipped with a note; a variable named explicitly must be in every cube."""

TIME_DIM = {"subyearly": "mid_date", "annual": "time"}
"""Time dimension of the output store, whatever the source calls it (v2.2 image-pair cubes
call it ``time``)."""
MID_DATE_ENCODING = {"units": "days since 1970-01-01", "calendar": "proleptic_gregorian"}
"""Encoding of the output ``mid_date`` (float64, as ITS_LIVE v2; keeps the microsecond token)."""

BLOCK_BYTES = 16_000_000
"""Decoded size of one output block (all variables together)."""
IN_FLIGHT_BYTES = 128_000_000
"""Decoded bytes of blocks being fetched at once (as many again may be being written);
with the decoded source chunks in flight this bounds the resident memory of a download
whatever its size."""
OUTPUT_CHUNK_BYTES = 8_000_000
"""Target size of one output chunk (a spatial block times a few time steps)."""
LONG_TIME_CHUNK = 64
"""Sources whose time chunks hold at least this many layers (ITS_LIVE image-pair cubes:
20,000) are assembled in spatial blocks spanning all dates; others (annual composites,
Icechunk virtual cubes with one layer per chunk) in time blocks spanning the area."""
SPACE_FACTOR = 0.6
"""Disk needed per decoded byte (compressed chunk cache + compressed output), a cautious
figure: ITS_LIVE int16 velocities compress 3-6 times."""
OUTPUT_COMPRESSOR = numcodecs.Blosc(cname="zstd", clevel=1, shuffle=numcodecs.Blosc.SHUFFLE)
"""Compressor of downloaded stores: values and dtypes are the source's, but zstd-1 writes
several times faster than ITS_LIVE's zlib-2 at a similar size."""


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


@dataclasses.dataclass
class Part:
    """One source cube's share of an output store.

    ``xi, yi, ti`` are the selected source indices (``ti`` in source order); ``kx, ky,
    t_pos`` their positions in the output grid and time axis.
    """

    cube: SourceCube
    entry: dict | None
    xi: np.ndarray
    yi: np.ndarray
    ti: np.ndarray
    x: np.ndarray
    y: np.ndarray
    times: np.ndarray
    kx: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, np.int64))
    ky: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, np.int64))
    t_pos: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, np.int64))

    def source_name(self, name: str, tdim: str) -> str:
        """The source's name of output variable ``name`` (v2.2 cubes call mid_date time)."""
        return self.cube.time_dim if name == tdim else name

    def has(self, name: str, tdim: str) -> bool:
        return self.source_name(name, tdim) in self.cube


@dataclasses.dataclass
class VarSpec:
    """Output encoding of one variable (taken from the first cube that has it).

    ``role``: ``"tiled"`` (time, y, x: assembled in blocks), ``"layer"`` (time only),
    ``"static"`` (y, x without time: read whole at the end) or ``"other"``.
    """

    name: str
    dims: tuple[str, ...]
    dtype: np.dtype
    missing: Any
    attrs: dict
    role: str
    chunks: tuple[int, ...] = ()

    @property
    def time_like(self) -> bool:
        return " since " in str(self.attrs.get("units", ""))

    def filled(self, shape: tuple[int, ...]) -> np.ndarray:
        """An array of missing values (what no cube covers)."""
        if self.dtype.kind in "OUST":
            return np.full(shape, "", dtype=self.dtype)
        return np.full(shape, 0 if self.missing is None else self.missing, dtype=self.dtype)

    def is_missing(self, values: np.ndarray) -> np.ndarray:
        if self.dtype.kind in "OUST":
            return values == ""
        return missing_mask(values, self.missing)


def _place(out: np.ndarray, where, data: np.ndarray, spec: VarSpec, first: bool) -> None:
    """Put a cube's ``data`` at ``where``: the first cube writes everything, later cubes of
    a mosaic only fill the cells still missing."""
    if first:
        out[where] = data
    else:
        cur = out[where]
        out[where] = np.where(spec.is_missing(cur) & ~spec.is_missing(data), data, cur)


@dataclasses.dataclass
class Block:
    """One unit of work: output index ranges ``[t0, t1) x [y0, y1) x [x0, x1)``."""

    index: int
    t0: int
    t1: int
    y0: int
    y1: int
    x0: int
    x1: int

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.t1 - self.t0, self.y1 - self.y0, self.x1 - self.x0)


@dataclasses.dataclass
class StorePlan:
    """Everything needed to write one output store (one projection)."""

    kind: str
    epsg: int
    tdim: str
    x: np.ndarray
    y: np.ndarray
    times: np.ndarray
    parts: list[Part]
    specs: dict[str, VarSpec]
    layer_values: dict[str, np.ndarray]
    block_shape: tuple[int, int, int]

    @property
    def name(self) -> str:
        return f"{self.kind}_EPSG{self.epsg}.zarr"

    @property
    def tiled(self) -> list[VarSpec]:
        return [s for s in self.specs.values() if s.role == "tiled"]

    def blocks(self) -> Iterator[Block]:
        """The output blocks, in order (each holds whole output chunks)."""
        bt, by, bx = self.block_shape
        nt, ny, nx = len(self.times), len(self.y), len(self.x)
        k = 0
        for t0 in range(0, nt, bt):
            for y0 in range(0, ny, by):
                for x0 in range(0, nx, bx):
                    yield Block(k, t0, min(nt, t0 + bt), y0, min(ny, y0 + by), x0, min(nx, x0 + bx))
                    k += 1

    @property
    def n_blocks(self) -> int:
        bt, by, bx = self.block_shape
        return (
            math.ceil(len(self.times) / bt)
            * math.ceil(len(self.y) / by)
            * math.ceil(len(self.x) / bx)
        )

    @property
    def decoded_bytes(self) -> int:
        """Decoded size of the output (tiled variables: the bulk of it)."""
        plane = len(self.times) * len(self.y) * len(self.x)
        return sum(plane * s.dtype.itemsize for s in self.tiled)

    def chunks_needed(self) -> int:
        """Source chunks of the selected variables and time coordinate that the download reads."""
        n = 0
        for p in self.parts:
            for name, spec in self.specs.items():
                if not p.has(name, self.tdim):
                    continue
                arr = p.cube[p.source_name(name, self.tdim)]
                sel = []
                for d, size in zip(arr.dims, arr.shape, strict=True):
                    sel.append(
                        {p.cube.time_dim: p.ti, "y": p.yi, "x": p.xi}.get(d, np.arange(size))
                    )
                if spec.role in ("tiled", "layer", "static") or name == self.tdim:
                    n += len(arr.chunk_ids(sel))
        return n

    def layout_id(self) -> str:
        """Changes whenever the output layout or a source changes (resume safety)."""
        doc = {
            "x": self.x.tolist(),
            "y": self.y.tolist(),
            "t": self.times.astype("int64").tolist(),
            "vars": {
                k: [str(s.dtype), str(s.missing), list(s.chunks), list(s.dims)]
                for k, s in self.specs.items()
            },
            "block": list(self.block_shape),
            "sources": [p.cube.fingerprint for p in self.parts],
        }
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def _cell_overlap(coord: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Indices of pixels whose cell intersects [lo, hi] (a zero-width window picks one)."""
    h = half_cell(coord)
    return np.nonzero((coord + h > lo) & (coord - h <= hi))[0]


def _lattice_index(coord: np.ndarray, ref: float, step: float, url: str) -> np.ndarray:
    k = (coord - ref) / step
    if np.any(np.abs(k - np.round(k)) > 1e-3):
        raise CubeFormatError(
            f"{url}: its pixel grid is not aligned with the other cubes' grid; "
            "download the cubes separately (one bbox each)",
            params="bbox",
        )
    return np.round(k).astype(np.int64)


def decode_times(arr: SourceArray, raw: np.ndarray) -> np.ndarray:
    """CF-decode an encoded time variable to ``datetime64[ns]`` (NaT where missing)."""
    values = decode_values(arr, raw)
    if not np.issubdtype(values.dtype, np.datetime64):
        units = arr.attrs.get("units")
        raise CubeFormatError(f"{arr.name}: cannot decode as dates (units {units!r})")
    return values


_TIMEDELTA_UNITS = {"days": 86400.0, "day": 86400.0, "hours": 3600.0, "minutes": 60.0}
_TIMEDELTA_UNITS |= {"seconds": 1.0, "second": 1.0, "s": 1.0, "d": 86400.0}


def to_output(values: np.ndarray, src: SourceArray, spec: VarSpec) -> np.ndarray:
    """Encoded ``values`` of ``src`` in the encoding of ``spec`` (cubes of a mosaic may
    differ: time units, missing markers, strings)."""
    if spec.dtype.kind in "OUST":
        return np.asarray(values).astype(str).astype(object)
    if spec.time_like:
        if src.attrs.get("units") == spec.attrs.get("units") and src.dtype == spec.dtype:
            return _translate_missing(values, src, spec)
        dates = decode_times(src, values)
        enc = cf.encode_times(dates, spec.attrs["units"], spec.attrs.get("calendar"), spec.dtype)
        nat = np.isnat(dates)
        if nat.any():
            enc[nat] = np.nan if spec.missing is None else spec.missing
        return enc
    su, du = src.units.lower(), str(spec.attrs.get("units", "")).lower()
    if su != du and su in _TIMEDELTA_UNITS and du in _TIMEDELTA_UNITS:
        miss = missing_mask(values, src.missing)
        out = values.astype("f8") * (_TIMEDELTA_UNITS[su] / _TIMEDELTA_UNITS[du])
        out[miss] = np.nan
        return _encode_numeric(out, spec)
    if values.dtype == spec.dtype:
        return _translate_missing(values, src, spec)
    out = values.astype("f8")
    out[missing_mask(values, src.missing)] = np.nan
    return _encode_numeric(out, spec)


def _translate_missing(values: np.ndarray, src: SourceArray, spec: VarSpec) -> np.ndarray:
    if _missing_equal(src.missing, spec.missing):
        return values
    out = values.copy()
    out[missing_mask(values, src.missing)] = spec.missing if spec.missing is not None else 0
    return out


def _missing_equal(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return bool(a == b) or (bool(np.isnan(a)) and bool(np.isnan(b)))


def _encode_numeric(values: np.ndarray, spec: VarSpec) -> np.ndarray:
    nan = np.isnan(values)
    if spec.dtype.kind in "iu":
        values = np.where(nan, 0, np.round(values))
    out = values.astype(spec.dtype)
    if nan.any():
        out[nan] = np.nan if spec.missing is None else spec.missing
    return out


def _spec_for(name: str, arr: SourceArray, tdim: str, src_tdim: str) -> VarSpec:
    dims = tuple(tdim if d == src_tdim else d for d in arr.dims)
    if dims == (tdim, "y", "x"):
        role = "tiled"
    elif dims == (tdim,):
        role = "layer"
    elif "y" in dims and "x" in dims and tdim not in dims:
        role = "static"
    elif tdim in dims:
        raise CubeFormatError(
            f"{name}: dims {dims} are not supported (expected ({tdim}, y, x) or ({tdim},))"
        )
    else:
        role = "other"
    dtype = np.dtype(object) if arr.is_string else arr.dtype
    attrs = dict(arr.attrs)
    missing = arr.missing
    if name == tdim and tdim == "mid_date":
        attrs.update(MID_DATE_ENCODING)
        dtype, missing = np.dtype("f8"), None
    return VarSpec(name, dims, dtype, missing, attrs, role)


def _choose_blocks(
    plan_parts: list[Part],
    tiled: list[VarSpec],
    nt: int,
    ny: int,
    nx: int,
    t_span: int = 0,
    block_bytes: int | None = None,
):
    """Block shape and per-variable output chunks (see :data:`LONG_TIME_CHUNK`).

    ``t_span``: source layers spanned by the selection (read as one range, then picked),
    which sets the decoded size of a spatial block of image pairs.
    """
    block_bytes = BLOCK_BYTES if block_bytes is None else block_bytes
    bpp = max(1, sum(s.dtype.itemsize for s in tiled))
    itemsize = max([s.dtype.itemsize for s in tiled] or [1])
    src_chunks: tuple[int, ...] = (LONG_TIME_CHUNK, 10, 10)
    for p in plan_parts:
        for s in tiled:
            if s.name in p.cube:
                src_chunks = p.cube[s.name].chunks
                break
        else:
            continue
        break
    ct, cy, cx = src_chunks
    if ct >= LONG_TIME_CHUNK:  # image pairs: spatial blocks holding every date
        side = int(math.sqrt(block_bytes / max(1, max(nt, t_span) * bpp)))
        side = max(min(cy, cx), side - side % max(1, min(cy, cx)))
        by, bx = min(ny, side), min(nx, side)
        tc = max(1, min(nt, OUTPUT_CHUNK_BYTES // max(1, by * bx * itemsize)))
        return (max(1, nt), by, bx), (tc, by, bx)
    plane = ny * nx
    if plane * bpp <= block_bytes:  # composites / virtual cubes: time blocks over the area
        per_layer = max(1, block_bytes // (plane * bpp))  # a block holds whole out chunks
        tc = max(1, min(nt, OUTPUT_CHUNK_BYTES // max(1, plane * itemsize), per_layer))
        bt = max(tc, per_layer // tc * tc)
        return (min(max(1, nt), bt), ny, nx), (tc, ny, nx)
    side = max(1, int(math.sqrt(block_bytes / bpp)))
    return (1, min(ny, side), min(nx, side)), (1, min(ny, side), min(nx, side))


def plan_download(
    sources: Sequence[tuple[str, dict | None]],
    area: Area,
    *,
    kind: Kind = "subyearly",
    start: Any = None,
    end: Any = None,
    variables: Sequence[str] | None = None,
    filters: Filters | None = None,
    workers: int | None = None,
    storage_options: dict | None = None,
    cache_root: Path | None = None,
    block_bytes: int | None = None,
) -> tuple[list[StorePlan], list[str]]:
    """Open the sources and lay out the output stores (one per projection).

    Parameters
    ----------
    sources : ``(url, catalog entry or None)`` of each cube, in mosaic priority order.
    area, kind, start, end, variables, filters : as :func:`download`.
    cache_root : keep every object read (metadata arrays included) in a per-source cache
        under this folder (the resume cache).
    block_bytes : decoded size of one output block (default :data:`BLOCK_BYTES`).

    Returns
    -------
    (plans, notes) : the store plans, and notes on what was skipped.

    Raises
    ------
    InputError, CubeFormatError, EmptySelectionError
    """
    filters = filters or Filters()
    t0, t1 = date_window(start, end)
    tdim = TIME_DIM[kind]
    explicit = variables is not None and len(variables) > 0
    wanted = list(variables or ()) if explicit else list(DEFAULT_VARIABLES[kind])
    notes: list[str] = []
    parts: list[Part] = []
    workers = get_options()["concurrency"] if workers is None else workers
    for url, entry in sources:
        cube = open_source(url, storage_options, workers=workers)
        if cache_root is not None:
            key = hashlib.sha256(cube.url.encode()).hexdigest()[:16]
            cube.store.use_cache(Path(cache_root) / key, cube.fingerprint)
        if cube.kind != kind:
            other = "annual" if kind == "subyearly" else "subyearly"
            raise CubeFormatError(
                f"{url} has no {tdim!r} dimension: is it an {other} cube? (kind)", params="kind"
            )
        src_tdim = cube.time_dim
        missing = [v for v in wanted if v not in cube]
        if missing and explicit:
            others = (
                f" (one of the {len(sources)} cubes of this mosaic)" if len(sources) > 1 else ""
            )
            raise InputError(
                f"unknown variable(s) {', '.join(missing)} for {cube.url}{others}; available: "
                + ", ".join(sorted(n for n in cube.arrays if n not in ("x", "y", src_tdim)))
            )
        for v in missing:
            notes.append(f"{cube.name} has no {v!r} (optional metadata): skipped there")
        need = filters.needed_variables()
        lacking = [v for v in need if v not in cube]
        if lacking:
            raise CubeFormatError(f"{url} lacks {', '.join(lacking)} needed by the filters")
        # every small array the download needs, in one round of requests
        per_layer = [v for v in wanted if v in cube and cube[v].dims == (src_tdim,)]
        extra = [n for n in ("mapping", "sensor") if n in cube]
        small = dict(cube.read_many(["x", "y", src_tdim, *need, *per_layer, *extra]))
        if "date_dt" in small:
            dt = cube["date_dt"]
            scale = _TIMEDELTA_UNITS.get(dt.units.lower(), 86400.0) / 86400.0
            small["date_dt"] = small["date_dt"].astype("f8") * scale
        x, y = small["x"].astype("f8"), small["y"].astype("f8")
        xmin, ymin, xmax, ymax = area.in_crs(cube.epsg).bounds
        xi, yi = _cell_overlap(x, xmin, xmax), _cell_overlap(y, ymin, ymax)
        if len(xi) == 0 or len(yi) == 0:
            notes.append(f"{cube.name}: the area covers none of its pixels")
            continue
        times = decode_times(cube[src_tdim], small[src_tdim])
        mask = (times >= np.datetime64(t0)) & (times < np.datetime64(t1))
        mask &= layer_mask(small, filters, len(times))
        ti = np.nonzero(mask)[0]
        if len(ti) == 0:
            valid = times[~np.isnat(times)]
            rng = (
                f"{valid.min().astype('datetime64[D]')} to {valid.max().astype('datetime64[D]')}"
                if len(valid)
                else "no layers"
            )
            raise EmptySelectionError(
                f"no layers of {cube.name} between {t0.date()} and "
                f"{(t1 - pd.Timedelta(days=1)).date()} with the given filters (cube covers {rng})"
            )
        parts.append(Part(cube, entry, xi, yi, ti, x, y, times[ti]))
    if not parts:
        raise EmptySelectionError(f"{area.label} selects no pixel of the matching cube(s)")
    groups: dict[int, list[Part]] = {}
    for p in parts:
        groups.setdefault(p.cube.epsg, []).append(p)
    present = {v for p in parts for v in wanted if v in p.cube}
    for v in wanted:
        if v not in present and not explicit:
            notes.append(f"no cube has {v!r}: not downloaded")
    plans = [
        _plan_group(kind, epsg, g, [v for v in wanted if v in present], tdim, block_bytes)
        for epsg, g in groups.items()
    ]
    return plans, notes


def _plan_group(
    kind: str, epsg: int, group: list[Part], names: list[str], tdim: str, block_bytes=None
) -> StorePlan:
    first = group[0]
    dx = float(first.x[1] - first.x[0])
    dy = float(first.y[1] - first.y[0])
    for p in group[1:]:
        if abs(float(p.x[1] - p.x[0]) - dx) > 1e-6 or abs(float(p.y[1] - p.y[0]) - dy) > 1e-6:
            raise CubeFormatError(f"{p.cube.url}: pixel size differs from {first.cube.url}")
    kx = [_lattice_index(p.x[p.xi], first.x[0], dx, p.cube.url) for p in group]
    ky = [_lattice_index(p.y[p.yi], first.y[0], dy, p.cube.url) for p in group]
    kx0, kx1 = min(k.min() for k in kx), max(k.max() for k in kx)
    ky0, ky1 = min(k.min() for k in ky), max(k.max() for k in ky)
    x_out = first.x[0] + dx * np.arange(kx0, kx1 + 1)
    y_out = first.y[0] + dy * np.arange(ky0, ky1 + 1)
    times = np.unique(np.concatenate([p.times for p in group]))
    for p, kxs, kys in zip(group, kx, ky, strict=True):
        p.kx, p.ky = kxs - kx0, kys - ky0
        p.t_pos = np.searchsorted(times, p.times)

    specs: dict[str, VarSpec] = {}
    for name in [tdim, *names]:
        owner = next((p for p in group if p.has(name, tdim)), None)
        if owner is None:
            continue
        specs[name] = _spec_for(
            name, owner.cube[owner.source_name(name, tdim)], tdim, owner.cube.time_dim
        )
    specs[tdim].role = "coord"
    tiled = [s for s in specs.values() if s.role == "tiled"]
    span = max(int(p.ti.max() - p.ti.min() + 1) for p in group)
    block, chunks = _choose_blocks(
        group, tiled, len(times), len(y_out), len(x_out), span, block_bytes
    )
    for s in tiled:
        s.chunks = chunks

    # per-layer variables are small: read now and put in output order (first cube wins)
    layer_values: dict[str, np.ndarray] = {}
    layer_names = [n for n, s in specs.items() if s.role in ("layer", "coord")]
    for name in layer_names:
        layer_values[name] = specs[name].filled((len(times),))
    for p in reversed(group):
        have = [n for n in layer_names if p.has(n, tdim)]
        raw = p.cube.read_many([p.source_name(n, tdim) for n in have])
        for n in have:
            src = p.cube[p.source_name(n, tdim)]
            if n == tdim and tdim == "mid_date":
                vals = _mid_date_values(src, raw[src.name][p.ti], p.times)
            else:
                vals = to_output(raw[src.name][p.ti], src, specs[n])
            layer_values[n][p.t_pos] = vals
    return StorePlan(kind, epsg, tdim, x_out, y_out, times, group, specs, layer_values, block)


def _mid_date_values(src: SourceArray, raw: np.ndarray, times: np.ndarray) -> np.ndarray:
    """The output's ``mid_date`` numbers: the source's own, bit for bit, when it is stored
    as the output is (float64 days since 1970); else ``times`` encoded so."""
    same = (
        src.dtype == np.dtype("f8")
        and src.attrs.get("units") == MID_DATE_ENCODING["units"]
        and str(src.attrs.get("calendar", "standard")) in cf.GREGORIAN
        and _missing_equal(src.missing, np.nan)
    )
    return np.asarray(raw, "f8") if same else _encode_mid_date(times)


def _encode_mid_date(times: np.ndarray) -> np.ndarray:
    return cf.encode_times(times, MID_DATE_ENCODING["units"], MID_DATE_ENCODING["calendar"])


# --------------------------------------------------------------------------- fetch


async def fetch_block(plan: StorePlan, block: Block) -> dict[str, np.ndarray]:
    """Read and mosaic one output block of every tiled variable.

    Each cube that covers the block is read for exactly the selected pixels and layers
    inside it (zarr fetches the chunks that intersect them, through the cube's caching
    store); cubes earlier in ``plan.parts`` win where tiles overlap, later ones fill their
    gaps. Returns the encoded block of each tiled variable.
    """
    out = {s.name: s.filled(block.shape) for s in plan.tiled}
    jobs = []
    for part in plan.parts:
        tsel = np.nonzero((part.t_pos >= block.t0) & (part.t_pos < block.t1))[0]
        ysel = np.nonzero((part.ky >= block.y0) & (part.ky < block.y1))[0]
        xsel = np.nonzero((part.kx >= block.x0) & (part.kx < block.x1))[0]
        if not (len(tsel) and len(ysel) and len(xsel)):
            continue
        order = np.argsort(part.ti[tsel], kind="stable")
        tsel = tsel[order]
        src = (part.ti[tsel], part.yi[ysel], part.xi[xsel])
        dst = (part.t_pos[tsel] - block.t0, part.ky[ysel] - block.y0, part.kx[xsel] - block.x0)
        for spec in plan.tiled:
            if part.has(spec.name, plan.tdim):
                jobs.append((part, spec, dst, part.cube[spec.name].read(src)))
    results = await asyncio.gather(*(j[3] for j in jobs))
    written: set[str] = set()
    for (part, spec, dst, _), data in zip(jobs, results, strict=True):
        data = to_output(data, part.cube[spec.name], spec)
        _place(out[spec.name], orthogonal_index(*dst), data, spec, spec.name not in written)
        written.add(spec.name)
    return out


async def _read_static(plan: StorePlan, spec: VarSpec) -> np.ndarray:
    """A variable without time (y, x and maybe another dim) over the output grid, mosaicked."""
    shape = tuple(
        {"y": len(plan.y), "x": len(plan.x)}.get(d, 0) or plan.parts[0].cube[spec.name].shape[i]
        for i, d in enumerate(spec.dims)
    )
    out = spec.filled(shape)
    first = True
    for part in plan.parts:
        if spec.name not in part.cube:
            continue
        arr = part.cube[spec.name]
        dims = list(zip(arr.dims, arr.shape, strict=True))
        sel = [{"y": part.yi, "x": part.xi}.get(d, np.arange(n)) for d, n in dims]
        dst = [{"y": part.ky, "x": part.kx}.get(d, np.arange(n)) for d, n in dims]
        data = to_output(await arr.read(sel), arr, spec)
        _place(out, orthogonal_index(*dst), data, spec, first)
        first = False
    return out


# --------------------------------------------------------------------------- write


class StagedStore:
    """The output store of one plan, written block by block under ``.partial``.

    A block marked done (a file under ``.partial/done``) is complete in the staged store;
    a re-run with the same layout skips it. :meth:`finish` writes the small variables,
    consolidates the metadata and moves the store into place.
    """

    def __init__(self, plan: StorePlan, folder: Location, partial: Location):
        self.plan = plan
        self.final = folder / plan.name
        self.path = partial / "stores" / plan.name
        self.done_dir = partial / "done" / plan.name
        stamp = partial / "stores" / f"{plan.name}.layout"
        layout = plan.layout_id()
        if not (self.path.exists() and stamp.exists() and stamp.read_text() == layout):
            self.path.remove()
            self.done_dir.remove()
            (partial / "stores").mkdir()
            self._create()
            stamp.write_text(layout)
        self.done_dir.mkdir()
        self._open()

    @classmethod
    def attach(cls, plan: StorePlan, path: Location, done_dir: Location) -> StagedStore:
        """The staged store another process created (a cluster worker writing its blocks)."""
        self = cls.__new__(cls)
        self.plan, self.path, self.done_dir = plan, path, done_dir
        self._open()
        return self

    def _open(self) -> None:
        self.group = zarr.open_group(store=self.path.zarr_store(), mode="r+", zarr_format=2)
        self.arrays = {s.name: self.group[s.name] for s in self.plan.tiled}

    def _create(self) -> None:
        root = zarr.open_group(store=self.path.zarr_store(), mode="w", zarr_format=2)
        for spec in self.plan.tiled:
            shape = (len(self.plan.times), len(self.plan.y), len(self.plan.x))
            _create_array(root, spec.name, shape, spec, spec.chunks)

    def done_blocks(self) -> set[int]:
        """Indices of the blocks marked done (one listing of the markers)."""
        fs, where = self.done_dir.fs, self.done_dir.path
        if not fs.exists(where):
            return set()
        names = (n.rstrip("/").rsplit("/", 1)[-1] for n in fs.ls(where, detail=False))
        return {int(n) for n in names if n.isdigit()}

    async def write(self, block: Block, data: dict[str, np.ndarray]) -> None:
        region = (
            slice(block.t0, block.t1),
            slice(block.y0, block.y1),
            slice(block.x0, block.x1),
        )
        await asyncio.gather(
            *(async_array(self.arrays[n]).setitem(region, v) for n, v in data.items())
        )
        (self.done_dir / str(block.index)).touch()

    def write_small(self) -> None:
        """Write the attributes, coordinates, per-layer variables and grid mapping (known
        from the plan; runs in a thread while the blocks are fetched)."""
        plan = self.plan
        first = plan.parts[0].cube
        x, y = plan.x, plan.y
        proj_ring, geo_ring = footprint_rings(plan.epsg, x, y)
        attrs = dict(first.attrs)
        attrs.update(
            proj_polygon=polygon_wkt(proj_ring),
            geo_polygon=polygon_wkt(geo_ring),
            itscube_source_urls=" ".join(p.cube.url for p in plan.parts),
            history=f"subset by itscube {__version__}",
        )
        self.group.update_attributes(attrs)  # one write (attrs.update writes per key)
        for coord, values in (("x", x), ("y", y)):
            src = first[coord]
            spec = VarSpec(coord, (coord,), np.dtype("f8"), None, dict(src.attrs), "coord")
            _write_whole(self.group, coord, values, spec)
        for name, values in plan.layer_values.items():
            _write_whole(self.group, name, values, plan.specs[name])
        extra_dims = {d for s in plan.specs.values() for d in s.dims} - {"x", "y", plan.tdim}
        for d in sorted(extra_dims):
            if d in first and d not in plan.specs:
                src = first[d]
                values = first.read_many([d])[d]
                spec = _spec_for(d, src, plan.tdim, first.time_dim)
                _write_whole(self.group, d, to_output(values, src, spec), spec)
        if "mapping" in first:
            src = first["mapping"]
            mattrs = dict(src.attrs)
            dx, dy = spacing(x, "x"), (spacing(y, "y") if len(y) > 1 else -PIXEL_M)
            mattrs["GeoTransform"] = " ".join(
                f"{g:.12g}" for g in (x[0] - dx / 2, dx, 0.0, y[0] - dy / 2, 0.0, dy)
            )
            value = np.asarray(first.read_many(["mapping"])["mapping"]).astype(str)
            _write_whole(
                self.group,
                "mapping",
                value,
                VarSpec("mapping", (), value.dtype, None, mattrs, "other"),
            )

    def finish(self, statics: dict[str, np.ndarray]) -> Path | str:
        """Write the variables without time, consolidate, and move the store into place."""
        for name, values in statics.items():
            _write_whole(self.group, name, values, self.plan.specs[name])
        zarr.consolidate_metadata(self.path.zarr_store(), zarr_format=2)
        self.path.move_to(self.final)
        return self.final.as_path()


def _write_whole(group, name: str, values: np.ndarray, spec: VarSpec) -> None:
    """Write a small array in one chunk (strings as fixed-width text, as ITS_LIVE v2)."""
    values = np.asarray(values)
    if values.dtype.kind in "OUST":
        values = values.astype(str)
        spec = dataclasses.replace(spec, dtype=values.dtype)
    _create_array(group, name, values.shape, spec, values.shape)[...] = values


def _create_array(group, name: str, shape, spec: VarSpec, chunks) -> zarr.Array:
    fill = spec.missing
    if spec.dtype.kind in "OUST":
        fill = None
    elif isinstance(fill, float) and np.isnan(fill):
        fill = np.nan
    return group.create_array(
        name,
        shape=tuple(shape),
        chunks=tuple(chunks) if chunks else tuple(shape),
        dtype=spec.dtype,
        fill_value=fill,
        compressors=(OUTPUT_COMPRESSOR,),
        attributes={**spec.attrs, "_ARRAY_DIMENSIONS": list(spec.dims)},
        overwrite=True,
    )


# --------------------------------------------------------------------------- run


def _in_flight(plan: StorePlan) -> int:
    """Blocks assembled at once for ``plan`` (their decoded bytes within IN_FLIGHT_BYTES)."""
    block_bytes = max(1, int(np.prod(plan.block_shape)) * sum(s.dtype.itemsize for s in plan.tiled))
    return max(1, min(16, IN_FLIGHT_BYTES // block_bytes))


async def _assemble_blocks(
    store: StagedStore,
    todo: Sequence[Block],
    on_block: Callable[[Block, StorePlan], None] | None,
) -> None:
    """Fetch and write the blocks ``todo`` of ``store``, a bounded number at once."""
    plan = store.plan
    in_flight = _in_flight(plan)
    held = asyncio.Semaphore(2 * in_flight)  # blocks in memory: being fetched or written
    fetching = asyncio.Semaphore(in_flight)

    async def one(block: Block) -> None:
        # a fetched block gives its fetch slot to the next one while it is encoded and
        # written (threads), so requests keep flowing between blocks
        async with held:
            async with fetching:
                data = await fetch_block(plan, block)
            await store.write(block, data)
            del data
        if on_block is not None:
            on_block(block, plan)

    tasks = []
    try:
        for b in todo:  # bounded creation keeps the task list small for huge downloads
            tasks.append(asyncio.ensure_future(one(b)))
            if len(tasks) >= 4 * in_flight:
                done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                for d in done:
                    d.result()
                tasks = list(pending)
        for t in asyncio.as_completed(tasks):
            await t
    except BaseException:
        for t in tasks:
            t.cancel()
        raise


async def _assemble(
    staged: list[StagedStore], on_block: Callable[[Block, StorePlan], None] | None
) -> int:
    """Fetch and write every block not yet done; returns the number assembled now."""
    count = 0
    for store in staged:
        plan = store.plan
        small = asyncio.ensure_future(asyncio.to_thread(store.write_small))
        done = store.done_blocks()
        todo = [b for b in plan.blocks() if b.index not in done]
        for b in plan.blocks():
            if b.index in done and on_block is not None:
                on_block(b, plan)
        try:
            await _assemble_blocks(store, todo, on_block)
            await small
        except BaseException:
            with contextlib.suppress(BaseException):
                await small
            raise
        count += len(todo)
    return count


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
    out: str | os.PathLike, kind: str, area: Area, t0: pd.Timestamp, t1: pd.Timestamp, start, end
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
    start: str | None = None,
    end: str | None = None,
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
        write them into the output store themselves (:mod:`itscube.io.cluster_download`),
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
    t0, t1 = date_window(start, end)
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
            from itscube.io.cluster_download import Recipe, probe_workers

            probe_workers(cluster, partial, remote.normalise_url(sources[0][0]), storage_options)
            what = (area, kind, start, end, tuple(variables or ()) or None, filters, workers)
            here = tuple((remote.normalise_url(u), e) for u, e in sources)  # this env's mirrors
            cluster = (cluster, Recipe(here, *what, storage_options, BLOCK_BYTES))
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
            from itscube.io.cluster_download import fetch_on_cluster

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
