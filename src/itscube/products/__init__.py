"""Products: a window of a cube in, a folder of files and figures out.

Each module opens a date window with layer filters, calls the domain API
(:mod:`itscube.strain`, :mod:`itscube.flux`, :mod:`itscube.track`) and writes a
staged folder (files appear under their final name only when complete).
"""

from itscube.products._common import Product, Summary

__all__ = ["Product", "Summary"]
