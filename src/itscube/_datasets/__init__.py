"""Synthetic datasets in the true ITS_LIVE schema, for the tests, the sample and the benchmarks.

:mod:`itscube._datasets.itslive` holds the analytic velocity fields (:class:`LinearField`,
:class:`OutletGlacier`) and writes them as ITS_LIVE cubes (Zarr v2, v2.2 Zarr v3, Icechunk),
catalogs and GeoTIFFs.
"""

from itscube._datasets.itslive import (
    LinearField,
    OutletGlacier,
    glacier_thickness,
    make_annual_cube,
    make_subyearly_cube,
)

__all__ = [
    "LinearField",
    "OutletGlacier",
    "glacier_thickness",
    "make_annual_cube",
    "make_subyearly_cube",
]
