"""Data access: remote files, Zarr/Icechunk stores, catalogs, areas, opening and downloading cubes.

Modules
-------
remote
    URLs, fsspec filesystems, retries with back-off.
stores
    One reader for Zarr v2, Zarr v3 (sharded or not) and Icechunk sources.
catalog
    The ITS_LIVE cube catalogs (GeoJSON, chunk-aligned, STAC) and footprint search.
area
    Points, boxes and polygons of interest, in lon/lat or a projected CRS.
cube
    Open a local or remote cube as a normalised :class:`xarray.Dataset`.
download
    Plan, fetch and write subsets of one or many cubes in bounded memory.
files
    Output folders: validation, staging (write under a temporary name, then rename), JSON.
"""

__all__: list[str] = []
