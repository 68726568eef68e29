"""Synthetic annual composite cubes (ITS_LIVE's annual mosaics: per-year means, errors, counts
and the seasonal fit's static variables)."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from pathlib import Path

import numpy as np
import xarray as xr

from itscube._datasets.fields import (
    VelocityField,
    mean_velocity,
)
from itscube._datasets.itslive.grid import (
    COMPRESSOR,
    FILL_INT16,
    FILL_UINT16,
    _encode,
    _gap_mask,
    mapping_attrs,
    tile_coords,
)
from itscube.geometry import footprint_rings, polygon_wkt

__all__ = [
    "ANNUAL_SENSORS",
    "make_annual_cube",
]

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
