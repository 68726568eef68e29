"""The plan of a download: which source pixels and layers, the output grid on the shared
120 m lattice, the time axis, the variables' encodings, and the blocks the output is
assembled in (sized so that a block holds whole output chunks within :data:`BLOCK_BYTES`)."""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import math
from collections.abc import Iterator, Sequence
from pathlib import Path

import numcodecs
import numpy as np

from itscube._typing import Kind
from itscube.errors import (
    CubeFormatError,
    EmptySelectionError,
    InputError,
)
from itscube.geometry import Area
from itscube.grid import half_cell
from itscube.io.download.encode import (
    _TIMEDELTA_UNITS,
    MID_DATE_ENCODING,
    VarSpec,
    _mid_date_values,
    decode_times,
    to_output,
)
from itscube.io.stores import (
    SourceArray,
    SourceCube,
    open_source,
)
from itscube.options import get_options
from itscube.window import DateLike, Filters, date_bounds, layer_mask

__all__ = [
    "BLOCK_BYTES",
    "DEFAULT_VARIABLES",
    "IN_FLIGHT_BYTES",
    "LONG_TIME_CHUNK",
    "OUTPUT_CHUNK_BYTES",
    "OUTPUT_COMPRESSOR",
    "SPACE_FACTOR",
    "TIME_DIM",
    "Block",
    "Part",
    "StorePlan",
    "plan_download",
]

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
    start: DateLike | None = None,
    end: DateLike | None = None,
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
    t0, t1 = date_bounds(start, end)
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
            last = (t1 - datetime.timedelta(days=1)).date()
            raise EmptySelectionError(
                f"no layers of {cube.name} between {t0.date()} and "
                f"{last} with the given filters (cube covers {rng})"
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
    times = np.sort(np.concatenate([p.times for p in group]))  # the selected layers' dates
    times = times[np.r_[True, times[1:] != times[:-1]]]  # unique (np.unique loads numpy.ma)
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
