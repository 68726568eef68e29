"""Seasonal-cycle products: ``OUT/seasonal/<sdate>_<edate>/``."""

from __future__ import annotations

import os
import time

from itscube.io.files import check_out_dir, product_folder, staged_folder
from itscube.products._common import (
    MEMORY_BUDGET,
    Product,
    Window,
    close_product,
    on_cluster,
    summary_head,
)
from itscube.products._outputs import map_stats, write_cog, write_netcdf
from itscube.progress import ProgressLike, as_progress, dask_tasks
from itscube.temporal import MIN_MONTHS, seasonal_cycle
from itscube.window import DateLike, Filters

__all__ = ["SEASONAL_MAPS", "run_seasonal"]

SEASONAL_MAPS = (
    "v0",
    "v0_error",
    "v_amp",
    "v_amp_error",
    "v_phase",
    "v_phase_error",
    "vx_amp",
    "vy_amp",
    "fit_flag",
)
"""Variables written as GeoTIFFs (all of them are in ``seasonal.nc``)."""


@on_cluster
def run_seasonal(
    cube: str | os.PathLike,
    *,
    out: str | os.PathLike = ".",
    start: DateLike | None = None,
    end: DateLike | None = None,
    filters: Filters | None = None,
    min_months: int = MIN_MONTHS,
    figures: bool = True,
    overwrite: bool = False,
    progress: ProgressLike = None,
    budget: int = MEMORY_BUDGET,
) -> Product:
    """Mean velocity and seasonal cycle maps of a sub-yearly cube from the span-aware fit
    (:func:`itscube.temporal.seasonal_cycle`): ``seasonal.nc``, ``geotiff/*.tif`` (COG,
    :data:`SEASONAL_MAPS`), ``figures/seasonal.png`` and ``summary.json`` in
    ``OUT/seasonal/<sdate>_<edate>``.

    Raises
    ------
    InputError
        The cube holds annual composites (no image-pair spans), or a bad option.
    OutputExistsError
        The folder exists and ``overwrite`` is false.
    """
    t_start = time.perf_counter()
    check_out_dir(out)
    progress = as_progress(progress)
    window = Window(start, end, filters, "fit")
    ds, tdim, sdate, edate = window.open(cube, 6, budget)
    with dask_tasks(progress, "seasonal fit"):
        res = seasonal_cycle(ds, start=start, end=end, min_months=min_months).compute()
    folder = product_folder(out, "seasonal", None, sdate, edate)
    with staged_folder(folder, overwrite) as tmp:
        files = [
            write_netcdf(
                res,
                tmp / "seasonal.nc",
                f"Mean velocity and seasonal cycle, {sdate}-{edate}",
                source=ds,
            )
        ]
        (tmp / "geotiff").mkdir()
        for name in SEASONAL_MAPS:
            files.append(write_cog(res[name], tmp / "geotiff" / f"{name}.tif"))
        if figures:
            from itscube.products.figures.seasonal import seasonal_figure

            files.append(seasonal_figure(res, tmp / "figures" / "seasonal.png", f"{sdate}-{edate}"))
        flags = res["fit_flag"].values
        summary = {
            **summary_head("seasonal_cycle", cube, ds, sdate, edate),
            "estimator": "fit",
            "layers": int(ds.sizes[tdim]),
            "min_months": int(min_months),
            "pixels": {
                "fitted": int((flags == 0).sum()),
                "no_seasonal_term": int((flags == 1).sum()),
                "too_few_pairs": int((flags == 2).sum()),
            },
            **{name: map_stats(res[name]) for name in ("v0", "v_amp", "v_phase", "chi2")},
            "units": {"velocity": "m yr-1", "phase": "day of year of the maximum"},
        }
        return close_product(folder, tmp, files, summary, t_start)
