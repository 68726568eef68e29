"""Data access: remote files, Zarr/Icechunk stores, catalogs, vector files, opening and
downloading cubes (areas and targets are :mod:`itscube.geometry`).

Modules
-------
remote
    URLs, fsspec filesystems, retries with back-off.
stores
    One reader for Zarr v2, Zarr v3 (sharded or not) and Icechunk sources.
chunkread
    Direct reads of Zarr v2 chunks (fetch, decode, place) without zarr's read pipeline.
_zarr_private
    The few private zarr names the readers need, in one place.
chunkcache
    The resume cache of raw chunks.
cf
    CF time encodings.
catalog
    The ITS_LIVE cube catalogs (GeoJSON, chunk-aligned, STAC) and footprint search.
vector
    One reader of points, lines and polygons (CSV, GeoJSON, GeoPackage, Shapefile), and
    polygon areas from files.
cube
    Open a local or remote cube as a normalised :class:`xarray.Dataset`.
pixels
    Reads of single pixels' series from a source cube.
download
    Plan, fetch and write subsets of one or many cubes in bounded memory: the package's
    ``plan``, ``encode``, ``write`` and ``run`` modules, and ``cluster`` (the same download
    as tasks on a dask.distributed cluster).
reproject
    Subsets reprojected to another CRS, vectors rotated with the grid.
location
    Output locations: a local folder or an fsspec URL.
files
    Output folders: validation, staging (write under a temporary name, then rename), JSON.
imagery
    Optical image search (STAC) and RGB reads for map backgrounds.
"""

__all__: list[str] = []
