"""The parts of zarr-python's private API that itscube relies on, in one place.

zarr 3 does not export these, and they may change in any release; every use in itscube
goes through this module, and ``tests/io/test_zarr_private.py`` checks them against the
installed zarr (so an upgrade that breaks one fails there, with its name). ``pyproject.toml``
bounds zarr below its next major version.

- :class:`AsyncArray` (``zarr.core.array``): rebuilt with the CF missing marker as its fill
  value, so never-written chunks read as missing (:func:`rebuild_async_array`);
- :class:`Buffer`, :class:`BufferPrototype`, :func:`default_buffer_prototype`
  (``zarr.core.buffer``): what a store's ``get`` takes and returns;
- :func:`get_loop` and :func:`sync` (``zarr.core.sync``): zarr's event-loop thread, on
  which itscube runs its own coroutines so that zarr's async stores are shared;
- :func:`async_array` (``Array._async_array``): the asynchronous side of an array, for
  writes that overlap with reads.
"""

from __future__ import annotations

from typing import Any

from zarr.core.array import AsyncArray
from zarr.core.buffer import Buffer, BufferPrototype, default_buffer_prototype
from zarr.core.sync import _get_loop as get_loop
from zarr.core.sync import sync
from zarr.storage import StorePath

__all__ = [
    "AsyncArray",
    "Buffer",
    "BufferPrototype",
    "async_array",
    "default_buffer_prototype",
    "get_loop",
    "rebuild_async_array",
    "sync",
]


def async_array(arr: Any) -> AsyncArray:
    """The :class:`AsyncArray` behind a ``zarr.Array``."""
    return arr._async_array


def rebuild_async_array(arr: Any, metadata: Any, store: Any) -> AsyncArray:
    """An :class:`AsyncArray` of ``arr``'s path in ``store`` with other ``metadata`` (and
    ``arr``'s configuration)."""
    return AsyncArray(
        metadata=metadata, store_path=StorePath(store, arr.path), config=async_array(arr).config
    )
