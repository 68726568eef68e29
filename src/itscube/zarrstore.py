"""Chunk-level access to remote Zarr v2 stores (the ITS_LIVE cube format).

The downloader works below xarray: it reads the store's consolidated metadata
(``.zmetadata``), works out exactly which chunk objects intersect a space/time
window, fetches those objects in parallel (bounded), caches their raw bytes on
disk (so an interrupted download resumes where it stopped) and decodes them
with the codecs named in the metadata.

Over plain HTTP(S) a Zarr store cannot be listed; without consolidated
metadata a reader sees an *empty* store. :class:`RemoteStore` therefore
requires ``.zmetadata`` and says so clearly when it is missing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

import numcodecs
import numpy as np

from . import remote
from .errors import CubeFormatError, CubeNotFoundError, DownloadError


@dataclasses.dataclass(frozen=True)
class ArrayMeta:
    """Metadata of one Zarr v2 array (from ``.zarray`` + ``.zattrs``)."""

    name: str
    shape: tuple[int, ...]
    chunks: tuple[int, ...]
    dtype: np.dtype
    fill_value: object
    order: str
    compressor: dict | None
    filters: tuple[dict, ...]
    attrs: dict
    separator: str = "."

    @property
    def dims(self) -> tuple[str, ...]:
        return tuple(self.attrs.get("_ARRAY_DIMENSIONS", ()))

    @property
    def cf_attrs(self) -> dict:
        """Attributes without the Zarr-internal dimension list."""
        return {k: v for k, v in self.attrs.items() if k != "_ARRAY_DIMENSIONS"}

    @property
    def grid(self) -> tuple[int, ...]:
        """Number of chunks along each dimension."""
        return tuple(-(-s // c) for s, c in zip(self.shape, self.chunks, strict=True))

    def key(self, idx: Sequence[int]) -> str:
        """Store key of chunk ``idx`` (``"0"`` for 0-d arrays)."""
        return f"{self.name}/" + (self.separator.join(map(str, idx)) if idx else "0")

    def filled(self, shape: tuple[int, ...] | None = None) -> np.ndarray:
        """An array of fill values (default shape: one chunk, what a missing chunk means)."""
        shape = self.chunks if shape is None else shape
        if self.dtype.kind == "O":
            return np.full(shape, "", dtype=object)
        fill = self.encoded_fill
        if fill is None:
            return np.zeros(shape, dtype=self.dtype)
        return np.full(shape, fill, dtype=self.dtype)

    def decode(self, raw: bytes | None) -> np.ndarray:
        """Decode one chunk object into an array of the full chunk shape."""
        if raw is None:
            return self.filled()
        buf: object = raw
        if self.compressor:
            buf = numcodecs.get_codec(dict(self.compressor)).decode(buf)
        for f in reversed(self.filters):
            buf = numcodecs.get_codec(dict(f)).decode(buf)
        if isinstance(buf, np.ndarray) and buf.dtype.kind == "O":
            return buf.reshape(self.chunks, order=self.order)
        arr = np.frombuffer(buf, dtype=self.dtype)
        return arr.reshape(self.chunks or (), order=self.order)

    @property
    def encoded_fill(self) -> object:
        """Fill value as a scalar of the array dtype (NaN for float "NaN")."""
        fill = self.fill_value
        if fill is None or self.dtype.kind in "OUS":
            return None
        return np.array(fill).astype(self.dtype)[()]


def _parse_fill(fill: object, dtype: np.dtype) -> object:
    if fill == "NaN":
        return np.nan
    if fill in ("Infinity", "-Infinity"):
        return float(fill.replace("Infinity", "inf"))
    if isinstance(fill, str) and dtype.kind in "iuf":  # base64-encoded, rare
        return fill
    return fill


def parse_zmetadata(doc: dict) -> tuple[dict, dict[str, ArrayMeta]]:
    """Group attributes and array metadata from a consolidated ``.zmetadata`` document."""
    meta = doc.get("metadata", {})
    group_attrs = meta.get(".zattrs", {})
    arrays: dict[str, ArrayMeta] = {}
    for key, zarray in meta.items():
        if not key.endswith("/.zarray"):
            continue
        name = key[: -len("/.zarray")]
        if "/" in name:  # nested groups are not part of ITS_LIVE cubes
            continue
        dtype = np.dtype(zarray["dtype"]) if not isinstance(zarray["dtype"], list) else None
        if dtype is None:
            raise CubeFormatError(f"array {name}: structured dtypes are not supported")
        arrays[name] = ArrayMeta(
            name=name,
            shape=tuple(zarray["shape"]),
            chunks=tuple(zarray["chunks"]),
            dtype=dtype,
            fill_value=_parse_fill(zarray.get("fill_value"), dtype),
            order=zarray.get("order", "C"),
            compressor=zarray.get("compressor"),
            filters=tuple(zarray.get("filters") or ()),
            attrs=meta.get(f"{name}/.zattrs", {}),
            separator=zarray.get("dimension_separator", "."),
        )
    return group_attrs, arrays


class ChunkCache:
    """Raw chunk objects of one source store, cached on disk under ``root``.

    Files are written under a temporary name and renamed, so a file that
    exists is always complete. A missing source chunk (an all-fill chunk that
    the store omits) is remembered as an empty ``.missing`` marker.
    """

    def __init__(self, root: Path, fingerprint: str):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        stamp = self.root / "FINGERPRINT"
        if stamp.exists() and stamp.read_text() != fingerprint:
            # The source store changed since the cached chunks were fetched.
            for p in self.root.rglob("*"):
                if p.is_file():
                    p.unlink()
        stamp.write_text(fingerprint)

    def _path(self, key: str) -> Path:
        return self.root / key.replace("/", os.sep)

    def get(self, key: str) -> tuple[bool, bytes | None]:
        """``(hit, data)``: data is None for a remembered missing chunk."""
        p = self._path(key)
        if p.exists():
            return True, p.read_bytes()
        if p.with_name(p.name + ".missing").exists():
            return True, None
        return False, None

    def put(self, key: str, data: bytes | None) -> None:
        p = self._path(key)
        p.parent.mkdir(parents=True, exist_ok=True)
        target = p if data is not None else p.with_name(p.name + ".missing")
        tmp = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_bytes(data or b"")
        tmp.replace(target)


class RemoteStore:
    """A Zarr v2 store (local path, http(s):// or s3://) read chunk by chunk.

    Parameters
    ----------
    url : store URL or path.
    storage_options : extra fsspec options.
    cache : optional :class:`ChunkCache` root; chunks already there are not fetched again.
    """

    def __init__(self, url: str, storage_options: dict | None = None):
        self.url = remote.normalise_url(str(url))
        self.fs, self.root = remote.filesystem(self.url, storage_options)
        try:
            raw = remote.read_bytes(
                self.fs, remote.join(self.root, ".zmetadata"), f"{self.url}/.zmetadata"
            )
        except FileNotFoundError:
            if self._exists(".zgroup") or self._exists(".zarray"):
                raise CubeFormatError(
                    f"{self.url} has no consolidated metadata (.zmetadata); over http(s) such a "
                    "store reads as empty. Consolidate it (zarr.consolidate_metadata) or open a "
                    "local copy"
                ) from None
            raise CubeNotFoundError(f"{self.url}: no Zarr store found there") from None
        except DownloadError:
            raise
        except Exception as exc:
            raise CubeNotFoundError(
                f"{self.url}: cannot be read ({type(exc).__name__}: {exc})"
            ) from exc
        self.zmetadata_bytes = raw
        try:
            doc = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise CubeFormatError(f"{self.url}/.zmetadata is not valid JSON") from exc
        if doc.get("zarr_consolidated_format", 1) != 1:
            raise CubeFormatError(f"{self.url}: unsupported consolidated format")
        self.attrs, self.arrays = parse_zmetadata(doc)
        if not self.arrays:
            raise CubeFormatError(f"{self.url}: the store holds no arrays")
        self.fingerprint = hashlib.sha256(raw).hexdigest()
        self.bytes_fetched = 0
        self.chunks_fetched = 0
        self._lock = threading.Lock()

    def _exists(self, key: str) -> bool:
        try:
            return bool(self.fs.exists(remote.join(self.root, key)))
        except Exception:
            return False

    def __contains__(self, name: str) -> bool:
        return name in self.arrays

    def meta(self, name: str) -> ArrayMeta:
        try:
            return self.arrays[name]
        except KeyError:
            raise CubeFormatError(f"{self.url}: no variable {name!r}") from None

    def fetch(self, key: str, cache: ChunkCache | None = None) -> bytes | None:
        """Raw bytes of one chunk object (None if the store omits it: all fill)."""
        if cache is not None:
            hit, data = cache.get(key)
            if hit:
                return data
        try:
            data = remote.read_bytes(self.fs, remote.join(self.root, key), f"{self.url}/{key}")
        except FileNotFoundError:
            data = None
        with self._lock:
            self.chunks_fetched += 1
            self.bytes_fetched += len(data or b"")
        if cache is not None:
            cache.put(key, data)
        return data

    def read(self, name: str, cache: ChunkCache | None = None, workers: int = 8) -> np.ndarray:
        """A whole (small) array: coordinates and per-layer metadata."""
        return self.read_many([name], cache, workers)[name]

    def read_many(
        self, names: Sequence[str], cache: ChunkCache | None = None, workers: int = 8
    ) -> dict[str, np.ndarray]:
        """Several whole (small) arrays, fetched concurrently."""
        out: dict[str, np.ndarray] = {}
        jobs: list[Job] = []
        for name in dict.fromkeys(names):
            m = self.meta(name)
            sel = [np.arange(n) for n in m.shape]
            out[name] = np.empty(m.shape, dtype=m.dtype)
            jobs.append((m, sel, sel, out[name]))
        fetch_into([(self, cache, jobs)], workers=workers)
        return out


def chunk_tasks(
    m: ArrayMeta, src: Sequence[np.ndarray], dst: Sequence[np.ndarray]
) -> Iterator[tuple[tuple[int, ...], tuple[np.ndarray, ...], tuple[np.ndarray, ...]]]:
    """Chunks of ``m`` touched by a selection, with local and output indices.

    Parameters
    ----------
    src : per dimension, the selected source indices.
    dst : per dimension, the output position of each selected source index.

    Yields
    ------
    (chunk index, local indices in the chunk per dim, output indices per dim)
    """
    per_dim = []
    for s, d, c in zip(src, dst, m.chunks, strict=True):
        s = np.asarray(s, dtype=np.int64)
        d = np.asarray(d, dtype=np.int64)
        cid = s // c
        groups = []
        for k in np.unique(cid):
            sel = cid == k
            groups.append((int(k), s[sel] - k * c, d[sel]))
        per_dim.append(groups)
    for combo in itertools.product(*per_dim):
        yield (
            tuple(g[0] for g in combo),
            tuple(g[1] for g in combo),
            tuple(g[2] for g in combo),
        )


def is_fill(values: np.ndarray, fill: object) -> np.ndarray:
    """Mask of fill (missing) values in encoded data."""
    if values.dtype.kind == "f":
        mask = np.isnan(values)
        if fill is not None and not (isinstance(fill, float) and np.isnan(fill)):
            mask |= values == fill
        return mask
    if values.dtype.kind in "OUS":
        return values == ("" if values.dtype.kind != "S" else b"")
    if fill is None:
        return np.zeros(values.shape, bool)
    return values == fill


Job = tuple[ArrayMeta, Sequence[np.ndarray], Sequence[np.ndarray], np.ndarray]
"""(array, source indices per dim, output indices per dim, output array)."""


Source = tuple["RemoteStore", "ChunkCache | None", Sequence[Job]]
"""(store, cache, jobs) of one source cube; sources are ranked by their order."""

NO_OWNER = np.iinfo(np.int16).max


def fetch_into(
    sources: Sequence[Source],
    *,
    workers: int = 16,
    owners: dict[int, np.ndarray] | None = None,
    on_chunk: Callable[[int], None] | None = None,
) -> None:
    """Fetch, decode (in ``workers`` threads) and place the chunks of all jobs, in one pass.

    Parameters
    ----------
    sources : per source cube, its store, chunk cache and jobs.
    owners : for outputs that several sources write (mosaics), an int16 array per output
        (keyed by ``id(out)``, initialised to :data:`NO_OWNER`) recording which source rank
        wrote each cell. The result is then independent of completion order: a valid value
        of a lower-ranked (earlier) source wins; later sources fill its gaps.
    on_chunk : called with the compressed size of each chunk placed (progress).
    """
    tasks = []
    for rank, (store, cache, jobs) in enumerate(sources):
        for m, src, dst, out in jobs:
            for idx, local, outpos in chunk_tasks(m, src, dst):
                tasks.append((rank, store, cache, m, idx, local, outpos, out))
    if not tasks:
        return

    def work(task):
        _, store, cache, m, idx, local, _, _ = task
        raw = store.fetch(m.key(idx), cache)
        block = m.decode(raw)
        return task, (block[np.ix_(*local)] if local else block), len(raw or b"")

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = [pool.submit(work, t) for t in tasks]
        try:
            for fut in as_completed(futures):
                (rank, _, _, m, _, _, outpos, out), block, nbytes = fut.result()
                where = np.ix_(*outpos) if outpos else ()
                owner = owners.get(id(out)) if owners else None
                if owner is not None:
                    cur_owner = owner[where]
                    cur_fill = is_fill(out[where], m.encoded_fill)
                    new_valid = ~is_fill(block, m.encoded_fill)
                    take = (new_valid & ((cur_owner > rank) | cur_fill)) | (cur_owner == NO_OWNER)
                    out[where] = np.where(take, block, out[where])
                    owner[where] = np.where(take, rank, cur_owner)
                else:
                    out[where] = block
                if on_chunk is not None:
                    on_chunk(nbytes)
        except BaseException:
            for f in futures:
                f.cancel()
            raise
