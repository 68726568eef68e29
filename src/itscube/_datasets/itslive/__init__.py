"""Synthetic ITS_LIVE datacubes with analytic velocity fields.

The generator writes Zarr v2 stores that follow the ITS_LIVE v2 datacube schema
(names, dims, dtypes, fill values, attributes, chunking, consolidated
metadata, *unsorted* ``mid_date``) so that the real access code can be tested
against real local servers, and so that downstream results (strain rates,
trajectories, flux) are known analytically.

Fields are functions of projected coordinates (metres) and decimal year, so
adjacent tiles generated from the same field agree at their seams.

Modules: ``grid`` (lattice, tiles, mapping, fills), ``layers`` (image pairs and
platforms), ``subyearly`` and ``annual`` (the cubes), ``writers`` (every archive layout,
GeoTIFFs) and ``catalog`` (catalog features); this package re-exports them all.

The sample data shipped with itscube and used by the tests are made here; they
are synthetic, never real ITS_LIVE measurements.
"""

from itscube._datasets.fields import (
    LinearField,
    OutletGlacier,
    VelocityField,
    decimal_year,
    glacier_thickness,
    mean_velocity,
)
from itscube._datasets.itslive.annual import ANNUAL_SENSORS, make_annual_cube
from itscube._datasets.itslive.catalog import catalog_feature, write_catalog
from itscube._datasets.itslive.grid import (
    COMPRESSOR,
    FILL_INT16,
    FILL_UINT16,
    LATTICE_OFFSET,
    LATTICE_OFFSET_Y,
    SPACING,
    annual_name,
    mapping_attrs,
    subyearly_name,
    tile_coords,
)
from itscube._datasets.itslive.layers import Layers, make_layers
from itscube._datasets.itslive.subyearly import make_subyearly_cube
from itscube._datasets.itslive.writers import (
    LAYOUTS,
    PER_LAYER_NO_FILL,
    V22_TIME_UNITS,
    as_v22,
    write_geotiff,
    write_icechunk_subyearly,
    write_subyearly,
)

__all__ = [
    "ANNUAL_SENSORS",
    "COMPRESSOR",
    "FILL_INT16",
    "FILL_UINT16",
    "LATTICE_OFFSET",
    "LATTICE_OFFSET_Y",
    "LAYOUTS",
    "PER_LAYER_NO_FILL",
    "SPACING",
    "V22_TIME_UNITS",
    "Layers",
    "LinearField",
    "OutletGlacier",
    "VelocityField",
    "annual_name",
    "as_v22",
    "catalog_feature",
    "decimal_year",
    "glacier_thickness",
    "make_annual_cube",
    "make_layers",
    "make_subyearly_cube",
    "mapping_attrs",
    "mean_velocity",
    "subyearly_name",
    "tile_coords",
    "write_catalog",
    "write_geotiff",
    "write_icechunk_subyearly",
    "write_subyearly",
]
