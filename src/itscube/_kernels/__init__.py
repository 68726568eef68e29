"""Pure numeric kernels on arrays (numba/numpy): no xarray, no I/O, nothing from itscube.

The kernels are compiled with ``cache=True``. Their machine code is kept in the
user's cache folder (``$ITSCUBE_CACHE_DIR/numba``, else
``$XDG_CACHE_HOME/itscube/numba``, else ``~/.cache/itscube/numba``), not beside
the installed sources, so a read-only install still caches and a fresh
environment compiles once. numba's own ``NUMBA_CACHE_DIR`` wins when it is set.
Only itscube's kernels are redirected; other numba users in the process keep
numba's default locations.
"""

from __future__ import annotations

import os
from pathlib import Path

from numba.core import caching, config

__all__ = ["kernel_cache_dir"]

_HERE = Path(__file__).resolve().parent


def kernel_cache_dir() -> Path:
    """Folder holding the compiled kernels (see the module docstring)."""
    if os.environ.get("ITSCUBE_CACHE_DIR"):
        return Path(os.environ["ITSCUBE_CACHE_DIR"]) / "numba"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "itscube" / "numba"


class _KernelCacheLocator(caching.UserProvidedCacheLocator):
    """numba cache locator for the files of this package, in :func:`kernel_cache_dir`."""

    def __init__(self, py_func, py_file):
        self._py_file = py_file
        self._lineno = py_func.__code__.co_firstlineno
        self._cache_path = str(kernel_cache_dir() / self.get_suitable_cache_subpath(py_file))

    @classmethod
    def from_function(cls, py_func, py_file):
        if config.CACHE_DIR or Path(py_file).resolve().parent != _HERE:
            return None
        return super(caching.UserProvidedCacheLocator, cls).from_function(py_func, py_file)


def _register() -> None:
    locators = caching.CacheImpl._locator_classes
    if _KernelCacheLocator not in locators:
        locators.insert(0, _KernelCacheLocator)


_register()
