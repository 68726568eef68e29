"""Velocity time-series products: ``OUT/series/<name>_<sdate>_<edate>/``."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import cast

import numpy as np
import pandas as pd
import xarray as xr

from itscube import temporal
from itscube._compat import renamed_params
from itscube._typing import KINDS_OR_BOTH as _KINDS_OR_BOTH
from itscube._typing import Estimator, Kind
from itscube.geometry import Targets
from itscube.io.files import check_out_dir, date_label, staged_folder
from itscube.io.pixels import LAYER_VARIABLES
from itscube.products._common import Product, close_product, on_cluster
from itscube.products._outputs import csv_bytes, source_of, write_netcdf
from itscube.progress import Progress, ProgressLike, as_progress
from itscube.series import Interp, time_series
from itscube.window import DateLike, Filters

__all__ = ["FIGURE_POINTS", "KINDS_OR_BOTH", "run_series", "series_table"]

KINDS_OR_BOTH = _KINDS_OR_BOTH
FIGURE_POINTS = 20
"""Per-point figures are drawn for the first this many points (the table has them all)."""

TABLE_COLUMNS = (
    *("vx", "vy", "v", "vx_error", "vy_error", "v_error", "n_pixels", "valid_fraction"),
    *(n for n in LAYER_VARIABLES if not n.endswith("_error") and n != "roi_valid_percentage"),
)
"""Columns of ``series.csv`` after the point's identity and the layer's date."""


def series_table(series: xr.Dataset) -> pd.DataFrame:
    """Long format: one row per point and layer with data (id, x, y, lon, lat, distance,
    the layer's dates, separation and platform, the velocities and their errors)."""
    tdim = "mid_date" if "mid_date" in series.dims else "time"
    cols = [c for c in TABLE_COLUMNS if c in series]
    frame = series[cols].to_dataframe().reset_index()
    frame = frame[np.isfinite(frame["v"])]
    keep = ["id", "x", "y", "lon", "lat", *(["distance"] if "distance" in frame else []), tdim]
    frame = frame[[*keep, *[c for c in cols]]]
    if "mission_img1" in frame and "satellite_img1" in frame:
        frame.insert(
            frame.columns.get_loc("mission_img1"),
            "satellite",
            frame["mission_img1"].str.cat(frame["satellite_img1"]),
        )
        frame = frame.drop(columns=["mission_img1", "satellite_img1"])
    return frame.rename(columns={"sensor_img1": "sensor", "distance": "distance_m"})


@on_cluster
@renamed_params(regular="regularise", with_climatology="climatology", buffer="radius")
def run_series(
    targets: Targets,
    cube: str | os.PathLike | None = None,
    *,
    out: str | os.PathLike = ".",
    kind: str | None = None,
    start: DateLike | None = None,
    end: DateLike | None = None,
    filters: Filters | None = None,
    interp: Interp = "nearest",
    radius: float = 0.0,
    regularise: str | None = None,
    estimator: Estimator = "auto",
    climatology: bool = False,
    catalog=None,
    stac: str | None = None,
    figures: bool = True,
    overwrite: bool = False,
    progress: ProgressLike = None,
) -> Product:
    """Series of ``targets`` into ``OUT/series/<name>_<sdate>_<edate>/``: ``series.csv``
    (long format), ``series.nc`` (CF, dims point x time; ``_annual`` variables with
    ``kind="both"``), ``series.parquet``, ``regular.nc`` (with ``regularise``),
    ``climatology.nc`` (with ``climatology``), ``figures/*.png`` and ``summary.json``.
    The options are those of :func:`itscube.series.time_series`; ``estimator`` makes the
    regular series (:func:`itscube.temporal.regularise`).

    Raises
    ------
    InputError, CubeNotFoundError, EmptySelectionError, OutputExistsError
    """
    from itscube._typing import check_choice

    if kind is not None:
        check_choice(kind, KINDS_OR_BOTH, "kind")
    t_start = time.perf_counter()
    check_out_dir(out)
    progress = as_progress(progress)
    options = dict(start=start, end=end, interp=interp, radius=radius, catalog=catalog, stac=stac)
    kinds = ("subyearly", "annual") if kind == "both" else (kind,)
    got = {}
    with progress.task("series", len(kinds)) as advance:
        for k in kinds:
            got[k] = time_series(
                targets,
                cube,
                kind=cast(Kind, k),
                filters=filters if k != "annual" else None,
                **options,
            )
            advance()
    main = got[kinds[0]]
    tdim = "time" if "time" in main.dims else "mid_date"
    times = main[tdim].values
    name = targets.label()
    folder = (
        Path(out)
        / "series"
        / f"{name}_{date_label(start, times.min())}_{date_label(end, times.max(), end=True)}"
    )
    with staged_folder(folder, overwrite) as tmp:
        table = series_table(main)
        (tmp / "series.csv").write_bytes(csv_bytes(table))
        table.to_parquet(tmp / "series.parquet", index=False)
        files = [tmp / "series.csv", tmp / "series.parquet"]
        nc = main
        if "annual" in got and kind == "both":
            ann = got["annual"][["vx", "vy", "v", "vx_error", "vy_error", "v_error"]]
            nc = main.merge(
                ann.rename({v: f"{v}_annual" for v in ann.data_vars}),
                compat="override",
                join="outer",
            )
        files.append(
            write_netcdf(
                nc.drop_vars(["source"], errors="ignore"),
                tmp / "series.nc",
                f"Velocity time series ({name})",
                source=main,
            )
        )
        reg = temporal.regularise(main, regularise, estimator) if regularise else None
        if reg is not None:
            files.append(
                write_netcdf(reg, tmp / "regular.nc", f"Regular velocity series ({regularise})")
            )
        clim = temporal.climatology(main) if climatology else None
        if clim is not None:
            files.append(write_netcdf(clim, tmp / "climatology.nc", "Mean annual cycle of speed"))
        if figures:
            files += _figures(main, got.get("annual"), reg, targets, tmp, progress)
        summary = {
            **_summary_head(main, targets, kind, tdim),
            "radius_m": radius,
            "window": {
                "start": None if start is None else str(start),
                "end": None if end is None else str(end),
            },
            "filters": None if filters is None else filters.__dict__,
            "regularised": regularise,
            "estimator": None if reg is None else reg.attrs["itscube_estimator"],
            "climatology": climatology,
            "values_per_point": {
                str(i): int(np.isfinite(main["v"].values[k]).sum())
                for k, i in enumerate(main["id"].values)
            },
            "units": {"velocity": "m yr-1", "date_dt": "days", "distance": "m"},
        }
        product = close_product(folder, tmp, files, summary, t_start)
    return product


def _summary_head(main: xr.Dataset, targets: Targets, kind: str | None, tdim: str) -> dict:
    """What the series are of: source, targets, kind, sampling, layers and cubes."""
    return {
        "product": "time_series",
        "source_data": source_of(main),
        "targets": targets.kind,
        "points": int(main.sizes["point"]),
        "kind": "both" if kind == "both" else main.attrs["itscube_kind"],
        "interp": main.attrs["itscube_interp"],
        "layers": int(main.sizes[tdim]),
        "cubes": sorted(set(map(str, main["source"].values))),
    }


def _figures(main, annual, reg, targets: Targets, tmp: Path, progress: Progress) -> list[Path]:
    from itscube.products.figures.series import (
        hovmoller_figure,
        locator_figure,
        profile_years_figure,
        series_figure,
    )

    figs = tmp / "figures"
    files = [
        locator_figure(
            main, figs / "locator.png", targets.polygon if targets.crs.is_geographic else None
        )
    ]
    if targets.kind == "profile":
        yearly = temporal.regularise(main, "YS")  # one fit for both figures
        files.append(hovmoller_figure(reg if reg is not None else yearly, figs / "hovmoller.png"))
        files.append(profile_years_figure(yearly, figs / "profile_by_year.png"))
        return files
    n = min(FIGURE_POINTS, main.sizes["point"])
    with progress.task("series figures", n) as advance:
        for k in range(n):
            one = main.isel(point=k)
            ann = annual.isel(point=k) if annual is not None else None
            r = reg.isel(point=k) if reg is not None else None
            files.append(series_figure(one, figs / f"series_{one['id'].values}.png", ann, r))
            advance()
    return files
