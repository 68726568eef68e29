"""Download space/time subsets of ITS_LIVE cubes to a local Zarr store, in bounded memory.

A download runs in three steps that can be used (and tested) on their own:

1. :func:`plan_download` opens every source cube (Zarr v2, Zarr v3 or Icechunk, through
   :mod:`itscube.io.stores`), selects pixels and layers, and lays out one output store per
   projection: the mosaic grid on the shared 120 m lattice, the sorted time axis, the
   encodings and the *blocks* the output is assembled in.
2. :func:`fetch_block` reads one block from every source cube that covers it (only the
   chunks that intersect it; each raw chunk is cached on disk as it arrives, so nothing
   crosses the network twice and an interrupted download resumes at chunk granularity)
   and mosaics them: the first cube wins where tiles overlap, later cubes fill its gaps.
3. :class:`StagedStore` writes each block into the output store under a temporary name,
   marks it done, and finally moves the store into place; ``provenance.json`` is written
   last, so a folder without it is not complete.

The package's modules follow those steps: :mod:`~itscube.io.download.plan` (layout),
:mod:`~itscube.io.download.encode` (source values to output encodings),
:mod:`~itscube.io.download.write` (fetching blocks and the staged store),
:mod:`~itscube.io.download.run` (:func:`download`: catalog, resume, provenance) and
:mod:`~itscube.io.download.cluster` (the same blocks as tasks on a dask cluster).

Peak memory is set by the block size (:data:`BLOCK_BYTES`) and the number of blocks in
flight (:data:`IN_FLIGHT_BYTES`), not by the size of the request.
"""

from itscube.io.download.encode import MID_DATE_ENCODING, VarSpec, decode_times, to_output
from itscube.io.download.plan import (
    BLOCK_BYTES,
    DEFAULT_VARIABLES,
    IN_FLIGHT_BYTES,
    LONG_TIME_CHUNK,
    OUTPUT_CHUNK_BYTES,
    OUTPUT_COMPRESSOR,
    SPACE_FACTOR,
    TIME_DIM,
    Block,
    Part,
    StorePlan,
    plan_download,
)
from itscube.io.download.run import (
    DEFAULT_WORKERS,
    DownloadResult,
    check_disk_space,
    download,
    output_folder,
)
from itscube.io.download.write import StagedStore, fetch_block
from itscube.io.stores import missing_mask

__all__ = [
    "BLOCK_BYTES",
    "DEFAULT_VARIABLES",
    "DEFAULT_WORKERS",
    "IN_FLIGHT_BYTES",
    "LONG_TIME_CHUNK",
    "MID_DATE_ENCODING",
    "OUTPUT_CHUNK_BYTES",
    "OUTPUT_COMPRESSOR",
    "SPACE_FACTOR",
    "TIME_DIM",
    "Block",
    "DownloadResult",
    "Part",
    "StagedStore",
    "StorePlan",
    "VarSpec",
    "check_disk_space",
    "decode_times",
    "download",
    "fetch_block",
    "missing_mask",
    "output_folder",
    "plan_download",
    "to_output",
]
