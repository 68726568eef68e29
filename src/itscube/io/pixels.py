"""Read the full time series of a few pixels straight from a cube, chunk column by chunk column.

A velocity series at a point needs one chunk column per variable (ITS_LIVE stores image-pair
velocities in chunks that are long in time and 10 x 10 pixels in space), so reading only
those, concurrently, through the store's retries and byte counts, is all a series costs:
no whole-cube opening through xarray, no chunk read twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import numpy as np

from itscube.errors import CubeFormatError
from itscube.io.stores import SourceArray, SourceCube, decode_values, run_sync

__all__ = ["LAYER_VARIABLES", "PIXEL_VARIABLES", "read_layers", "read_pixels"]

PIXEL_VARIABLES = ("vx", "vy", "vx_error", "vy_error")
"""Velocity variables sampled at pixels (those a cube lacks, or holds per layer, are
skipped); speed and its error follow from the components."""
LAYER_VARIABLES = (
    "acquisition_date_img1",
    "acquisition_date_img2",
    "date_dt",
    "mission_img1",
    "satellite_img1",
    "sensor_img1",
    "roi_valid_percentage",
    "vx_error",
    "vy_error",
    "v_error",
)
"""Per-layer metadata of image-pair cubes (those a cube lacks are skipped)."""


def read_layers(cube: SourceCube, names: Sequence[str]) -> dict[str, np.ndarray]:
    """Decoded whole per-layer arrays (dims: the time dimension only) that the cube has."""
    tdim = cube.time_dim
    have = [n for n in names if n in cube and cube[n].dims == (tdim,)]
    raw = cube.read_many([tdim, *have])
    return {n: decode_values(cube[n], raw[n]) for n in [tdim, *have]}


async def _read_group(arr: SourceArray, times, rows: np.ndarray, cols: np.ndarray):
    """One chunk column: the box of pixels it holds, then the pixels picked from it."""
    r0, c0 = int(rows.min()), int(cols.min())
    box = await arr.read((times, slice(r0, int(rows.max()) + 1), slice(c0, int(cols.max()) + 1)))
    return box[:, rows - r0, cols - c0]


async def _read_array(arr: SourceArray, times, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    ty, tx = arr.chunks[-2], arr.chunks[-1]
    key = (rows // ty) * (cols.max() // tx + 1) + cols // tx
    groups = [np.nonzero(key == k)[0] for k in np.unique(key)]
    parts = await asyncio.gather(*(_read_group(arr, times, rows[g], cols[g]) for g in groups))
    n_time = parts[0].shape[0] if parts else 0
    out = np.empty((n_time, len(rows)), dtype=parts[0].dtype if parts else arr.dtype)
    for g, part in zip(groups, parts, strict=True):
        out[:, g] = part
    return out


def read_pixels(
    cube: SourceCube,
    names: Sequence[str],
    rows: np.ndarray,
    cols: np.ndarray,
    times: np.ndarray | slice = slice(None),
) -> dict[str, np.ndarray]:
    """Decoded ``(time, pixel)`` series of the pixels ``(rows[i], cols[i])``.

    Only the chunk columns holding the pixels are read, all variables and chunk columns
    concurrently (bounded by the store's request limit, with its retries). Variables the
    cube lacks, or that are not (time, y, x), are skipped.

    Raises
    ------
    CubeFormatError
        A velocity array is not laid out as (time, y, x).
    """
    rows = np.asarray(rows, np.int64)
    cols = np.asarray(cols, np.int64)
    tdim = cube.time_dim
    wanted = [n for n in names if n in cube and cube[n].dims[-2:] == ("y", "x")]
    for n in wanted:
        if cube[n].dims != (tdim, "y", "x"):
            raise CubeFormatError(f"{cube.url}: {n} has dims {cube[n].dims}, not ({tdim}, y, x)")

    async def go():
        return await asyncio.gather(*(_read_array(cube[n], times, rows, cols) for n in wanted))

    raw = run_sync(go()) if len(rows) else [np.empty((0, 0))] * len(wanted)
    return {n: decode_values(cube[n], r) for n, r in zip(wanted, raw, strict=True)}
