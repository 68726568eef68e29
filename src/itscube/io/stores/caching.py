"""The store between zarr and the network: bounded concurrency, retries of transient
failures, byte counting, and an on-disk cache of every object or byte range read (the
resume cache), with answers of servers that ignore ``Range`` cut to the range."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from zarr.abc.store import ByteRequest, OffsetByteRequest, RangeByteRequest, SuffixByteRequest
from zarr.storage import WrapperStore

from itscube.errors import CubeFormatError, DownloadError
from itscube.io import remote
from itscube.io._zarr_private import (
    Buffer,
    BufferPrototype,
    default_buffer_prototype,
)
from itscube.io.chunkcache import ABSENT, ChunkCache

__all__ = [
    "METADATA_KEYS",
    "CachingStore",
    "TransferStats",
]

METADATA_KEYS = ("zarr.json", ".zmetadata", ".zgroup", ".zattrs", ".zarray")


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
