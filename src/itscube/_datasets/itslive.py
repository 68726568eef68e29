"""Synthetic ITS_LIVE datacubes with analytic velocity fields.

The generator writes Zarr v2 stores that follow the ITS_LIVE v2 datacube schema
(names, dims, dtypes, fill values, attributes, chunking, consolidated
metadata, *unsorted* ``mid_date``) so that the real access code can be tested
against real local servers, and so that downstream results (strain rates,
trajectories, flux) are known analytically.

Fields are functions of projected coordinates (metres) and decimal year, so
adjacent tiles generated from the same field agree at their seams.

The sample data shipped with itscube and used by the tests are made here; they
are synthetic, never real ITS_LIVE measurements.
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from collections.abc import Hashable, Sequence
from pathlib import Path

import numcodecs
import numpy as np
import pandas as pd
import pyproj
import xarray as xr

from itscube._datasets.fields import (
    LinearField,
    OutletGlacier,
    VelocityField,
    decimal_year,
    glacier_thickness,
    mean_velocity,
)
from itscube.geometry import footprint_rings, polygon_wkt

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
    "V22_COMPRESSOR",
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


# --------------------------------------------------------------------------- grid / CRS


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


# --------------------------------------------------------------------------- layers


@dataclasses.dataclass
class Layers:
    """Per-layer (image-pair) metadata, in generation order (unsorted by design)."""

    img1: np.ndarray  # datetime64[ns]
    img2: np.ndarray
    mission: np.ndarray  # "L"/"S"
    satellite: np.ndarray  # "8", "9", "1A", "2B", ...
    sensor: np.ndarray  # "O", "C", "MSI"

    @property
    def dt_days(self) -> np.ndarray:
        return ((self.img2 - self.img1) / np.timedelta64(1, "D")).astype("f4")

    @property
    def date_center(self) -> np.ndarray:
        return self.img1 + (self.img2 - self.img1) / 2

    @property
    def mid_date(self) -> np.ndarray:
        """Centre date made unique by a microsecond token (YYMMDD of image 1), as ITS_LIVE."""
        centre = pd.DatetimeIndex(self.date_center).floor("s")
        token = pd.DatetimeIndex(self.img1).strftime("%y%m%d").astype(int)
        return (centre + pd.to_timedelta(np.asarray(token), unit="us")).values


_PLATFORMS = [  # mission, satellite, sensor, min dt, max dt, first year
    ("L", "8", "O", 16, 544, 2013),
    ("L", "9", "O", 16, 400, 2021),
    ("S", "2A", "MSI", 5, 365, 2015),
    ("S", "2B", "MSI", 5, 365, 2017),
    ("S", "1A", "C", 6, 48, 2014),
    ("S", "1B", "C", 6, 48, 2016),
]


def make_layers(n: int, start: str, end: str, seed: int = 0) -> Layers:
    """Draw ``n`` image pairs with varied sensors and time separations in [start, end].

    Pairs are unique in ``mid_date`` and returned in a shuffled (unsorted) order.
    """
    rng = np.random.default_rng(seed)
    t0 = np.datetime64(start, "s")
    t1 = np.datetime64(end, "s")
    rows: dict[np.datetime64, tuple] = {}
    while len(rows) < n:
        mission, sat, sensor, dmin, dmax, first = _PLATFORMS[rng.integers(len(_PLATFORMS))]
        dt = int(np.exp(rng.uniform(np.log(dmin), np.log(dmax))))
        lo = max(t0, np.datetime64(f"{first}-01-01", "s"))
        span = int((t1 - lo) / np.timedelta64(1, "s")) - dt * 86400
        if span <= 0:
            continue
        img1 = lo + np.timedelta64(int(rng.integers(span)), "s")
        img1 = img1.astype("datetime64[ms]") + np.timedelta64(int(rng.integers(1000)), "ms")
        img2 = img1 + np.timedelta64(dt * 86400, "s")
        layer = Layers(
            np.array([img1], "datetime64[ns]"),
            np.array([img2], "datetime64[ns]"),
            np.array([mission]),
            np.array([sat]),
            np.array([sensor]),
        )
        rows.setdefault(layer.mid_date[0], (img1, img2, mission, sat, sensor))
    vals = list(rows.values())
    order = rng.permutation(len(vals))
    cols = list(zip(*[vals[i] for i in order], strict=True))
    return Layers(
        np.array(cols[0], "datetime64[ns]"),
        np.array(cols[1], "datetime64[ns]"),
        np.array(cols[2]),
        np.array(cols[3]),
        np.array(cols[4]),
    )


# --------------------------------------------------------------------------- cubes


def _encode(values: np.ndarray, dtype: str, fill: int) -> np.ndarray:
    info = np.iinfo(dtype)
    out = np.where(np.isfinite(values), np.clip(np.round(values), info.min + 1, info.max - 1), fill)
    return out.astype(dtype)


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


def subyearly_name(epsg: int, centre: tuple[float, float]) -> str:
    return f"ITS_LIVE_vel_EPSG{epsg}_G0120_X{int(centre[0])}_Y{int(centre[1])}.zarr"


def annual_name(epsg: int, centre: tuple[float, float]) -> str:
    return f"ITS_LIVE_velocity_EPSG{epsg}_120m_X{int(centre[0])}_Y{int(centre[1])}.zarr"


def _str_attrs(desc: str, **extra) -> dict:
    return {"description": desc, **extra}


def make_subyearly_cube(
    path: str | Path,
    field: VelocityField,
    *,
    epsg: int = 3413,
    centre: tuple[float, float] = (-150000.0, -2250000.0),
    shape: tuple[int, int] = (60, 60),
    layers: Layers | None = None,
    n_layers: int = 100,
    start: str = "2015-01-01",
    end: str = "2022-12-31",
    seed: int = 0,
    noise: bool = True,
    gap_share: float = 0.3,
    gap_size: float = 0.5,
    spatial_chunk: int = 10,
    time_chunk: int = 20000,
    url_root: str = f"{SYNTHETIC_URL}/velocity_image_pair",
    layout: str = "v2",
    shard: int | None = None,
    y_offset: float | None = None,
) -> xr.Dataset:
    """Write an ITS_LIVE v2 image-pair ("sub-yearly") cube following the real schema.

    Velocity of each layer is the mean of ``field`` over the pair's span (what feature
    tracking measures: displacement over separation; :func:`mean_velocity`), plus
    Gaussian noise of the layer's error (0.1 source pixel over the pair's
    separation, + 2 m/yr: 1/dt like real feature-tracking errors), rounded to
    int16 m/yr, with rectangular cloud gaps in a share ``gap_share`` of layers.

    Parameters
    ----------
    path : path of the ``.zarr`` store to create (overwritten).
    field : velocity field (m/yr) of projected x, y (m) and decimal year.
    epsg : projection of the tile.
    centre : tile centre (m).
    shape : (ny, nx) pixels at 120 m.
    layers : image pairs (default: ``make_layers(n_layers, start, end, seed)``); the same
        layers give tiles that mosaic consistently.
    gap_share, gap_size : share of layers with a cloud gap, and the largest gap side as a
        fraction of the tile.
    spatial_chunk, time_chunk : chunk shape of 3-D variables ``(min(n, time_chunk), s, s)``.
    layout : store layout (:data:`LAYOUTS`), or ``"none"`` to build the dataset only.
    shard : spatial shard side (``v2.2-sharded``).
    y_offset : y lattice offset (default :data:`LATTICE_OFFSET`; the real cubes' is
        :data:`LATTICE_OFFSET_Y`).

    Returns
    -------
    xarray.Dataset
        The dataset as written (encoded values), for tests to compare with.
    """
    rng = np.random.default_rng(seed + 1)
    layers = layers if layers is not None else make_layers(n_layers, start, end, seed)
    x, y = tile_coords(centre, shape, y_offset=y_offset)
    fields = _pair_velocities(field, layers, x, y, rng, noise, gap_share, gap_size)
    data_vars = {
        **_pixel_variables(fields, layers.dt_days, layers.mission, layers.satellite),
        "mapping": xr.Variable((), np.array("", dtype="<U1"), mapping_attrs(epsg, x, y)),
        **_layer_variables(
            layers, fields["roi"], fields["vx_err"], fields["vy_err"], rng, url_root
        ),
    }
    coords = _image_pair_coords(layers.mid_date, x, y)
    ds = xr.Dataset(data_vars, coords=coords, attrs=_cube_attrs(epsg, x, y, path))
    if layout == "none":
        return ds
    write_subyearly(
        ds, path, layout=layout, time_chunk=time_chunk, spatial_chunk=spatial_chunk, shard=shard
    )
    return ds


def _pair_velocities(field, layers, x, y, rng, noise: bool, gap_share: float, gap_size: float):
    """Per-pair velocities (int16-encoded), errors and validity of a tile: the field
    averaged over each pair's span, with noise of the pair's error and cloud gaps."""
    n = len(layers.img1)
    ny, nx = len(y), len(x)
    X, Y = np.meshgrid(x, y)
    dt = layers.dt_days
    t1 = decimal_year(layers.img1)
    t2 = decimal_year(layers.img2)
    # feature-tracking error ~0.1 source pixel (Landsat 15 m, Sentinel 10 m) over dt, + 2 m/yr
    pixel = np.where(layers.mission == "L", 15.0, 10.0)
    vx_err = (0.1 * pixel * 365.25 / dt + 2.0).astype("f4")  # m/yr
    vy_err = (vx_err * rng.uniform(0.8, 1.2, n)).astype("f4")
    vx = np.empty((n, ny, nx))
    vy = np.empty((n, ny, nx))
    for k in range(n):
        vx[k], vy[k] = mean_velocity(field, X, Y, float(t1[k]), float(t2[k]))
    if noise:
        vx += rng.normal(size=vx.shape) * vx_err[:, None, None]
        vy += rng.normal(size=vy.shape) * vy_err[:, None, None]
    gaps = _gap_mask(rng, n, ny, nx, gap_share, gap_size)
    vx[gaps] = np.nan
    vy[gaps] = np.nan
    vx_i = _encode(vx, "int16", FILL_INT16)
    vy_i = _encode(vy, "int16", FILL_INT16)
    valid = vx_i != FILL_INT16
    roi = (100.0 * valid.mean(axis=(1, 2))).astype("f4")
    return {
        "vx_i": vx_i,
        "vy_i": vy_i,
        "valid": valid,
        "vx_err": vx_err,
        "vy_err": vy_err,
        "roi": roi,
    }


def _v3(data, desc, std, dtype="int16", fill=FILL_INT16, units="meter/year", **extra):
    """A (mid_date, y, x) variable encoded as ITS_LIVE stores it."""
    arr = _encode(data, dtype, fill) if np.issubdtype(np.asarray(data).dtype, np.floating) else data
    attrs = {
        "units": units,
        "grid_mapping": "mapping",
        "description": desc,
        "standard_name": std,
        **extra,
    }
    return xr.Variable(("mid_date", "y", "x"), arr.astype(dtype), attrs)


def _pixel_variables(fields: dict, dt, mission, satellite) -> dict:
    """The (mid_date, y, x) variables of an image-pair cube."""
    vx_i, vy_i, valid = fields["vx_i"], fields["vy_i"], fields["valid"]
    vx_err, vy_err = fields["vx_err"], fields["vy_err"]
    dims3 = ("mid_date", "y", "x")
    v = np.where(valid, np.hypot(vx_i, vy_i), np.nan)
    v_err = np.where(
        valid,
        np.hypot(vx_i * vx_err[:, None, None], vy_i * vy_err[:, None, None]) / np.maximum(v, 1),
        np.nan,
    )
    radar = (mission == "S") & np.char.startswith(satellite.astype(str), "1")
    radar3 = np.broadcast_to(radar[:, None, None], vx_i.shape)
    va = np.where(radar3 & valid, vy_i * 0.9, np.nan)
    vr = np.where(radar3 & valid, vx_i * 0.9, np.nan)
    chip = np.where(valid, 240 * (1 + (dt[:, None, None] > 60)), 0).astype("u2")
    return {
        "vx": _v3(
            vx_i.astype("f8"),
            "velocity component in x direction",
            "land_ice_surface_x_velocity",
            stable_shift_flag_description="flag for applying velocity bias correction",
        ),
        "vy": _v3(
            vy_i.astype("f8"), "velocity component in y direction", "land_ice_surface_y_velocity"
        ),
        "v": _v3(v, "velocity magnitude", "land_ice_surface_velocity"),
        "v_error": _v3(v_err, "velocity magnitude error", "velocity_error"),
        "va": _v3(va, "velocity in radar azimuth direction", "azimuth_velocity"),
        "vr": _v3(vr, "velocity in radar range direction", "range_velocity"),
        "M11": _v3(
            np.where(radar3 & valid, 1.0, np.nan),
            "conversion matrix element (1st row, 1st column)",
            "conversion_matrix_element_11",
            units="pixel/(meter/year)",
        ),
        "M12": _v3(
            np.where(radar3 & valid, 0.0, np.nan),
            "conversion matrix element (1st row, 2nd column)",
            "conversion_matrix_element_12",
            units="pixel/(meter/year)",
        ),
        "interp_mask": xr.Variable(
            dims3,
            (~valid & False).astype("u1"),
            {
                "description": "light interpolation mask",
                "units": "binary",
                "grid_mapping": "mapping",
                "standard_name": "interpolated_value_mask",
            },
        ),
        "chip_size_height": xr.Variable(
            dims3,
            chip,
            {
                "description": "height of search template (chip)",
                "units": "m",
                "grid_mapping": "mapping",
                "chip_size_coordinates": "Optical data: image projection geometry",
            },
        ),
        "chip_size_width": xr.Variable(
            dims3,
            chip,
            {
                "description": "width of search template (chip)",
                "units": "m",
                "grid_mapping": "mapping",
            },
        ),
    }


def _layer_variables(layers, roi, vx_err, vy_err, rng, url_root: str) -> dict:
    """The per-pair (mid_date) variables of an image-pair cube."""
    n = len(layers.img1)
    dt = layers.dt_days
    granule = np.array(
        [
            f"{url_root}/v02/N60W040/{m}{s}_{pd.Timestamp(a):%Y%m%d}_{pd.Timestamp(b):%Y%m%d}"
            f"_X_G0120V02_P0{int(r):02d}.nc"
            for m, s, a, b, r in zip(
                layers.mission, layers.satellite, layers.img1, layers.img2, roi, strict=True
            )
        ]
    )
    data_vars = {
        "acquisition_date_img1": xr.Variable(
            ("mid_date",),
            layers.img1,
            _str_attrs(
                "acquisition date and time of image 1", standard_name="image1_acquition_date"
            ),
        ),
        "acquisition_date_img2": xr.Variable(
            ("mid_date",),
            layers.img2,
            _str_attrs(
                "acquisition date and time of image 2", standard_name="image2_acquition_date"
            ),
        ),
        "date_center": xr.Variable(
            ("mid_date",),
            layers.date_center,
            _str_attrs(
                "midpoint of image 1 and image 2 acquisition date",
                standard_name="image_pair_center_date",
            ),
        ),
        "date_dt": xr.Variable(
            ("mid_date",),
            dt,
            _str_attrs(
                "time separation between acquisition of image 1 and image 2",
                standard_name="image_pair_time_separation",
                units="days",
            ),
        ),
        "roi_valid_percentage": xr.Variable(
            ("mid_date",),
            roi,
            _str_attrs(
                "percentage of pixels with a valid velocity estimate",
                standard_name="region_of_interest_valid_pixel_percentage",
                units="percent",
            ),
        ),
        "granule_url": xr.Variable(
            ("mid_date",), granule, _str_attrs("original granule URL", standard_name="granule_url")
        ),
        "autoRIFT_software_version": xr.Variable(
            ("mid_date",), np.full(n, "1.5.0"), _str_attrs("version of autoRIFT software")
        ),
        "stable_shift_flag": xr.Variable(
            ("mid_date",),
            np.ones(n, "u1"),
            _str_attrs("flag for applying velocity bias correction"),
        ),
    }
    data_vars.update(_platform_variables(layers))
    data_vars.update(_error_variables(vx_err, vy_err, rng))
    return data_vars


def _platform_variables(layers) -> dict:
    """Mission, satellite and sensor of each image of each pair."""
    data_vars = {}
    for img in ("1", "2"):
        data_vars[f"mission_img{img}"] = xr.Variable(
            ("mid_date",),
            layers.mission,
            _str_attrs(
                f"id of the mission that acquired image {img}", standard_name=f"image{img}_mission"
            ),
        )
        data_vars[f"satellite_img{img}"] = xr.Variable(
            ("mid_date",),
            layers.satellite,
            _str_attrs(
                f"id of the satellite that acquired image {img}",
                standard_name=f"image{img}_satellite",
            ),
        )
        data_vars[f"sensor_img{img}"] = xr.Variable(
            ("mid_date",),
            layers.sensor,
            _str_attrs(
                f"id of the sensor that acquired image {img}", standard_name=f"image{img}_sensor"
            ),
        )
    return data_vars


def _error_variables(vx_err, vy_err, rng) -> dict:
    """Per-pair error estimates and stable-surface shifts, as ITS_LIVE stores them."""
    n = len(vx_err)
    f4 = "f4"
    data_vars = {}
    for comp, err in (("vx", vx_err), ("vy", vy_err)):
        desc = f"best estimate of {comp} error"
        data_vars[f"{comp}_error"] = xr.Variable(
            ("mid_date",), err, _str_attrs(desc, units="meter/year", standard_name=f"{comp}_error")
        )
        for suffix, scale in (("modeled", 1.1), ("slow", 0.9), ("stationary", 0.8)):
            data_vars[f"{comp}_error_{suffix}"] = xr.Variable(
                ("mid_date",),
                (err * scale).astype(f4),
                _str_attrs(
                    f"{comp} error {suffix}",
                    units="meter/year",
                    standard_name=f"{comp}_error_{suffix}",
                ),
            )
        shift = rng.normal(0, 2, n).astype(f4)
        data_vars[f"{comp}_stable_shift"] = xr.Variable(
            ("mid_date",), shift, _str_attrs(f"applied {comp} shift", units="meter/year")
        )
    return data_vars


def _image_pair_coords(mid_date, x, y) -> dict:
    coords = {
        "mid_date": xr.Variable(
            ("mid_date",),
            mid_date,
            {
                "description": "midpoint of image 1 and image 2 acquisition date and time "
                "with granule's centroid longitude and latitude as microseconds",
                "standard_name": "image_pair_center_date_with_time_separation",
            },
        ),
        "x": xr.Variable(
            ("x",),
            x,
            {
                "description": "x coordinate of projection",
                "standard_name": "projection_x_coordinate",
                "units": "m",
            },
        ),
        "y": xr.Variable(
            ("y",),
            y,
            {
                "description": "y coordinate of projection",
                "standard_name": "projection_y_coordinate",
                "units": "m",
            },
        ),
    }
    return coords


def _cube_attrs(epsg: int, x, y, path) -> dict:
    """Global attributes of a synthetic image-pair cube: the real keys, with values that say
    the data are synthetic (``s3``/``url`` do not point into the ITS_LIVE bucket)."""
    proj_ring, geo_ring = footprint_rings(epsg, x, y)
    return {
        "Conventions": "CF-1.8",
        "GDAL_AREA_OR_POINT": "Area",
        "author": "itscube synthetic generator (not real ITS_LIVE data)",
        "institution": "itscube (synthetic)",
        "title": "ITS_LIVE datacube of image pair velocities",
        "projection": str(epsg),
        "proj_polygon": polygon_wkt(proj_ring),
        "geo_polygon": polygon_wkt(geo_ring),
        "datacube_software_version": "1.0",
        "date_created": "01-Jan-2025 00:00:00",
        "date_updated": "01-Jan-2025 00:00:00",
        "skipped_granules": "{}",
        "latitude": round(float(np.mean([p[1] for p in geo_ring])), 2),
        "longitude": round(float(np.mean([p[0] for p in geo_ring])), 2),
        "s3": f"{SYNTHETIC_URL}/datacubes/v2/{Path(str(path)).name}",
        "url": f"{SYNTHETIC_URL}/datacubes/v2/{Path(str(path)).name}",
    }


LAYOUTS = ("v2", "v2.2", "v2.2-sharded")
"""Store layouts of image-pair cubes: ITS_LIVE v2 (Zarr v2, ``mid_date``, zlib Blosc) and
v2.2 chunk-aligned (Zarr v3, ``time`` in seconds since 1980-01-06, lz4 bitshuffle Blosc,
``missing_value`` on integers), optionally sharded."""

PER_LAYER_NO_FILL = (
    "mid_date",
    "date_dt",
    "date_center",
    "acquisition_date_img1",
    "acquisition_date_img2",
)
"""Per-layer variables written with ``_FillValue`` disabled (a null Zarr fill), as the
production v2 writer does."""
V22_TIME_UNITS = "seconds since 1980-01-06"
V22_COMPRESSOR = None  # built lazily (zarr.codecs import)


def as_v22(ds: xr.Dataset) -> xr.Dataset:
    """An image-pair dataset in v2.2 conventions: dim ``time``; integer velocities carry
    ``missing_value`` only (no ``_FillValue``)."""
    out = ds.rename({"mid_date": "time"})
    for name, var in list(out.variables.items()):
        if var.dtype == np.int16:
            var.attrs["missing_value"] = FILL_INT16
        if var.dtype.kind == "U" and name not in out.dims:  # Zarr v3 variable-length strings
            out[name] = var.copy(data=var.values.astype(object))
    out.attrs["datacube_software_version"] = "2.2"
    return out


def write_subyearly(
    ds: xr.Dataset,
    path: str | Path,
    *,
    layout: str = "v2",
    time_chunk: int = 20000,
    spatial_chunk: int = 10,
    shard: int | None = None,
) -> Path:
    """Write an image-pair dataset (as built by :func:`make_subyearly_cube`) in ``layout``.

    Parameters
    ----------
    layout : one of :data:`LAYOUTS`.
    time_chunk, spatial_chunk : 3-D chunks ``(min(n, time_chunk), s, s)``.
    shard : spatial side of the shards (``v2.2-sharded``; default 4 chunks).
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}")
    v22 = layout.startswith("v2.2")
    if v22:
        import zarr.codecs

        ds = as_v22(ds)
    tdim = "time" if v22 else "mid_date"
    n = ds.sizes[tdim]
    tc = min(n, time_chunk)
    dims3 = (tdim, "y", "x")
    enc: dict[Hashable, dict] = {}
    for name, var in ds.variables.items():
        if v22:
            e: dict = {
                "compressors": (
                    zarr.codecs.BloscCodec(cname="lz4", clevel=1, shuffle="bitshuffle"),
                )
            }
        else:
            e = {"compressors": (COMPRESSOR,)}
        if var.dims == dims3:
            e["chunks"] = (tc, spatial_chunk, spatial_chunk)
            if layout == "v2.2-sharded":
                side = shard or 4 * spatial_chunk
                e["shards"] = (tc, side, side)
            if var.dtype == np.int16 and not v22:  # production v2: both, each -32767
                e["_FillValue"] = FILL_INT16
                e["missing_value"] = FILL_INT16
            elif var.dtype in (np.uint8, np.uint16):
                e["_FillValue"] = 0
        elif var.ndim == 1:
            e["chunks"] = (min(var.shape[0], 200000),) if v22 else var.shape
        if np.issubdtype(var.dtype, np.datetime64):
            units = V22_TIME_UNITS if v22 else "days since 1970-01-01"
            e.update(units=units, calendar="proleptic_gregorian", dtype="float64")
        if name in PER_LAYER_NO_FILL and not v22:  # production v2 disables their _FillValue
            e["_FillValue"] = None
        enc[name] = e
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*(not part of the Zarr|unstable).*")
        ds.to_zarr(
            str(path), mode="w", zarr_format=3 if v22 else 2, consolidated=True, encoding=enc
        )
    return Path(path)


def write_icechunk_subyearly(
    ds: xr.Dataset,
    storage,
    *,
    virtual: str | None = None,
    granule_store=None,
    container_store=None,
    put=None,
    declare_container: bool = True,
    variables: Sequence[str] = ("vx", "vy", "v", "v_error"),
) -> str:
    """Write an image-pair dataset as an Icechunk repository in v2.2 conventions.

    Natively by default. With ``virtual`` (a URL prefix such as ``s3://bucket/granules/``
    or ``file:///path/``), the 3-D ``variables`` are instead *virtual references* into one
    NetCDF4 file per image pair (``g<k>.nc``, uncompressed contiguous int16 as the granule
    files hold them), one layer per chunk as ITS_LIVE's spatial repositories are laid out.

    Parameters
    ----------
    storage : ``icechunk.Storage`` of the repository to create.
    virtual : URL prefix of the granule files (None = native chunks).
    granule_store : ``icechunk`` object-store config for the container (virtual only).
    put : ``put(name, data: bytes)`` stores one granule file under ``virtual`` (virtual only).
    declare_container : declare the container in the repository config (False makes a
        repository whose virtual chunks no reader can authorise).

    Returns
    -------
    str
        The snapshot id of the commit.
    """
    import io

    import h5py
    import icechunk
    import zarr
    from zarr.codecs import BytesCodec

    icechunk.set_logs_filter("error")
    ds = as_v22(ds)
    config = icechunk.RepositoryConfig.default()
    if virtual and declare_container:
        config.set_virtual_chunk_container(icechunk.VirtualChunkContainer(virtual, granule_store))
    repo = icechunk.Repository.create(storage, config=config)
    session = repo.writable_session("main")
    native = ds.drop_vars(list(variables)) if virtual else ds
    enc = {}
    for name, var in native.variables.items():
        e: dict = {}
        if np.issubdtype(var.dtype, np.datetime64):
            e.update(units=V22_TIME_UNITS, calendar="proleptic_gregorian", dtype="float64")
        if var.ndim == 3:
            e["chunks"] = (1, *var.shape[1:])
        enc[name] = e
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*(not part of the Zarr|unstable).*")
        native.to_zarr(session.store, zarr_format=3, consolidated=False, encoding=enc, mode="w")
    if virtual:
        group = zarr.open_group(session.store, mode="r+")
        n, ny, nx = ds[variables[0]].shape
        offsets: dict[tuple[int, str], tuple[int, int]] = {}
        for k in range(n):
            buf = io.BytesIO()
            with h5py.File(buf, "w") as f:
                for v in variables:
                    d = f.create_dataset(v, data=np.ascontiguousarray(ds[v].values[k], "<i2"))
                    offsets[(k, v)] = (d.id.get_offset(), d.id.get_storage_size())
            put(f"g{k}.nc", buf.getvalue())
        for v in variables:
            attrs = {
                key: (int(val) if isinstance(val, np.integer) else val)
                for key, val in ds[v].attrs.items()
            }
            group.create_array(
                v,
                shape=(n, ny, nx),
                chunks=(1, ny, nx),
                dtype="int16",
                fill_value=FILL_INT16,
                compressors=None,
                serializer=BytesCodec(endian="little"),
                dimension_names=("time", "y", "x"),
                attributes=attrs,
            )
            for k in range(n):
                off, length = offsets[(k, v)]
                session.store.set_virtual_ref(
                    f"{v}/c/{k}/0/0",
                    f"{virtual}g{k}.nc",
                    offset=off,
                    length=length,
                    validate_container=declare_container,
                )
    return str(session.commit("synthetic ITS_LIVE v2.2 cube (itscube)"))


ANNUAL_SENSORS = ("L4-L7", "L8-L9", "S1", "S2")


def make_annual_cube(
    path: str | Path,
    field: VelocityField,
    *,
    epsg: int = 3413,
    centre: tuple[float, float] = (-150000.0, -2250000.0),
    shape: tuple[int, int] = (60, 60),
    years: Sequence[int] = range(2015, 2023),
    seed: int = 0,
    noise: bool = True,
) -> xr.Dataset:
    """Write an ITS_LIVE v2 annual composite cube (dims ``time, sensor, y, x``).

    Each year's velocity is the mean of ``field`` over the calendar year (the seasonal
    cycle averages out, as in the real composites) plus small noise; ``v0/vx0/vy0``
    are the all-year means. Chunks are one whole tile per year, as the real cubes.
    """
    rng = np.random.default_rng(seed + 7)
    x, y = tile_coords(centre, shape)
    ny, nx = shape
    X, Y = np.meshgrid(x, y)
    years = list(years)
    nt = len(years)
    time = np.array([f"{yr}-07-02" for yr in years], dtype="datetime64[ns]")
    vx = np.empty((nt, ny, nx))
    vy = np.empty((nt, ny, nx))
    for k, yr in enumerate(years):
        vx[k], vy[k] = mean_velocity(field, X, Y, float(yr), float(yr + 1))
    err = np.full((nt, ny, nx), 3.0)
    if noise:
        vx += rng.normal(size=vx.shape) * err
        vy += rng.normal(size=vy.shape) * err
    gaps = _gap_mask(rng, nt, ny, nx, 0.2)
    vx[gaps] = np.nan
    vy[gaps] = np.nan
    v = np.hypot(vx, vy)
    dims3 = ("time", "y", "x")

    uerr = _encode(np.where(np.isfinite(vx), err, np.nan), "uint16", FILL_UINT16)
    count = np.where(np.isfinite(vx), rng.integers(5, 200, vx.shape), 0).astype("u4")
    data_vars = {
        "v": _annual_var(dims3, _f32(v), "velocity magnitude"),
        "vx": _annual_var(dims3, _f32(vx), "velocity component in x direction"),
        "vy": _annual_var(dims3, _f32(vy), "velocity component in y direction"),
        "v_error": _annual_var(dims3, uerr, "velocity magnitude error"),
        "vx_error": _annual_var(dims3, uerr, "velocity component in x direction error"),
        "vy_error": _annual_var(dims3, uerr, "velocity component in y direction error"),
        "count": _annual_var(
            dims3,
            count,
            "number of image pairs used in error weighted least squares fit",
            units="count",
        ),
        **_annual_static_variables(vx, vy, count, years),
        "mapping": xr.Variable((), np.array("", dtype="<U1"), mapping_attrs(epsg, x, y)),
    }
    coords = {
        "time": xr.Variable(("time",), time, {"description": "center date of annual composite"}),
        "sensor": xr.Variable(
            ("sensor",), np.array(ANNUAL_SENSORS), {"description": "sensor groups"}
        ),
        "x": xr.Variable(("x",), x, {"standard_name": "projection_x_coordinate", "units": "m"}),
        "y": xr.Variable(("y",), y, {"standard_name": "projection_y_coordinate", "units": "m"}),
    }
    proj_ring, geo_ring = footprint_rings(epsg, x, y)
    attrs = {
        "Conventions": "CF-1.8",
        "GDAL_AREA_OR_POINT": "Area",
        "title": "ITS_LIVE annual composites of image pair velocities",
        "author": "itscube synthetic generator (not real ITS_LIVE data)",
        "projection": str(epsg),
        "proj_polygon": polygon_wkt(proj_ring),
        "geo_polygon": polygon_wkt(geo_ring),
        "composites_software_version": "1.0",
        "sensors_labels": ", ".join(ANNUAL_SENSORS),
    }
    ds = xr.Dataset(data_vars, coords=coords, attrs=attrs)
    _write_annual(ds, path)
    return ds


# --------------------------------------------------------------------------- catalog


def _f32(data):
    return np.where(np.isfinite(data), data, FILL_INT16).astype("f4")


def _annual_var(dims, data, desc, units="meter/year", **extra):
    attrs = {"description": desc, "units": units, "grid_mapping": "mapping", **extra}
    return xr.Variable(dims, data, attrs)


def _annual_static_variables(vx, vy, count, years) -> dict:
    """The (y, x) and (sensor, y, x) climatology variables of an annual-composite cube."""
    nt, ny, nx = vx.shape
    dims2 = ("y", "x")
    vx0 = np.nanmean(vx, axis=0)
    vy0 = np.nanmean(vy, axis=0)
    tyears = np.array(years, "f8") + 0.5
    slope_x = np.polyfit(tyears, np.nan_to_num(vx.reshape(nt, -1)), 1)[0].reshape(ny, nx)
    slope_y = np.polyfit(tyears, np.nan_to_num(vy.reshape(nt, -1)), 1)[0].reshape(ny, nx)
    return {
        "v0": _annual_var(
            dims2, _f32(np.hypot(vx0, vy0)), "climatological mean velocity magnitude"
        ),
        "vx0": _annual_var(dims2, _f32(vx0), "climatological mean x velocity"),
        "vy0": _annual_var(dims2, _f32(vy0), "climatological mean y velocity"),
        "v0_error": _annual_var(
            dims2, _encode(np.full((ny, nx), 1.0), "uint16", FILL_UINT16), "error of v0"
        ),
        "vx0_error": _annual_var(
            dims2, _encode(np.full((ny, nx), 1.0), "uint16", FILL_UINT16), "error of vx0"
        ),
        "vy0_error": _annual_var(
            dims2, _encode(np.full((ny, nx), 1.0), "uint16", FILL_UINT16), "error of vy0"
        ),
        "dv_dt": _annual_var(
            dims2,
            _f32(np.hypot(slope_x, slope_y)),
            "trend in velocity magnitude",
            units="meter/year^2",
        ),
        "dvx_dt": _annual_var(dims2, _f32(slope_x), "trend in x velocity", units="meter/year^2"),
        "dvy_dt": _annual_var(dims2, _f32(slope_y), "trend in y velocity", units="meter/year^2"),
        "v_amp": _annual_var(
            dims2, _f32(np.zeros((ny, nx))), "seasonal amplitude of velocity magnitude"
        ),
        "v_phase": _annual_var(
            dims2, _f32(np.zeros((ny, nx))), "day of maximum velocity", units="day of year"
        ),
        "count0": _annual_var(
            dims2, count.sum(axis=0).astype("u4"), "number of image pairs", units="count"
        ),
        "outlier_percent": _annual_var(
            dims2, _f32(np.zeros((ny, nx))), "percentage of outliers", units="percent"
        ),
        "landice": _annual_var(
            dims2,
            np.ones((ny, nx), "u1"),
            "land ice mask, 0 = non-land-ice, 1 = land-ice",
            units="binary",
        ),
        "floatingice": _annual_var(
            dims2,
            np.zeros((ny, nx), "u1"),
            "floating ice mask, 0 = non-floating-ice, 1 = floating-ice",
            units="binary",
        ),
        "dt_max": _annual_var(
            ("sensor", "y", "x"),
            np.full((len(ANNUAL_SENSORS), ny, nx), 365.0, "f4"),
            "maximum image pair time separation",
            units="days",
        ),
        "sensor_flag": _annual_var(
            ("sensor", "y", "x"),
            np.ones((len(ANNUAL_SENSORS), ny, nx), "u1"),
            "sensor included flag",
            units="binary",
        ),
    }


def _write_annual(ds: xr.Dataset, path) -> None:
    """Write an annual cube as ITS_LIVE does: one chunk per year over the tile."""
    ny, nx = ds.sizes["y"], ds.sizes["x"]
    enc: dict[Hashable, dict] = {}
    for name, v_ in ds.variables.items():
        e: dict = {"compressors": (COMPRESSOR,)}
        if v_.dims[:1] in (("time",), ("sensor",)) and v_.ndim == 3:
            e["chunks"] = (1, ny, nx)
        if v_.dtype == np.float32 and v_.ndim >= 2:
            e["_FillValue"] = np.float32(FILL_INT16)
        elif v_.dtype == np.uint16:
            e["_FillValue"] = FILL_UINT16
        if name == "time":
            e.update(units="days since 1970-01-01", calendar="proleptic_gregorian", dtype="float64")
        enc[name] = e
    ds.to_zarr(str(path), mode="w", zarr_format=2, consolidated=True, encoding=enc)


def catalog_feature(
    zarr_url: str,
    epsg: int,
    centre: tuple[float, float],
    shape: tuple[int, int],
    *,
    composite_zarr_url: str | None = None,
    granule_count: int | None = None,
    region: str = "SYNTH",
    new_style: bool = True,
    y_offset: float | None = None,
) -> dict:
    """A GeoJSON feature for ``catalog_v02.json`` describing one cube footprint."""
    x, y = tile_coords(centre, shape, y_offset=y_offset)
    proj_ring, geo_ring = footprint_rings(epsg, x, y)
    props: dict = {
        "fill-opacity": 0.98,
        "fill": "red",
        "roi_percent_coverage": 100.0,
        "geometry_epsg": {"type": "Polygon", "coordinates": [proj_ring]},
        "datacube_exist": 1,
        "zarr_url": zarr_url,
        "region_name": region,
        "region_id": region,
    }
    if new_style:
        props["epsg"] = int(epsg)
    else:
        props["data_epsg"] = f"EPSG:{epsg}"
    if granule_count is not None:
        props["granule_count"] = int(granule_count)
    if composite_zarr_url:
        props["composite_zarr_url"] = composite_zarr_url
    return {
        "type": "Feature",
        "geometry": {"type": "Polygon", "coordinates": [geo_ring]},
        "properties": props,
    }


def write_catalog(path: str | Path, features: Sequence[dict]) -> Path:
    """Write a GeoJSON FeatureCollection in the layout of ITS_LIVE ``catalog_v02.json``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"type": "FeatureCollection", "features": list(features)}))
    return path


def write_geotiff(
    path: str | Path,
    x: np.ndarray,
    y: np.ndarray,
    values: np.ndarray,
    crs: str | int | None,
    nodata: float | None = None,
) -> Path:
    """Write a single-band float32 GeoTIFF with pixel-centre coordinates ``x``, ``y``
    (``crs=None`` writes no CRS, for testing that error path)."""
    import rioxarray  # noqa: F401

    da = xr.DataArray(np.asarray(values, "f4"), coords={"y": y, "x": x}, dims=("y", "x"))
    if crs is not None:
        da = da.rio.write_crs(crs if not isinstance(crs, int) else f"EPSG:{crs}")
    if nodata is not None:
        da = da.rio.write_nodata(nodata)
    da.rio.to_raster(path, compress="DEFLATE")
    return Path(path)
