"""The resume cache of a download: every object (or byte range) read, in append-only packs.

A killed or failed download keeps what it fetched; the re-run reads those objects from
here instead of the network. A file per object cost more than the download itself (two
file creations and a rename per chunk: 14 s of system time for 2,500 chunks), so the
objects are appended to one *pack* per process by one writer thread, a batch per write:

* a record is ``key length (u32) | data length (u64, 2**64-1 = object absent) | key | data``;
* a pack cut short by a kill ends in a partial record: reading stops there, the objects
  before it are kept;
* each process writes its own pack (``<pid>-<random>.pack``), so two runs never
  interleave; a new run indexes every pack of the folder when it opens the cache.
"""

from __future__ import annotations

import contextlib
import os
import queue
import secrets
import struct
import threading
from pathlib import Path

__all__ = ["ABSENT", "ChunkCache", "cached_keys"]

_HEAD = struct.Struct("<IQ")
_ABSENT_LEN = 2**64 - 1
ABSENT = object()
"""What :meth:`ChunkCache.get` returns for an object known not to exist."""


def _scan(path: Path) -> dict[str, tuple[int, int]]:
    """``key -> (offset, length)`` of the complete records of one pack (length -1: absent)."""
    index: dict[str, tuple[int, int]] = {}
    size = path.stat().st_size
    with open(path, "rb") as f:
        pos = 0
        while pos + _HEAD.size <= size:
            klen, dlen = _HEAD.unpack(f.read(_HEAD.size))
            n = 0 if dlen == _ABSENT_LEN else dlen
            end = pos + _HEAD.size + klen + n
            if end > size:
                break  # cut short by a kill
            key = f.read(klen).decode()
            index[key] = (pos + _HEAD.size + klen, -1 if dlen == _ABSENT_LEN else n)
            f.seek(n, os.SEEK_CUR)
            pos = end
    return index


def cached_keys(folder: str | os.PathLike) -> list[str]:
    """Keys (``array/chunk`` plus ``@start-end`` for byte ranges) of the objects held in the
    packs under ``folder``, at any depth: what a resumed run would not fetch again."""
    return [k for p in sorted(Path(folder).rglob("*.pack")) for k in _scan(p)]


class ChunkCache:
    """Append-only packs of objects under ``root``, written by one background thread.

    Parameters
    ----------
    root : the folder of this source's packs.
    """

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._index: dict[str, tuple[Path, int, int]] = {}
        for pack in sorted(self.root.glob("*.pack")):
            for key, (off, n) in _scan(pack).items():
                self._index[key] = (pack, off, n)
        self._pending: dict[str, bytes | None] = {}
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._pack = self.root / f"{os.getpid()}-{secrets.token_hex(4)}.pack"
        self._writer: threading.Thread | None = None
        self._fds: dict[Path, int] = {}
        self._error: BaseException | None = None

    def __len__(self) -> int:
        return len(self._index) + len(self._pending)

    def get(self, key: str):
        """The bytes held for ``key``, :data:`ABSENT` for an object known to be missing, or
        None when the cache does not hold it."""
        with self._lock:
            if key in self._pending:
                data = self._pending[key]
                return ABSENT if data is None else data
            where = self._index.get(key)
        if where is None:
            return None
        pack, off, n = where
        if n < 0:
            return ABSENT
        fd = self._fds.get(pack)
        if fd is None:
            fd = self._fds.setdefault(pack, os.open(pack, os.O_RDONLY))
        return os.pread(fd, n, off)

    def put(self, key: str, data: bytes | None) -> None:
        """Hold ``data`` (None: the object does not exist) and append it to this process's
        pack in the background."""
        if self._error is not None:
            raise OSError(f"resume cache {self.root}: {self._error}") from self._error
        with self._lock:
            if key in self._index or key in self._pending:
                return
            self._pending[key] = data
        if self._writer is None:
            self._writer = threading.Thread(target=self._write_loop, daemon=True)
            self._writer.start()
        self._queue.put(key)

    def flush(self) -> None:
        """Wait until every object put so far is in the pack."""
        if self._writer is None:
            return
        done = threading.Event()
        self._queue.put(done)
        done.wait()

    def close(self) -> None:
        """Flush, stop the writer and close the files."""
        self.flush()
        if self._writer is not None:
            self._queue.put(None)
            self._writer.join()
            self._writer = None
        for fd in self._fds.values():
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds.clear()

    def _write_loop(self) -> None:
        with open(self._pack, "ab") as f:
            pos = f.tell()
            while True:
                items = [self._queue.get()]
                with contextlib.suppress(queue.Empty):
                    while len(items) < 256:
                        items.append(self._queue.get_nowait())
                keys = [k for k in items if isinstance(k, str)]
                if keys:
                    pos = self._append(f, keys, pos)
                for item in items:
                    if isinstance(item, threading.Event):
                        item.set()
                if any(item is None for item in items):
                    return

    def _append(self, f, keys: list[str], pos: int) -> int:
        with self._lock:
            batch = [(k, self._pending[k]) for k in keys]
        parts, placed = [], []
        for key, data in batch:
            kb = key.encode()
            n = _ABSENT_LEN if data is None else len(data)
            parts += [_HEAD.pack(len(kb), n), kb, data or b""]
            off = pos + _HEAD.size + len(kb)
            placed.append((key, off, -1 if data is None else len(data)))
            pos = off + (0 if data is None else len(data))
        try:
            f.write(b"".join(parts))
            f.flush()  # in the OS's hands: a killed process keeps it
        except OSError as exc:  # a full disk: reads go on, the next put reports it
            self._error = exc
            return pos
        with self._lock:
            for key, off, n in placed:
                self._index[key] = (self._pack, off, n)
                self._pending.pop(key, None)
        return pos
