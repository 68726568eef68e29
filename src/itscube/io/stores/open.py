"""Opening a source cube: detect its format (Zarr v2, Zarr v3 or Icechunk) from its
metadata keys, open it through a :class:`~itscube.io.stores.caching.CachingStore`, and
run zarr's coroutines from synchronous code."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import zarr
from zarr.storage import FsspecStore, LocalStore

from itscube.errors import CubeFormatError, CubeNotFoundError, DownloadError
from itscube.io import remote
from itscube.io._zarr_private import (
    get_loop,
    sync,
)
from itscube.io.stores.arrays import SourceCube
from itscube.io.stores.caching import METADATA_KEYS, CachingStore, _first_line
from itscube.io.stores.icechunk import _open_icechunk, is_icechunk

__all__ = ["FORMATS", "open_source", "run_sync"]

FORMATS = ("zarr-v2", "zarr-v3", "icechunk")
"""Store generations :func:`open_source` reads."""


# --------------------------------------------------------------------------- caching store


# --------------------------------------------------------------------------- arrays


# --------------------------------------------------------------------------- cubes


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


def _zarr_store(url: str, storage_options: dict | None, connections: int | None = None) -> Any:
    proto = remote.protocol_of(url)
    if proto == "file":
        p = Path(url)
        if not p.exists():
            raise CubeNotFoundError(f"{url}: no such file or folder")
        return LocalStore(p, read_only=True)
    opts = remote.storage_options_for(url, storage_options, connections)
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
    raw = _zarr_store(url, storage_options, workers)
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
