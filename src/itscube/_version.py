"""The itscube version: the single source of truth, read by the build (pyproject's dynamic
version) and at run time without scanning package metadata (which costs ~80 ms at start-up)."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
