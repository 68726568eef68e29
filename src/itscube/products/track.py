"""Tracking products: ``OUT/track/<sdate>_<edate>/``."""

from __future__ import annotations

import os
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely.geometry as sg
import xarray as xr

from itscube._typing import AdvectionMethod, Estimator
from itscube.errors import InputError
from itscube.grid import time_dim
from itscube.io.cube import open_cube
from itscube.io.files import check_out_dir, date_label, product_folder, staged_folder
from itscube.products._common import (
    Product,
    background_label,
    close_product,
    load_background,
    summary_head,
)
from itscube.products._outputs import write_cog, write_netcdf
from itscube.temporal import period_mean, select_layers
from itscube.track import STATUS, displacement_field, ensemble_spread, track
from itscube.window import DateLike, Filters, date_window

__all__ = ["DISPLACEMENT_FILES", "run_track"]

DISPLACEMENT_FILES = {
    "dx": "displacement_x",
    "dy": "displacement_y",
    "displacement": "displacement",
    "status_code": "displacement_status",
}
"""Displacement-grid variable -> GeoTIFF name."""


def run_track(
    cube: str | os.PathLike,
    *,
    seeds=None,
    grid_step: int | None = None,
    start: DateLike | None = None,
    end: DateLike | None = None,
    out: str | os.PathLike = ".",
    dt_days: float = 5.0,
    method: AdvectionMethod = "rk4",
    backward: bool = False,
    composite: str | None = None,
    steady: bool = False,
    estimator: Estimator = "auto",
    ensemble: int = 0,
    seeds_crs: str | None = None,
    gap_radius: float = 3.0,
    filters: Filters | None = None,
    extrapolate: bool = False,
    output_every: int = 1,
    figures: bool = True,
    background: str | os.PathLike | None = None,
    background_stac: str | None = None,
    overwrite: bool = False,
) -> Product:
    """Tracks into ``OUT/track/<sdate>_<edate>``: ``tracks.gpkg`` (layers ``tracks`` lines
    and ``points``), ``tracks.csv``, ``tracks.nc``, ``displacement_*.tif`` (with
    ``grid_step``), ``figures/*.png`` and ``summary.json``. With ``grid_step`` and no
    ``seeds`` the grid points are the tracked points; with both, the seeds are tracked and
    the grid gives the displacement maps."""
    if start is None or end is None:
        raise InputError("give both start and end", params=("start", "end"))
    t_start = time.perf_counter()
    check_out_dir(out)
    ds = open_cube(cube)
    if filters is not None and filters.active():
        ds = select_layers(ds, None, None, filters)  # all dates: composites need neighbours
    kw = dict(
        dt_days=dt_days,
        method=method,
        backward=backward,
        composite=composite,
        steady=steady,
        estimator=estimator,
        gap_radius=gap_radius,
        extrapolate=extrapolate,
    )
    field = None
    if grid_step is not None:
        field = displacement_field(ds, start, end, step=grid_step, **kw)
        if seeds is None:
            X, Y = np.meshgrid(field.x.values, field.y.values)
            seeds, seeds_crs = np.column_stack([X.ravel(), Y.ravel()]), None
    if seeds is None:
        raise InputError(
            "give seeds: seeds FILE, point X Y, line X0 Y0 X1 Y1 N or grid_step",
            params=("seeds", "point", "line", "grid_step"),
        )
    res = track(ds, seeds, start, end, seeds_crs=seeds_crs, output_every=output_every, **kw)
    res = res.compute()  # one advection pass for every file below
    if ensemble:
        res = res.merge(ensemble_spread(ds, seeds, start, end, ensemble, seeds_crs=seeds_crs, **kw))
    sdate, edate = date_label(start), date_label(end, end=True)
    folder = product_folder(out, "track", None, sdate, edate)
    crs = ds.rio.crs
    with staged_folder(folder, overwrite) as tmp:
        files = [
            write_netcdf(
                res,
                tmp / "tracks.nc",
                f"Tracked points {sdate}-{edate}",
                source=ds,
            )
        ]
        files += _write_tables(res, tmp, crs)
        if field is not None:
            for name, stem in DISPLACEMENT_FILES.items():
                files.append(write_cog(field[name], tmp / f"{stem}.tif"))
        image = None
        if figures:
            t0 = res.time.values.min()
            image = load_background(background, ds, t0, stac=background_stac)
            files += _figures(ds, res, field, tmp, start, end, image)
        counts = {s: int((res.status.values == s).sum()) for s in STATUS}
        summary = {
            **summary_head("tracks", cube, ds, sdate, edate),
            "direction": "backward" if backward else "forward",
            "method": method,
            "dt_days": dt_days,
            "composite": res.attrs["composite"],
            "estimator": res.attrs["estimator"],
            "points": int(res.sizes["point"]),
            "status": counts,
            "points_with_gap_fallback": int((res.filled.values > 0).any(axis=1).sum()),
            "median_displacement_m": float(np.nanmedian(res.displacement.values)),
            "ensemble_members": ensemble,
            "background": background_label(image, background),
            "median_spread_m": float(np.nanmedian(res.spread.values)) if ensemble else None,
        }
        product = close_product(folder, tmp, files, summary, t_start)
    return product


def _write_tables(res: xr.Dataset, tmp: Path, crs) -> list[Path]:
    """``tracks.csv`` (one row per kept position) and ``tracks.gpkg`` (layers ``tracks``,
    one line per point, and ``points``)."""
    table = (
        res[["x", "y", "lon", "lat", "vx", "vy", "v", "filled"]]
        .drop_vars("mapping", errors="ignore")
        .to_dataframe()
    )
    table = table.dropna(subset=["x"]).reset_index()
    # one identifier column: the seed id (the point index where seeds had none)
    table.insert(0, "id", res["id"].values[table["point"].values])
    table["status"] = res["status"].values[table["point"].values]
    table = table.drop(columns=[c for c in ("point", "mapping") if c in table])
    table.to_csv(tmp / "tracks.csv", index=False)
    lines = []
    for p in range(res.sizes["point"]):
        xs, ys = res.x.values[p], res.y.values[p]
        ok = np.isfinite(xs)
        row = {
            "point": p,
            "id": str(res.id.values[p]),
            "status": str(res.status.values[p]),
            "displacement_m": float(res.displacement[p]),
            "geometry": sg.LineString(np.column_stack([xs[ok], ys[ok]])) if ok.sum() > 1 else None,
        }
        if "spread" in res:
            row["spread_m"] = float(res.spread[p])
        lines.append(row)
    gpkg = tmp / "tracks.gpkg"
    gpd.GeoDataFrame(lines, crs=crs).to_file(gpkg, layer="tracks", driver="GPKG")
    pts = gpd.GeoDataFrame(
        table.assign(time=table["time"].astype(str)),
        geometry=gpd.points_from_xy(table["x"], table["y"]),
        crs=crs,
    )
    pts.to_file(gpkg, layer="points", driver="GPKG")
    return [tmp / "tracks.csv", gpkg]


def _figures(ds, res, field, tmp: Path, start, end, image=None) -> list[Path]:
    from itscube.products.figures import displacement_figure, tracks_figure

    t0, t1 = date_window(start, end)
    times = ds[time_dim(ds)].values
    inside = (times >= np.datetime64(t0)) & (times < np.datetime64(t1))
    window = ds.isel({time_dim(ds): inside}) if inside.any() else ds  # extrapolated: all
    speed = period_mean(window, "all").isel(time=0)
    files = [tracks_figure(res, speed, tmp / "figures" / "tracks.png", image)]
    if field is not None:
        files.append(
            displacement_figure(field, tmp / "figures" / "displacement.png", f"{start} to {end}")
        )
    return files
