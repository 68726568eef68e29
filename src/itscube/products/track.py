"""Tracking products: ``OUT/track/<sdate>_<edate>/``."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

import dask
import geopandas as gpd
import numpy as np
import shapely.geometry as sg
import xarray as xr

from itscube._compat import renamed_params
from itscube._typing import AdvectionMethod, CRSLike, Estimator
from itscube.errors import InputError
from itscube.grid import time_dim
from itscube.io.cube import open_cube
from itscube.io.files import check_out_dir, date_label, product_folder, staged_folder
from itscube.products._common import (
    Product,
    background_label,
    close_product,
    load_background,
    on_cluster,
    summary_head,
)
from itscube.products._outputs import write_cog, write_netcdf
from itscube.temporal import period_mean, select_layers
from itscube.track import STATUS, displacement_field, ensemble_spread, track_blocks
from itscube.window import DateLike, Filters, date_window

__all__ = ["DISPLACEMENT_FILES", "run_track"]

DISPLACEMENT_FILES = {
    "dx": "displacement_x",
    "dy": "displacement_y",
    "displacement": "displacement",
    "status_code": "displacement_status",
}
"""Displacement-grid variable -> GeoTIFF name."""


@on_cluster
@renamed_params(composite="period")
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
    period: str | None = None,
    steady: bool = False,
    estimator: Estimator = "auto",
    ensemble: int = 0,
    seeds_crs: CRSLike | None = None,
    gap_radius: float = 3.0,
    filters: Filters | None = None,
    extrapolate: bool = False,
    output_every: int = 1,
    figures: bool = True,
    background: str | os.PathLike | None = None,
    background_stac: str | None = None,
    overwrite: bool = False,
    block_points: int = 100_000,
) -> Product:
    """Tracks into ``OUT/track/<sdate>_<edate>``: ``tracks.gpkg`` (layers ``tracks`` lines
    and ``points``), ``tracks.csv``, ``tracks.nc``, ``displacement_*.tif`` (with
    ``grid_step``), ``figures/*.png`` and ``summary.json``. With ``grid_step`` and no
    ``seeds`` the grid points are the tracked points; with both, the seeds are tracked and
    the grid gives the displacement maps. Points are tracked and written in blocks of
    ``block_points``: memory stays bounded for a million points."""
    if start is None or end is None:
        raise InputError("give both start and end", params=("start", "end"))
    t_start = time.perf_counter()
    check_out_dir(out)
    # dask chunks of ~128 MB on the store's chunk boundaries: ITS_LIVE's 10 x 10 px chunks
    # made the composite fields 20,000 tasks (13 s of scheduling on 300 x 300 px; 1.7 s now)
    ds = open_cube(cube, chunks="auto")
    if filters is not None and filters.active():
        ds = select_layers(ds, None, None, filters)  # all dates: composites need neighbours
    kw: dict[str, Any] = dict(
        dt_days=dt_days,
        method=method,
        backward=backward,
        period=period,
        steady=steady,
        estimator=estimator,
        gap_radius=gap_radius,
        extrapolate=extrapolate,
    )
    field = None
    if grid_step is not None:
        field = displacement_field(ds, start, end, grid_step=grid_step, **kw)
        if seeds is None:
            X, Y = np.meshgrid(field.x.values, field.y.values)
            seeds, seeds_crs = np.column_stack([X.ravel(), Y.ravel()]), None
    if seeds is None:
        raise InputError(
            "give seeds: seeds FILE, point X Y, line X0 Y0 X1 Y1 N or grid_step",
            params=("seeds", "point", "line", "grid_step"),
        )
    sdate, edate = date_label(start), date_label(end, end=True)
    folder = product_folder(out, "track", None, sdate, edate)
    blocks = track_blocks(
        ds, seeds, start, end, seeds_crs=seeds_crs, output_every=output_every,
        block_points=block_points, **kw,
    )  # fmt: skip
    with staged_folder(folder, overwrite) as tmp:
        files_out = _TrackFiles(tmp, ds.rio.crs)
        for res in blocks:  # each block is written as soon as it is tracked
            if ensemble:
                starts = np.column_stack([res.x.values[:, 0], res.y.values[:, 0]])
                res = res.merge(ensemble_spread(ds, starts, start, end, ensemble, **kw))
            files_out.add(res)
        files = files_out.finish(f"Tracked points {sdate}-{edate}", ds)
        sample = files_out.sample
        assert sample is not None  # finish() refuses a run without blocks
        if field is not None:
            for name, stem in DISPLACEMENT_FILES.items():
                files.append(write_cog(field[name], tmp / f"{stem}.tif"))
        image = None
        if figures:
            t0 = sample.time.values.min()
            image = load_background(background, ds, t0, stac=background_stac)
            files += _figures(ds, sample, field, tmp, start, end, image)
        summary = {
            **summary_head("tracks", cube, ds, sdate, edate),
            "direction": "backward" if backward else "forward",
            "method": method,
            "dt_days": dt_days,
            "period": sample.attrs["itscube_period"],
            "estimator": sample.attrs["itscube_estimator"],
            **files_out.summary(),
            "ensemble_members": ensemble,
            "background": background_label(image, background),
        }
        product = close_product(folder, tmp, files, summary, t_start)
    return product


FIGURE_POINTS = 5000
"""Tracks drawn in the figure (the first ones; all when there are fewer)."""


class _TrackFiles:
    """``tracks.csv``, ``tracks.gpkg`` and ``tracks.nc`` written block by block: the CSV
    and GeoPackage layers are appended to, each block's NetCDF is kept apart and the blocks
    are joined into ``tracks.nc`` through dask at the end; a bounded sample of tracks is
    kept for the figure, and the counts for the summary."""

    def __init__(self, tmp: Path, crs) -> None:
        self.tmp, self.crs = tmp, crs
        self.parts: list[Path] = []
        self.sample: xr.Dataset | None = None
        self.counts = dict.fromkeys(STATUS, 0)
        self.displacement: list[np.ndarray] = []
        self.spread: list[np.ndarray] = []
        self.gap_points = 0

    def add(self, res: xr.Dataset) -> None:
        first = not self.parts
        (self.tmp / ".blocks").mkdir(exist_ok=True)
        part = self.tmp / ".blocks" / f"{len(self.parts):06d}.nc"
        block = res.drop_vars("mapping", errors="ignore")
        for name in ("status", "id"):  # variable-length text: blocks' widths differ
            if block[name].dtype.kind == "U":
                block[name] = block[name].astype(object)
        block.to_netcdf(part, engine="h5netcdf")
        self.parts.append(part)
        _append_tables(res, self.tmp, self.crs, first)
        for s in STATUS:
            self.counts[s] += int((res.status.values == s).sum())
        self.gap_points += int((res.filled.values > 0).any(axis=1).sum())
        self.displacement.append(res.displacement.values)
        if "spread" in res:
            self.spread.append(res.spread.values)
        if self.sample is None or self.sample.sizes["point"] < FIGURE_POINTS:
            self.sample = res if self.sample is None else xr.concat([self.sample, res], "point")

    def finish(self, title: str, source: xr.Dataset) -> list[Path]:
        if self.sample is None:
            raise InputError("no seed points given", params="seeds")
        # the block files are in this machine's staging folder: they are joined here, with
        # local threads, also when the tracking ran on a cluster (whose workers cannot read
        # them, and whose write lock would be a distributed one, with leases)
        with dask.config.set(scheduler="threads"), xr.open_mfdataset(
            self.parts, combine="nested", concat_dim="point", data_vars="minimal",
            coords="minimal", compat="override", engine="h5netcdf",
        ) as joined:  # fmt: skip
            joined.attrs = dict(self.sample.attrs)
            for name in ("status", "id"):  # one value per point: small, and text is
                # given its full width only when loaded (a lazy one takes the first block's)
                values = joined[name].values
                joined[name] = ("point", values.astype(str) if values.dtype == object else values)
            joined = joined.rio.write_crs(self.crs, grid_mapping_name="mapping")
            nc = write_netcdf(joined, self.tmp / "tracks.nc", title, source=source)
        shutil.rmtree(self.tmp / ".blocks")
        return [nc, self.tmp / "tracks.csv", self.tmp / "tracks.gpkg"]

    def summary(self) -> dict:
        displacement = np.concatenate(self.displacement)
        spread = np.concatenate(self.spread) if self.spread else None
        return {
            "points": int(displacement.size),
            "status": self.counts,
            "points_with_gap_fallback": self.gap_points,
            "median_displacement_m": float(np.nanmedian(displacement)),
            "median_spread_m": float(np.nanmedian(spread)) if spread is not None else None,
        }


def _append_tables(res: xr.Dataset, tmp: Path, crs, first: bool) -> None:
    """Append a block to ``tracks.csv`` (one row per kept position) and ``tracks.gpkg``
    (layers ``tracks``, one line per point, and ``points``)."""
    table = (
        res[["x", "y", "lon", "lat", "vx", "vy", "v", "filled"]]
        .drop_vars("mapping", errors="ignore")
        .to_dataframe()
    )
    table = table.dropna(subset=["x"]).reset_index()
    # one identifier column: the seed id (the point index where seeds had none)
    point_pos = table["point"].values - int(res.point.values[0])
    table.insert(0, "id", res["id"].values[point_pos])
    table["status"] = res["status"].values[point_pos]
    table = table.drop(columns=[c for c in ("point", "mapping") if c in table])
    table.to_csv(tmp / "tracks.csv", index=False, mode="w" if first else "a", header=first)
    xs_all, ys_all = res.x.values, res.y.values  # numpy once: no xarray per point
    geoms = []
    for xs, ys in zip(xs_all, ys_all, strict=True):
        ok = np.isfinite(xs)
        geoms.append(sg.LineString(np.column_stack([xs[ok], ys[ok]])) if ok.sum() > 1 else None)
    lines = {
        "point": res.point.values.astype(int),
        "id": res.id.values.astype(str),
        "status": res.status.values.astype(str),
        "displacement_m": res.displacement.values.astype(float),
    }
    if "spread" in res:
        lines["spread_m"] = res.spread.values.astype(float)
    gpkg = tmp / "tracks.gpkg"
    mode = "w" if first else "a"
    gpd.GeoDataFrame(lines, geometry=geoms, crs=crs).to_file(
        gpkg, layer="tracks", driver="GPKG", mode=mode
    )
    pts = gpd.GeoDataFrame(
        table.assign(time=table["time"].astype(str)),
        geometry=gpd.points_from_xy(table["x"], table["y"]),
        crs=crs,
    )
    pts.to_file(gpkg, layer="points", driver="GPKG", mode=mode)


def _figures(ds, res, field, tmp: Path, start, end, image=None) -> list[Path]:
    from itscube.products.figures.track import displacement_figure, tracks_figure

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
