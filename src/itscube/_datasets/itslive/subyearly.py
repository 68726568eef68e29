"""Synthetic sub-yearly (image-pair) cubes: per-pair velocities of an analytic field with
noise and gaps, their errors, and the per-layer and per-pixel variables of the v2 schema."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from itscube._datasets.fields import (
    VelocityField,
    decimal_year,
    mean_velocity,
)
from itscube._datasets.itslive.grid import (
    FILL_INT16,
    SYNTHETIC_URL,
    _encode,
    _gap_mask,
    _str_attrs,
    mapping_attrs,
    tile_coords,
)
from itscube._datasets.itslive.layers import Layers, make_layers
from itscube._datasets.itslive.writers import write_subyearly
from itscube.geometry import footprint_rings, polygon_wkt

__all__ = ["make_subyearly_cube"]


# --------------------------------------------------------------------------- grid / CRS


# --------------------------------------------------------------------------- layers


# --------------------------------------------------------------------------- cubes


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


# --------------------------------------------------------------------------- catalog
