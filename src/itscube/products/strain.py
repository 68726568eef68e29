"""Strain-rate products: ``OUT/strain/<upscale>_<sdate>_<edate>/``."""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import xarray as xr

from itscube._compat import renamed_params
from itscube._typing import Estimator, StrainMethod
from itscube.io.files import check_out_dir, product_folder, staged_folder
from itscube.products._common import (
    MEMORY_BUDGET,
    Product,
    Window,
    as_upscales,
    background_label,
    close_product,
    load_background,
    on_cluster,
    period_means,
    summary_head,
)
from itscube.products._outputs import map_stats, write_cog, write_netcdf, write_stack
from itscube.progress import Progress, ProgressLike, as_progress, dask_tasks
from itscube.strain import COMPONENTS, ERROR_COMPONENTS, MIN_SPEED, strain_rates
from itscube.temporal import ErrorModel
from itscube.window import DateLike, Filters

__all__ = ["SUMMARY_COMPONENTS", "run_strain"]

SUMMARY_COMPONENTS = (
    "effective",
    "longitudinal",
    "transverse",
    "shear",
    "dilatation",
    "e1",
    "e2",
)
"""Components summarised (median, percentiles) per period in ``summary.json``."""


@on_cluster
@renamed_params(upscales="upscale")
def run_strain(
    cube: str | os.PathLike,
    *,
    upscale: int | Sequence[int] = (1,),
    out: str | os.PathLike = ".",
    start: DateLike | None = None,
    end: DateLike | None = None,
    method: StrainMethod = "gradient",
    period: str = "all",
    estimator: Estimator = "auto",
    per_step: bool = False,
    filters: Filters | None = None,
    gap_radius: float | None = None,
    strided: bool = False,
    min_speed: float = MIN_SPEED,
    error_model: ErrorModel | None = None,
    figures: bool = True,
    background: str | os.PathLike | None = None,
    background_stac: str | None = None,
    overwrite: bool = False,
    progress: ProgressLike = None,
    budget: int = MEMORY_BUDGET,
) -> list[Product]:
    """Strain products of a cube, one folder per upscale: ``OUT/strain/<k>_<sdate>_<edate>``.

    Each folder holds ``strain_period.nc`` (all components and errors per period, with the
    period-mean velocities), ``geotiff/<component>.tif`` (COG, one band per period),
    ``figures/*.png`` (unless ``figures`` is false), ``strain_steps.nc`` (or ``.zarr``
    when large; with ``per_step``) and ``summary.json``. Per-step strain streams through
    dask in chunks of about ``budget`` bytes. The options are those of
    :func:`itscube.strain_rates` and :func:`itscube.period_mean`; ``background`` (``"auto"``
    or an RGB GeoTIFF) puts an image under the maps (:func:`load_background`).

    Raises
    ------
    InputError
        No upscale, a bad option, or an unusable ``out``.
    OutputExistsError
        A folder exists and ``overwrite`` is false.
    """
    upscales = as_upscales(upscale)
    t_start = time.perf_counter()
    check_out_dir(out)
    progress = as_progress(progress)
    window = Window(start, end, filters, estimator)
    n_arrays = 4 + len(COMPONENTS) + len(ERROR_COMPONENTS)
    ds, tdim, sdate, edate = window.open(cube, n_arrays, budget, tiles=True)
    options: dict[str, Any] = dict(method=method, strided=strided, min_speed=min_speed)
    model: dict[str, Any] = dict(error_model=error_model)
    for k in upscales:  # validate every upscale before any work
        strain_rates(ds.isel({tdim: slice(0, 1)}), k, errors=False, **options)
    means = period_means(ds, period, window, progress)
    first = ds[tdim].values.min()
    image = load_background(background, ds, first, stac=background_stac) if figures else None
    products = []
    for k in upscales:
        folder = product_folder(out, "strain", k, sdate, edate)
        with staged_folder(folder, overwrite) as tmp:
            res = strain_rates(means, k, gap_radius=gap_radius, **options, **model)
            files = _write_period_files(res, ds, tmp, k, sdate, edate)
            if figures:
                files += _figures(res, tmp, k, progress, image)
            steps_file = None
            if per_step:
                steps = strain_rates(ds, k, gap_radius=gap_radius, **options, **model)
                with dask_tasks(progress, f"per-step strain, upscale {k}"):
                    steps_file = write_stack(
                        steps, tmp / "strain_steps", f"Per-layer surface strain rates, upscale {k}"
                    )
                files.append(steps_file)
            summary = {
                **summary_head("strain_rates", cube, ds, sdate, edate, means),
                "kind": ds.attrs.get("itscube_kind"),
                "layers": int(ds.sizes[tdim]),
                "filters": dataclasses.asdict(filters or Filters()),
                "method": method,
                "upscale_px": int(k),
                "length_scale_m": float(res.attrs["itscube_length_scale_m"]),
                "strided": strided,
                "gap_radius_px": gap_radius or 0,
                "min_speed_m_yr": min_speed,
                "error_model": dataclasses.asdict(error_model or ErrorModel()),
                "background": background_label(image, background),
                "period": period,
                "periods": _period_stats(res, means),
                "per_step_file": None if steps_file is None else steps_file.name,
                "units": {"strain rates": "yr-1", "e1_angle": "degree", "velocity": "m yr-1"},
            }
            products.append(close_product(folder, tmp, files, summary, t_start))
    return products


def _labels(res: xr.Dataset) -> list[str]:
    return [str(p) for p in res["period"].values] if "period" in res else ["all"]


def _write_period_files(
    res: xr.Dataset, ds: xr.Dataset, tmp: Path, k: int, sdate: str, edate: str
) -> list[Path]:
    files = [
        write_netcdf(
            res,
            tmp / "strain_period.nc",
            f"Surface strain rates, upscale {k}, {sdate}-{edate}",
            source=ds,
        )
    ]
    labels = _labels(res) if "period" in res else None
    (tmp / "geotiff").mkdir()
    for name in COMPONENTS:
        files.append(write_cog(res[name], tmp / "geotiff" / f"{name}.tif", "time", labels))
    return files


def _figures(res: xr.Dataset, tmp: Path, k: int, progress: Progress, image=None) -> list[Path]:
    from itscube.products.figures.strain import strain_figures

    files: list[Path] = []
    labels = _labels(res)
    with progress.task(f"figures, upscale {k}", len(labels)) as advance:
        for i, lab in enumerate(labels):
            files += strain_figures(res.isel(time=i), tmp / "figures", lab, image)
            advance()
    return files


def _period_stats(res: xr.Dataset, means: xr.Dataset) -> list[dict]:
    return [
        {
            "label": lab,
            "layers": int(means["layers"][i]) if "layers" in means else None,
            **{name: map_stats(res[name].isel(time=i)) for name in SUMMARY_COMPONENTS},
        }
        for i, lab in enumerate(_labels(res))
    ]
