"""Read ITS_LIVE datacubes of every generation, chunk by chunk, through zarr-python.

One reader serves the three forms the ITS_LIVE archive takes:

* **Zarr v2** stores with consolidated ``.zmetadata`` (the ``catalog_v02.json`` cubes);
* **Zarr v3** stores with consolidated metadata in the root ``zarr.json``, sharded or not
  (the v2.2 "chunk-aligned" cubes); inner chunks of shards are fetched with byte-range
  reads, never whole shards;
* **Icechunk** repositories (local or ``s3://``), including arrays whose chunks are
  *virtual references* into granule NetCDF files.

Metadata parsing and codecs are zarr-python's (``zarr.open_group`` over an
``FsspecStore``/``LocalStore``, or the ``icechunk`` package's store). What this package
adds is a :class:`CachingStore` between zarr and the network: bounded concurrency,
retries of transient failures, byte counting, and an on-disk cache of every object (or
byte range) read, so that an interrupted download resumes at chunk granularity and no
chunk crosses the network twice.

The package's modules: :mod:`~itscube.io.stores.caching` (:class:`CachingStore`),
:mod:`~itscube.io.stores.arrays` (:class:`SourceArray`, :class:`SourceCube`, missing
markers), :mod:`~itscube.io.stores.icechunk` (repositories and their storage) and
:mod:`~itscube.io.stores.open` (:func:`open_source`, format detection).

CF conventions of the real writers are normalised here: an integer variable may carry
``_FillValue``, ``missing_value`` or both, or a null Zarr fill value; the *missing
marker* of each array is found once (:attr:`SourceArray.missing`) and chunks that were
never written read as that marker, not as Zarr's default 0.
"""

from itscube.io.stores.arrays import (
    IMAGE_PAIR_VARIABLES,
    SourceArray,
    SourceCube,
    decode_values,
    missing_mask,
)
from itscube.io.stores.caching import METADATA_KEYS, CachingStore, TransferStats
from itscube.io.stores.icechunk import icechunk_storage, is_icechunk, open_icechunk_session
from itscube.io.stores.open import FORMATS, open_source, run_sync

__all__ = [
    "FORMATS",
    "IMAGE_PAIR_VARIABLES",
    "METADATA_KEYS",
    "CachingStore",
    "SourceArray",
    "SourceCube",
    "TransferStats",
    "decode_values",
    "icechunk_storage",
    "is_icechunk",
    "missing_mask",
    "open_icechunk_session",
    "open_source",
    "run_sync",
]
