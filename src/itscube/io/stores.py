"""Read ITS_LIVE datacubes of every generation, chunk by chunk, through zarr-python.

One reader serves the three forms the ITS_LIVE archive takes:

* **Zarr v2** stores with consolidated ``.zmetadata`` (the ``catalog_v02.json`` cubes);
* **Zarr v3** stores with consolidated metadata in the root ``zarr.json``, sharded or not
  (the v2.2 "chunk-aligned" cubes); inner chunks of shards are fetched with byte-range
  reads, never whole shards;
* **Icechunk** repositories (local or ``s3://``), including arrays whose chunks are
  *virtual references* into granule NetCDF files.

Metadata parsing and codecs are zarr-python's (``zarr.open_group`` over an
``FsspecStore``/``LocalStore``, or the ``icechunk`` package's store). What this module
adds is a :class:`CachingStore` between zarr and the network: bounded concurrency,
retries of transient failures, byte counting, and an on-disk cache of every object (or
byte range) read, so that an interrupted download resumes at chunk granularity and no
chunk crosses the network twice.

CF conventions of the real writers are normalised here: an integer variable may carry
``_FillValue``, ``missing_value`` or both, or a null Zarr fill value; the *missing
marker* of each array is found once (:attr:`SourceArray.missing`) and chunks that were
never written read as that marker, not as Zarr's default 0.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import hashlib
import itertools
import json
import os
import re
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from zarr.abc.store import ByteRequest, OffsetByteRequest, RangeByteRequest, SuffixByteRequest
from zarr.storage import FsspecStore, LocalStore, WrapperStore

from itscube.errors import CubeFormatError, CubeNotFoundError, DownloadError
from itscube.grid import epsg_of
from itscube.io import cf, remote
from itscube.io._zarr_private import (
    AsyncArray,
    Buffer,
    BufferPrototype,
    default_buffer_prototype,
    get_loop,
    rebuild_async_array,
    sync,
)
from itscube.io.chunkcache import ABSENT, ChunkCache
from itscube.io.chunkread import V2Layout, read_orthogonal, v2_layout

__all__ = [
    "FORMATS",
    "IMAGE_PAIR_VARIABLES",
    "METADATA_KEYS",
    "CachingStore",
    "SourceArray",
    "SourceCube",
    "TransferStats",
    "decode_values",
    "icechunk_storage",
    "is_icechunk",
    "missing_mask",
    "open_icechunk_session",
    "open_source",
    "run_sync",
]

FORMATS = ("zarr-v2", "zarr-v3", "icechunk")
"""Store generations :func:`open_source` reads."""

IMAGE_PAIR_VARIABLES = ("date_dt", "acquisition_date_img1", "acquisition_date_img2")
"""Per-layer variables that mark an image-pair (sub-yearly) cube whatever its time name."""

METADATA_KEYS = ("zarr.json", ".zmetadata", ".zgroup", ".zattrs", ".zarray")


# --------------------------------------------------------------------------- caching store


@dataclasses.dataclass
class TransferStats:
    """Counters of one source: what crossed the network and what came from the cache."""

    requests: int = 0
    bytes: int = 0
    cache_hits: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    def add(self, nbytes: int) -> None:
        with self._lock:
            self.requests += 1
            self.bytes += nbytes

    def hit(self) -> None:
        with self._lock:
            self.cache_hits += 1


def _range_tag(byte_range: ByteRequest | None) -> str:
    if byte_range is None:
        return ""
    if isinstance(byte_range, RangeByteRequest):
        return f"@{byte_range.start}-{byte_range.end}"
    if isinstance(byte_range, OffsetByteRequest):
        return f"@{byte_range.offset}-"
    if isinstance(byte_range, SuffixByteRequest):
        return f"@-{byte_range.suffix}"
    raise TypeError(f"unknown byte range {byte_range!r}")  # pragma: no cover


class CachingStore(WrapperStore):
    """A read-only zarr store wrapper: retries, bounded concurrency, counts and a disk cache.

    Parameters
    ----------
    store : the zarr store to read from (fsspec, local or Icechunk).
    label : what to call the source in error messages (its URL).
    workers : most requests in flight at once.
    """

    def __init__(self, store: Any, label: str = "", workers: int = 16) -> None:
        super().__init__(store)
        self.label = label
        self.workers = max(1, int(workers))
        self.stats = TransferStats()
        self.cache: ChunkCache | None = None
        self._sem: asyncio.Semaphore | None = None
        self._prefetched: dict[tuple[str, str], bytes | None] = {}
        self._inflight: dict[tuple[str, str], asyncio.Future] = {}

    def _with_store(self, store: Any) -> CachingStore:  # pragma: no cover - zarr internals
        new = type(self)(store, self.label, self.workers)
        new.cache, new.stats = self.cache, self.stats
        return new

    def use_cache(self, root: Path, fingerprint: str) -> None:
        """Cache every object read under ``root``; a cache of another ``fingerprint``
        (the source changed since) is emptied first."""
        root = Path(root)
        root.mkdir(parents=True, exist_ok=True)
        stamp = root / "FINGERPRINT"
        if stamp.exists() and stamp.read_text() != fingerprint:
            for p in sorted(root.rglob("*"), reverse=True):
                if p.is_file():
                    p.unlink()
        stamp.write_text(fingerprint)
        if self.cache is not None:
            self.cache.close()
        self.cache = ChunkCache(root)

    def close_cache(self) -> None:
        """Write out what the cache still holds in memory and close its files."""
        if self.cache is not None:
            self.cache.close()

    async def prefetch(self, requests: Sequence[tuple[str, ByteRequest | None]]) -> list:
        """Fetch several objects or ranges concurrently and hold them until zarr asks for
        them (zarr reads the inner chunks of a shard one after the other); returns the bytes."""
        proto = _default_prototype()
        bufs = await asyncio.gather(*(self.get(k, proto, r) for k, r in requests))
        out = []
        for (k, r), buf in zip(requests, bufs, strict=True):
            data = None if buf is None else buf.to_bytes()
            self._prefetched[(k, _range_tag(r))] = data
            out.append(data)
        return out

    async def get(
        self, key: str, prototype: BufferPrototype, byte_range: ByteRequest | None = None
    ) -> Buffer | None:
        tag = (key, _range_tag(byte_range))
        if tag in self._prefetched:
            held = self._prefetched.pop(tag)
            return None if held is None else prototype.buffer.from_bytes(held)
        if self.cache is not None:
            held = self.cache.get(key + tag[1])
            if held is not None:
                self.stats.hit()
                return None if held is ABSENT else prototype.buffer.from_bytes(held)
        pending = self._inflight.get(tag)
        if pending is not None:  # another block is fetching this very chunk: share it
            data = await asyncio.shield(pending)
            return None if data is None else prototype.buffer.from_bytes(data)
        fut: asyncio.Future = asyncio.get_running_loop().create_future()
        self._inflight[tag] = fut
        try:
            try:
                buf = await self._get_with_retries(key, prototype, byte_range)
            except BaseException as exc:
                fut.set_exception(exc)
                fut.exception()  # retrieved: no "never retrieved" warning when nobody shares
                raise
            data = None if buf is None else buf.to_bytes()
            self.stats.add(0 if data is None else len(data))
            if self.cache is not None:  # appended to the pack by the cache's own thread
                self.cache.put(key + tag[1], data)
            fut.set_result(data)
        finally:
            self._inflight.pop(tag, None)
        return buf

    async def get_bytes(self, key: str) -> np.ndarray | None:
        """One whole object as bytes (a uint8 array), or None if it does not exist."""
        buf = await self.get(key, _default_prototype())
        return None if buf is None else buf.as_numpy_array()

    async def get_partial_values(
        self, prototype: BufferPrototype, key_ranges: Any
    ) -> list[Buffer | None]:
        return list(await asyncio.gather(*(self.get(k, prototype, r) for k, r in key_ranges)))

    async def _get_with_retries(
        self, key: str, prototype: BufferPrototype, byte_range: ByteRequest | None
    ) -> Buffer | None:
        if self._sem is None:
            self._sem = asyncio.Semaphore(self.workers)
        what = f"{self.label}/{key}"
        for attempt in itertools.count(1):
            try:
                async with self._sem:
                    if isinstance(byte_range, OffsetByteRequest):  # see _whole_answer
                        whole = await self._store.get(key, prototype, None)
                        return None if whole is None else whole[byte_range.offset :]
                    buf = await self._store.get(key, prototype, byte_range)
                return _whole_answer(buf, byte_range)
            except Exception as exc:
                _raise_if_icechunk_config_error(exc, self.label)
                if not remote.is_transient(exc):
                    raise DownloadError(
                        f"cannot read {what}: {type(exc).__name__}: {_first_line(exc)}"
                    ) from exc
                await asyncio.sleep(remote.next_delay(attempt, exc, what))
        raise AssertionError("unreachable")  # pragma: no cover


def _whole_answer(buf: Buffer | None, byte_range: ByteRequest | None) -> Buffer | None:
    """The requested range of an answer from a server that ignored ``Range``.

    Servers such as ``python -m http.server`` and some proxies answer a ranged request
    200 with the whole object, and fsspec passes it on as if it were the range (zarr then
    reports a checksum mismatch). An answer longer than the range asked for can only be
    the whole object, so the range is cut from it. An offset range (``bytes=N-``) cannot
    be told apart so: it is read whole and cut (:meth:`CachingStore._get_with_retries`).
    """
    if buf is None or byte_range is None:
        return buf
    if isinstance(byte_range, RangeByteRequest):
        if len(buf) > byte_range.end - byte_range.start:
            return buf[byte_range.start : byte_range.end]
    elif isinstance(byte_range, SuffixByteRequest) and len(buf) > byte_range.suffix:
        return buf[len(buf) - byte_range.suffix :]
    return buf


def _default_prototype() -> BufferPrototype:
    return default_buffer_prototype()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0].strip(" x|") if text else ""


def _raise_if_icechunk_config_error(exc: BaseException, label: str) -> None:
    text = str(exc)
    if "virtual chunk" in text and ("authorize" in text or "container" in text):
        prefix = re.search(r"url prefix (\S+?),", text)
        where = f" under {prefix[1]}" if prefix else ""
        raise CubeFormatError(
            f"{label}: the Icechunk repository references virtual chunks{where} but declares no "
            "virtual chunk container for them; ask its maintainer to add the container to the "
            "repository config (or read the materialised Zarr cube instead)"
        ) from exc


# --------------------------------------------------------------------------- arrays


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return value


@dataclasses.dataclass
class SourceArray:
    """One array of a source cube.

    Attributes
    ----------
    name, dims, shape, chunks : as stored (``chunks`` is the read granularity: the inner
        chunk of a sharded array).
    dtype : numpy dtype of the stored (encoded) values; strings are ``object``/``U``.
    attrs : CF attributes, without ``_FillValue`` and ``missing_value``.
    missing : the encoded value that marks missing data (``_FillValue``, else
        ``missing_value``, else a non-null Zarr fill value), or None.
    """

    name: str
    dims: tuple[str, ...]
    shape: tuple[int, ...]
    chunks: tuple[int, ...]
    dtype: np.dtype
    attrs: dict
    missing: Any
    array: AsyncArray
    store: CachingStore | None = None
    shards: tuple[int, ...] | None = None
    direct: V2Layout | None = None
    """Set for plain numeric Zarr v2 arrays: chunks are read by :mod:`itscube.io.chunkread`."""

    @property
    def is_string(self) -> bool:
        return self.dtype.kind in "OUST"

    @property
    def units(self) -> str:
        return str(self.attrs.get("units", ""))

    def chunk_ids(self, sel: Sequence[np.ndarray]) -> set[tuple[int, ...]]:
        """Chunks (read granularity) touched by an orthogonal selection of indices."""
        per_dim = [
            np.unique(np.asarray(s, np.int64) // c) for s, c in zip(sel, self.chunks, strict=True)
        ]
        if any(len(p) == 0 for p in per_dim):
            return set()
        grids = np.meshgrid(*per_dim, indexing="ij") if per_dim else []
        return set(zip(*(g.ravel().tolist() for g in grids), strict=False)) if per_dim else {()}

    async def read(self, sel: Sequence[np.ndarray | slice] | None = None) -> np.ndarray:
        """Encoded values of an orthogonal selection (whole array when ``sel`` is None)."""
        if not self.shape:
            return _plain_strings(np.asarray(await self.array.getitem(())))
        sel = tuple(slice(None) for _ in self.shape) if sel is None else tuple(sel)
        if self.shards is not None and self.store is not None:
            await self._prefetch_inner_chunks(sel)
        if any(isinstance(s, np.ndarray) and s.size == 0 for s in sel):
            shape = [
                (s.size if isinstance(s, np.ndarray) else len(range(*s.indices(n))))
                for s, n in zip(sel, self.shape, strict=False)
            ]
            return np.empty(shape, dtype=self.dtype)
        if self.direct is not None and self.store is not None:
            return await read_orthogonal(self.direct, self.store.get_bytes, sel)
        # Index arrays whose range spans no other chunk are read as a range (zarr's fast
        # basic indexing, the same chunks) and picked from in memory.
        ranged: list[slice | np.ndarray] = []
        picks: list[np.ndarray | None] = []
        for s, c in zip(sel, self.chunks, strict=True):
            if (
                isinstance(s, np.ndarray)
                and s.size
                and (
                    s.max() // c == s.min() // c
                    or (len(np.unique(s // c)) == s.max() // c - s.min() // c + 1)
                )
                and (s.max() - s.min() + 1) <= 4 * s.size + c
            ):
                lo = int(s.min())
                ranged.append(slice(lo, int(s.max()) + 1))
                picks.append(s - lo)
            else:
                ranged.append(s)
                picks.append(None)
        which: Any = tuple(ranged)
        if any(isinstance(r, np.ndarray) for r in ranged):
            out = np.asarray(await self.array.get_orthogonal_selection(which))
        else:
            out = np.asarray(await self.array.getitem(which))
        for axis, pick in enumerate(picks):
            if pick is not None and not (
                len(pick) == out.shape[axis] and np.array_equal(pick, np.arange(len(pick)))
            ):
                out = np.take(out, pick, axis=axis)
        return _plain_strings(out)

    async def _prefetch_inner_chunks(self, sel: Sequence[np.ndarray | slice]) -> None:
        """Fetch the shard indexes, then every needed inner chunk, all concurrently (byte
        ranges, never whole shards), ahead of zarr's one-at-a-time reads."""
        assert self.shards is not None, "only sharded arrays prefetch inner chunks"
        per = tuple(s // c for s, c in zip(self.shards, self.chunks, strict=True))
        layout = _shard_index_layout(self.array, int(np.prod(per)))
        if layout is None:
            return
        index_size, at_end = layout
        idx = [
            np.arange(n)[s] if isinstance(s, slice) else np.asarray(s)
            for s, n in zip(sel, self.shape, strict=True)
        ]
        by_shard: dict[tuple[int, ...], list[tuple[int, ...]]] = {}
        for c in self.chunk_ids(idx):
            shard = tuple(i // p for i, p in zip(c, per, strict=True))
            by_shard.setdefault(shard, []).append(tuple(i % p for i, p in zip(c, per, strict=True)))
        if not by_shard or all(len(v) == int(np.prod(per)) for v in by_shard.values()):
            return  # whole shards: zarr reads each in one request
        keys = {sh: self.array.metadata.encode_chunk_key(sh) for sh in by_shard}
        rng = SuffixByteRequest(index_size) if at_end else RangeByteRequest(0, index_size)
        path = self.array.store_path.path
        assert self.store is not None
        shard_keys = [f"{path}/{keys[sh]}" if path else keys[sh] for sh in by_shard]
        indexes = await self.store.prefetch([(k, rng) for k in shard_keys])
        wanted = []
        n = int(np.prod(per))
        for key, raw, inner in zip(shard_keys, indexes, by_shard.values(), strict=True):
            if raw is None:
                continue
            table = np.frombuffer(raw[: 16 * n], "<u8").reshape(*per, 2)
            for c in inner:
                off, length = (int(v) for v in table[c])
                if off != 2**64 - 1:
                    wanted.append((key, RangeByteRequest(off, off + length)))
        await self.store.prefetch(wanted)


def _shard_index_layout(arr: AsyncArray, n_inner: int) -> tuple[int, bool] | None:
    """(index size in bytes, index at the end?) of a sharded array with zarr's default index
    encoding (little-endian uint64 pairs, optionally crc32c); None for anything else."""
    from zarr.codecs import BytesCodec, Crc32cCodec, ShardingCodec

    codecs = getattr(arr.metadata, "codecs", ())
    shard = next((c for c in codecs if isinstance(c, ShardingCodec)), None)
    if shard is None:
        return None
    extra = 0
    for c in shard.index_codecs:
        if isinstance(c, Crc32cCodec):
            extra += 4
        elif not (
            isinstance(c, BytesCodec)
            and str(getattr(c.endian, "value", c.endian)) in ("little", "None")
        ):
            return None
    at_end = str(getattr(shard.index_location, "value", shard.index_location)) == "end"
    return 16 * n_inner + extra, at_end


def _plain_strings(values: np.ndarray) -> np.ndarray:
    """Variable-length strings (numpy StringDType, Zarr v3) as fixed-width text."""
    if values.dtype.kind == "T":
        return values.astype(object).astype(str)
    return values


def _array_meta(name: str, arr: zarr.Array, store: CachingStore) -> SourceArray:
    meta = arr.metadata
    attrs = dict(arr.attrs)
    named: Any = attrs.pop("_ARRAY_DIMENSIONS", None) or getattr(meta, "dimension_names", None)
    dims = tuple(named or ())
    if len(dims) != len(arr.shape):
        raise CubeFormatError(f"{store.label}: array {name!r} has no dimension names")
    zfill = _plain(meta.fill_value)
    cf_fill = attrs.pop("_FillValue", None)
    cf_missing = attrs.pop("missing_value", None)
    np_dtype = np.dtype(object) if _is_string_dtype(arr) else np.dtype(arr.dtype)
    if np_dtype.kind in "OUST":
        missing = None
    else:
        marker = cf_fill if cf_fill is not None else cf_missing
        if marker is None and zfill is not None and meta.zarr_format == 2:
            marker = zfill
        missing = None if marker is None else _decode_marker(marker, np_dtype)
    if np_dtype.kind == "f" and missing is not None and np.isnan(missing):
        missing = np.nan
    # chunks that were never written must read as the CF missing marker, not Zarr's default
    if missing is not None and not _same_value(zfill, missing):
        meta = dataclasses.replace(meta, fill_value=missing)
    if cf_missing is not None:
        attrs["missing_value"] = cf_missing
    async_arr = rebuild_async_array(arr, meta, store)
    shards = getattr(arr, "shards", None)
    return SourceArray(
        name,
        dims,
        tuple(arr.shape),
        tuple(arr.chunks),
        np_dtype,
        attrs,
        missing,
        async_arr,
        store,
        None if shards is None else tuple(shards),
        v2_layout(async_arr) if shards is None else None,
    )


def _decode_marker(marker: Any, dtype: np.dtype) -> Any:
    """A CF fill attribute as a scalar of ``dtype`` (xarray writes float fills of Zarr v3
    arrays base64-encoded)."""
    if isinstance(marker, str) and dtype.kind in "iuf":
        if marker in ("NaN", "Infinity", "-Infinity"):
            return np.array(float(marker.replace("Infinity", "inf")), dtype)[()]
        raw = base64.b64decode(marker)
        for width in (dtype.itemsize, 8, 4, 2, 1):
            if len(raw) == width:
                kind = dtype.kind if width == dtype.itemsize else "f"
                return np.frombuffer(raw, dtype=f"<{kind}{width}")[0].astype(dtype)
        raise CubeFormatError(f"cannot read the fill value {marker!r}")
    return np.array(marker).astype(dtype)[()]


def _same_value(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    try:
        fa, fb = float(a), float(b)
    except (TypeError, ValueError):
        return a == b
    return fa == fb or (np.isnan(fa) and np.isnan(fb))


def _is_string_dtype(arr: zarr.Array) -> bool:
    try:
        kind = np.dtype(arr.dtype).kind
    except TypeError:
        return True
    return kind in "OUST"


# --------------------------------------------------------------------------- cubes


class SourceCube:
    """An ITS_LIVE cube opened for chunk-level reading (see :func:`open_source`).

    Attributes
    ----------
    url : normalised URL or path.
    format : one of :data:`FORMATS`.
    attrs : global attributes.
    arrays : arrays by name.
    fingerprint : changes when the store's content changes (metadata hash, or the Icechunk
        snapshot id).
    store : the :class:`CachingStore` all chunk reads go through.
    """

    def __init__(
        self,
        url: str,
        fmt: str,
        group: zarr.Group,
        store: CachingStore,
        fingerprint: str,
        metadata_bytes: int = 0,
        snapshot: str | None = None,
    ) -> None:
        self.url = url
        self.format = fmt
        self.attrs = dict(group.attrs)
        self.store = store
        self.fingerprint = fingerprint
        self.metadata_bytes = metadata_bytes
        self.snapshot = snapshot
        self.arrays: dict[str, SourceArray] = {}
        self._small: dict[str, np.ndarray] = {}
        for name, arr in group.arrays():
            self.arrays[name] = _array_meta(name, arr, store)
        if not self.arrays:
            raise CubeFormatError(f"{url}: the store holds no arrays")

    def __contains__(self, name: str) -> bool:
        return name in self.arrays

    def __getitem__(self, name: str) -> SourceArray:
        try:
            return self.arrays[name]
        except KeyError:
            raise CubeFormatError(f"{self.url}: no variable {name!r}") from None

    @property
    def name(self) -> str:
        return self.url.rstrip("/").rsplit("/", 1)[-1]

    @property
    def time_dim(self) -> str:
        """The stored time dimension: ``mid_date`` (v2 image pairs) or ``time``."""
        for d in ("mid_date", "time"):
            if d in self.arrays and self.arrays[d].dims == (d,):
                return d
        raise CubeFormatError(f"{self.url}: no time dimension (mid_date or time)")

    @property
    def kind(self) -> str:
        """``"subyearly"`` (image pairs) or ``"annual"`` (composites)."""
        if "mid_date" in self.arrays or any(v in self.arrays for v in IMAGE_PAIR_VARIABLES):
            return "subyearly"
        return "annual"

    @property
    def epsg(self) -> int:
        """EPSG code from ``mapping.spatial_epsg`` or the global ``projection`` attribute."""
        gm = self.arrays["mapping"].attrs if "mapping" in self.arrays else {}
        epsg = epsg_of(gm.get("spatial_epsg"), gm.get("crs_wkt"), self.attrs.get("projection"))
        if epsg is not None:
            return epsg
        raise CubeFormatError(
            f"{self.url}: no projection (mapping.spatial_epsg or 'projection' attribute)"
        )

    def read_many(self, names: Sequence[str]) -> dict[str, np.ndarray]:
        """Whole (small) arrays, read concurrently: coordinates and per-layer metadata.

        Arrays read once are kept (they are small), so later calls cost nothing.
        """
        todo = [n for n in dict.fromkeys(names) if n not in self._small]

        async def go():
            return await asyncio.gather(*(self[n].read() for n in todo))

        if todo:
            self._small.update(zip(todo, sync(go()), strict=True))
        return {n: self._small[n] for n in names}


def decode_values(arr: SourceArray, raw: np.ndarray) -> np.ndarray:
    """CF-decode stored values: missing markers to NaN (NaT), scale and offset, times to
    ``datetime64[ns]`` (rounded to the microsecond), time spans to float days; text stays
    text."""
    if arr.is_string:
        return np.asarray(raw).astype(str)
    raw = np.asarray(raw)
    units = str(arr.attrs.get("units", ""))
    if " since " in units:
        return cf.decode_times(raw, units, arr.attrs.get("calendar"), arr.missing)
    if arr.name == "date_dt" and units.lower().startswith("second"):
        days = cf.timedelta_days(raw, units, arr.missing)
        return days if days is not None else raw.astype("f8") / 86400.0
    days = cf.timedelta_days(raw, units, arr.missing)
    if days is not None:
        return days
    if raw.dtype.kind not in "iuf":
        return raw
    values = raw.astype("f8")
    if arr.missing is not None:
        values[missing_mask(raw, arr.missing)] = np.nan
    scale, offset = arr.attrs.get("scale_factor"), arr.attrs.get("add_offset")
    if scale is not None:
        values *= float(scale)
    if offset is not None:
        values += float(offset)
    return values


def missing_mask(values: np.ndarray, missing: Any) -> np.ndarray:
    """Where encoded ``values`` are missing: NaN, or equal to the ``missing`` marker."""
    mask = np.isnan(values) if values.dtype.kind == "f" else np.zeros(values.shape, bool)
    if missing is not None and not (isinstance(missing, float) and np.isnan(missing)):
        mask |= values == missing
    return mask


def run_sync(coro):
    """Run a coroutine on zarr's event loop thread and wait; Ctrl-C cancels it cleanly."""
    loop = get_loop()
    fut = asyncio.run_coroutine_threadsafe(coro, loop)
    try:
        return fut.result()
    except BaseException:
        fut.cancel()
        with contextlib.suppress(BaseException):
            fut.result(timeout=10)
        raise


def is_icechunk(url: str) -> bool:
    """True for Icechunk repositories: a name ending ``.icechunk``, or a local folder laid out
    as one (``config.yaml`` or ``repo`` beside ``snapshots/``)."""
    if url.rstrip("/").endswith(".icechunk"):
        return True
    if remote.protocol_of(url) == "file":
        p = Path(url)
        return (
            p.is_dir()
            and (p / "snapshots").is_dir()
            and ((p / "config.yaml").exists() or (p / "repo").exists())
        )
    return False


def _zarr_store(url: str, storage_options: dict | None) -> Any:
    proto = remote.protocol_of(url)
    if proto == "file":
        p = Path(url)
        if not p.exists():
            raise CubeNotFoundError(f"{url}: no such file or folder")
        return LocalStore(p, read_only=True)
    opts = remote.storage_options_for(url, storage_options)
    return FsspecStore.from_url(url, storage_options=opts, read_only=True)


async def _probe(store: Any, keys: Sequence[str]) -> list[str]:
    found = []
    for k in keys:
        try:
            if await store.exists(k):
                found.append(k)
        except Exception:  # an unreachable server says nothing useful here
            continue
    return found


def _open_zarr(url: str, storage_options: dict | None, workers: int) -> SourceCube:
    raw = _zarr_store(url, storage_options)
    local = remote.protocol_of(url) == "file"
    try:
        group = remote.retry(
            lambda: zarr.open_group(raw, mode="r", use_consolidated=None if local else True),
            f"{url} (metadata)",
        )
    except DownloadError:
        raise
    except (zarr.errors.GroupNotFoundError, FileNotFoundError, ValueError, KeyError) as exc:
        found = sync(_probe(raw, METADATA_KEYS))
        if found:
            raise CubeFormatError(
                f"{url} has no consolidated metadata ({', '.join(found)} but no .zmetadata or "
                "consolidated zarr.json); over http(s) such a store reads as empty. Consolidate "
                "it (zarr.consolidate_metadata) or open a local copy"
            ) from exc
        raise CubeNotFoundError(
            f"{url}: no Zarr v2, Zarr v3 or Icechunk store there (no .zmetadata, zarr.json or "
            "Icechunk repository); check the URL"
        ) from exc
    except Exception as exc:
        if remote.is_transient(exc) or remote.is_unreachable(exc):
            raise DownloadError(
                f"{url}: cannot be reached ({type(exc).__name__}: {_first_line(exc)})"
            ) from exc
        raise CubeNotFoundError(
            f"{url}: cannot be read ({type(exc).__name__}: {_first_line(exc)})"
        ) from exc
    fmt = f"zarr-v{group.metadata.zarr_format}"
    meta_doc = group.metadata.to_dict()
    blob = json.dumps(meta_doc, sort_keys=True, default=str).encode()
    store = CachingStore(raw, url, workers)
    # reopen the arrays through the caching store
    return SourceCube(url, fmt, group, store, hashlib.sha256(blob).hexdigest(), len(blob))


def _s3_location(url: str) -> tuple[str, str, str | None]:
    """(bucket, prefix, region) of an ``s3://`` URL or an S3 virtual-hosted HTTPS URL."""
    if url.startswith("s3://"):
        bucket, _, prefix = url[5:].partition("/")
        return bucket, prefix.rstrip("/"), None
    m = re.match(r"https?://([^./]+)\.s3(?:[.-]([a-z0-9-]+))?\.amazonaws\.com/(.+)", url)
    if m:
        region = m[2] if m[2] and m[2] != "dualstack" else None
        return m[1], m[3].rstrip("/"), region
    raise CubeFormatError(
        f"{url}: Icechunk repositories are read from s3:// URLs or local folders; "
        "give the s3:// URL of the repository"
    )


def icechunk_storage(url: str) -> Any:
    """An ``icechunk.Storage`` for a local folder or an anonymous S3 location.

    ``ITSCUBE_S3_ENDPOINT`` (or ``AWS_ENDPOINT_URL_S3``/``AWS_ENDPOINT_URL``) points it at
    an S3-compatible server instead of AWS, as for Zarr stores.
    """
    import icechunk

    if remote.protocol_of(url) == "file":
        p = Path(url)
        if not p.exists():
            raise CubeNotFoundError(f"{url}: no such folder")
        return icechunk.local_filesystem_storage(str(p.resolve()))
    bucket, prefix, region = _s3_location(url)
    endpoint = remote.s3_endpoint()
    return icechunk.s3_storage(
        bucket=bucket,
        prefix=prefix,
        region=region or ("us-east-1" if endpoint else "us-west-2"),
        endpoint_url=endpoint,
        allow_http=bool(endpoint and endpoint.startswith("http://")),
        anonymous=True,
        force_path_style=bool(endpoint),
    )


def _container_credentials(prefixes: Sequence[str]) -> dict:
    import icechunk

    creds: dict[str, Any] = {}
    for prefix in prefixes:
        creds[prefix] = icechunk.s3_anonymous_credentials() if prefix.startswith("s3") else None
    return icechunk.containers_credentials(creds)


def open_icechunk_session(url: str, branch: str = "main") -> Any:
    """A read-only Icechunk session on ``branch``, with every virtual chunk container the
    repository declares authorised for anonymous reads."""
    import icechunk

    icechunk.set_logs_filter("error")
    storage = icechunk_storage(url)
    try:
        config = icechunk.Repository.fetch_config(storage)
        prefixes = list((config.virtual_chunk_containers or {}).keys()) if config else []
        repo = icechunk.Repository.open(
            storage, authorize_virtual_chunk_access=_container_credentials(prefixes) or None
        )
        return repo.readonly_session(branch=branch)
    except icechunk.IcechunkError as exc:
        text = str(exc)
        if "not found" in text.lower() or "does not exist" in text.lower() or "NoSuchKey" in text:
            raise CubeNotFoundError(
                f"{url}: no Icechunk repository there ({_first_line(exc)}); check the URL"
            ) from exc
        raise CubeFormatError(
            f"{url}: cannot open the Icechunk repository ({_first_line(exc)})"
        ) from exc


def _open_icechunk(url: str, workers: int) -> SourceCube:
    session = open_icechunk_session(url)
    store = CachingStore(session.store, url, workers)
    try:
        group = zarr.open_group(session.store, mode="r")
    except Exception as exc:
        raise CubeFormatError(
            f"{url}: the Icechunk repository holds no Zarr group ({_first_line(exc)})"
        ) from exc
    snap = str(session.snapshot_id)
    return SourceCube(url, "icechunk", group, store, f"icechunk:{snap}", 0, snap)


def open_source(
    url: str | os.PathLike, storage_options: dict | None = None, *, workers: int = 16
) -> SourceCube:
    """Open a cube of any ITS_LIVE generation for chunk-level reads.

    Parameters
    ----------
    url : local path, ``https://``/``http://`` or ``s3://`` URL of a Zarr v2/v3 store, or
        of an Icechunk repository (``*.icechunk``; local or ``s3://``).
    storage_options : extra fsspec options for remote Zarr stores.
    workers : most requests in flight at once for this source.

    Raises
    ------
    CubeNotFoundError
        Nothing is there.
    CubeFormatError
        Something is there but it is not a readable cube (e.g. no consolidated metadata
        over HTTP, where a store would otherwise read as empty).
    DownloadError
        The server cannot be reached.
    """
    url = remote.normalise_url(str(url))
    with warnings.catch_warnings():
        # ITS_LIVE's v3 cubes consolidate their metadata on purpose (HTTP stores can't list)
        warnings.filterwarnings("ignore", message="Consolidated metadata is currently not part")
        warnings.filterwarnings("ignore", message=".*does not have a Zarr V3 specification")
        if is_icechunk(url):
            return _open_icechunk(url, workers)
        return _open_zarr(url, storage_options, workers)
