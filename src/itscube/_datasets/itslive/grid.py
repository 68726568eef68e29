"""The ITS_LIVE grid of the synthetic cubes: the global 120 m lattice, tile coordinates, the
``mapping`` variable, names, fill values and codecs."""

from __future__ import annotations

import numcodecs
import numpy as np
import pyproj

__all__ = [
    "COMPRESSOR",
    "FILL_INT16",
    "FILL_UINT16",
    "LATTICE_OFFSET",
    "LATTICE_OFFSET_Y",
    "SPACING",
    "SYNTHETIC_URL",
    "annual_name",
    "mapping_attrs",
    "subyearly_name",
    "tile_coords",
]

SYNTHETIC_URL = "synthetic://itscube"
"""Where synthetic cubes say they live (their ``s3``/``url``/granule attributes): nowhere real,
so that no attribute of a synthetic cube points into the ITS_LIVE bucket."""


SPACING = 120.0
"""ITS_LIVE v2 grid spacing (m)."""


LATTICE_OFFSET = 52.5
"""Offset of pixel centres on the global 120 m lattice (real cubes: coordinates end in .5)."""


LATTICE_OFFSET_Y = 67.5
"""y offset of the real ITS_LIVE lattice (x is 52.5 mod 120, y 67.5 mod 120)."""


FILL_INT16 = -32767


FILL_UINT16 = 32767


COMPRESSOR = numcodecs.Blosc(cname="zlib", clevel=2, shuffle=numcodecs.Blosc.SHUFFLE)


def tile_coords(
    centre: tuple[float, float],
    shape: tuple[int, int],
    spacing: float = SPACING,
    offset: float = LATTICE_OFFSET,
    y_offset: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates (x ascending, y DEscending) of a tile on the global lattice.

    Parameters
    ----------
    centre : (x, y)
        Tile centre in projected metres.
    shape : (ny, nx)
        Number of rows and columns.
    """
    ny, nx = shape
    cx, cy = centre
    x_first = offset + np.ceil((cx - nx / 2 * spacing - offset) / spacing) * spacing
    yo = offset if y_offset is None else y_offset
    y_first = yo + np.floor((cy + ny / 2 * spacing - yo) / spacing) * spacing
    return x_first + spacing * np.arange(nx), y_first - spacing * np.arange(ny)


def mapping_attrs(epsg: int, x: np.ndarray, y: np.ndarray) -> dict:
    """CF grid-mapping attributes of the ITS_LIVE ``mapping`` variable."""
    crs = pyproj.CRS.from_epsg(epsg)
    attrs = {k: v for k, v in crs.to_cf().items() if k != "crs_wkt"}
    dx = float(x[1] - x[0]) if len(x) > 1 else SPACING
    dy = float(y[1] - y[0]) if len(y) > 1 else -SPACING
    geo = [x[0] - dx / 2, dx, 0.0, y[0] - dy / 2, 0.0, dy]
    attrs.update(
        {
            "spatial_epsg": int(epsg),
            "crs_wkt": crs.to_wkt(),
            "spatial_ref": crs.to_wkt(),
            "GeoTransform": " ".join(f"{g:.12g}" for g in geo),
        }
    )
    return attrs


def _encode(values: np.ndarray, dtype: str, fill: int) -> np.ndarray:
    info = np.iinfo(dtype)
    out = np.where(np.isfinite(values), np.clip(np.round(values), info.min + 1, info.max - 1), fill)
    return out.astype(dtype)


def subyearly_name(epsg: int, centre: tuple[float, float]) -> str:
    return f"ITS_LIVE_vel_EPSG{epsg}_G0120_X{int(centre[0])}_Y{int(centre[1])}.zarr"


def annual_name(epsg: int, centre: tuple[float, float]) -> str:
    return f"ITS_LIVE_velocity_EPSG{epsg}_120m_X{int(centre[0])}_Y{int(centre[1])}.zarr"


def _str_attrs(desc: str, **extra) -> dict:
    return {"description": desc, **extra}


def _gap_mask(rng, n: int, ny: int, nx: int, share: float, size: float = 0.5) -> np.ndarray:
    """Random rectangular cloud gaps (True = no data) in a share of layers, each side up to
    ``size`` of the tile."""
    mask = np.zeros((n, ny, nx), bool)
    for k in np.nonzero(rng.random(n) < share)[0]:
        h = rng.integers(1, max(2, int(ny * size)))
        w = rng.integers(1, max(2, int(nx * size)))
        i = rng.integers(0, ny - h + 1)
        j = rng.integers(0, nx - w + 1)
        mask[k, i : i + h, j : j + w] = True
    return mask
