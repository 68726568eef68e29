"""Flux-divergence products: ``OUT/qdiv/<upscale>_<sdate>_<edate>/``."""

from __future__ import annotations

import csv
import dataclasses
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import shapely
import shapely.geometry as sg
import xarray as xr

from itscube._compat import renamed_params
from itscube._typing import CRSLike, Estimator, Scheme
from itscube.flux import (
    RHO_ICE,
    boundary_flux,
    flux_budget,
    flux_divergence,
    read_boundary,
    read_thickness,
)
from itscube.grid import half_cell
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
from itscube.products._outputs import write_cog, write_netcdf
from itscube.progress import Progress, ProgressLike, as_progress, dask_tasks
from itscube.temporal import ErrorModel, covering_layers
from itscube.window import DateLike, Filters

__all__ = ["MAPS", "flux_series", "run_qdiv"]

MAPS = ("flux_divergence", "dynamic_dhdt", "flux_divergence_error", "flux_x", "flux_y")
"""Maps written as COG GeoTIFFs (one band per period)."""


@on_cluster
@renamed_params(upscales="upscale")
def run_qdiv(
    cube: str | os.PathLike,
    *,
    thickness: str | os.PathLike,
    boundary: str | os.PathLike,
    upscale: int | Sequence[int] = (1,),
    out: str | os.PathLike = ".",
    start: DateLike | None = None,
    end: DateLike | None = None,
    period: str = "all",
    estimator: Estimator = "auto",
    per_step: bool = False,
    column_factor: float = 1.0,
    scheme: Scheme = "centred",
    thickness_error: str | os.PathLike | None = None,
    thickness_crs: CRSLike | None = None,
    boundary_crs: CRSLike | None = None,
    filters: Filters | None = None,
    allow_partial: bool = False,
    common_layers: bool = False,
    error_model: ErrorModel | None = None,
    figures: bool = True,
    background: str | os.PathLike | None = None,
    background_stac: str | None = None,
    overwrite: bool = False,
    progress: ProgressLike = None,
    budget: int = MEMORY_BUDGET,
) -> list[Product]:
    """Flux-divergence products, one folder per upscale: ``OUT/qdiv/<k>_<sdate>_<edate>``.

    Each folder holds ``qdiv_period.nc``, ``geotiff/*.tif`` (COG), ``fluxes.csv`` (the
    budget of :func:`itscube.flux.flux_budget` per period, with its layer count),
    ``flux_timeseries.csv`` (with ``per_step``: one row per layer, streamed through dask
    in bounded memory), ``figures/*.png`` and ``summary.json``. The options are those of
    :func:`itscube.flux_divergence`. With ``common_layers`` the period means average only
    the image pairs with velocities over the whole boundary and the cells around it
    (:func:`itscube.temporal.covering_layers`), so every cell sees the same pairs and
    cloud-gap edges leave no stripes in the maps.

    Raises
    ------
    InputError
        Bad inputs or options; a boundary partly without data (unless ``allow_partial``).
    OutputExistsError
        A folder exists and ``overwrite`` is false.
    """
    upscales = as_upscales(upscale)
    t_start = time.perf_counter()
    check_out_dir(out)
    progress = as_progress(progress)
    window = Window(start, end, filters, estimator)
    ds, tdim, sdate, edate = window.open(cube, 8, budget)
    H = read_thickness(thickness, ds, thickness_crs)
    sH = None
    if thickness_error is not None:
        sH = read_thickness(thickness_error, ds, thickness_crs, what="thickness_error")
    poly = read_boundary(boundary, ds, boundary_crs)
    if common_layers:
        ds = _covering(ds, poly, max(upscales))
    means = period_means(ds, period, window, progress)
    first = ds[tdim].values.min()
    image = load_background(background, ds, first, stac=background_stac) if figures else None
    options: dict[str, Any] = dict(column_factor=column_factor, scheme=scheme)
    products = []
    for k in upscales:
        res = flux_divergence(
            means,
            H,
            poly,
            upscale=k,
            thickness_error=sH,
            allow_partial=allow_partial,
            error_model=error_model,
            **options,
        )
        line = boundary_flux(res, poly)
        labels = [str(p) for p in means["period"].values]
        rows = [
            {"period": r.pop("period"), "layers": int(means["layers"][i]), **r}
            for i, r in enumerate(flux_budget(res, line, labels))
        ]
        folder = product_folder(out, "qdiv", k, sdate, edate)
        with staged_folder(folder, overwrite) as tmp:
            files = _write_period_files(res, line, ds, tmp, k, sdate, edate, labels)
            files.append(_write_csv(tmp / "fluxes.csv", rows))
            if per_step:
                with dask_tasks(progress, f"per-step flux, upscale {k}"):
                    series = flux_series(ds, H, poly, upscale=k, **options).compute()
                files.append(_write_csv(tmp / "flux_timeseries.csv", _series_rows(series, tdim)))
            if figures:
                files += _figures(res, poly, tmp, labels, progress, image)
            summary = {
                **summary_head("flux_divergence", cube, ds, sdate, edate, means),
                "thickness": str(thickness),
                "thickness_error": None if thickness_error is None else str(thickness_error),
                "boundary": str(boundary),
                "layers": int(ds.sizes[tdim]),
                "period": period,
                "upscale_px": int(k),
                "column_factor": column_factor,
                "scheme": scheme,
                "allow_partial": allow_partial,
                "error_model": dataclasses.asdict(error_model or ErrorModel()),
                "common_layers": common_layers,
                "background": background_label(image, background),
                "rho_ice_kg_m3": RHO_ICE,
                "periods": rows,
                "units": {"flux": "m2 yr-1", "divergence": "m yr-1", "volume": "m3 yr-1"},
            }
            products.append(close_product(folder, tmp, files, summary, t_start))
    return products


def _covering(ds: xr.Dataset, poly: sg.Polygon, k: int) -> xr.Dataset:
    """The layers with data over the boundary and the ``k + 1`` cells around it (the
    stencil of the divergence at upscale ``k``)."""
    margin = (k + 1) * 2 * half_cell(ds.x.values)
    X, Y = np.meshgrid(ds.x.values, ds.y.values)
    return covering_layers(ds, shapely.contains_xy(poly.buffer(margin), X, Y))


def flux_series(
    ds: xr.Dataset, thickness: xr.DataArray, boundary: sg.Polygon, **options
) -> xr.Dataset:
    """Per-layer flux budget of a (dask-backed) cube, lazily: ``integrated_divergence``,
    ``face_flux``, ``line_integral_flux`` (m^3/yr) and ``coverage`` along time.

    Single image pairs have cloud gaps, so each layer is integrated over its own covered
    cells and flagged with its coverage; the line integral, which runs along the whole
    polygon, is NaN where coverage is partial. Computing the result streams the layers
    through dask one time chunk at a time.
    """
    res = flux_divergence(ds[["vx", "vy"]], thickness, boundary, allow_partial=True, **options)
    line = boundary_flux(res, boundary)
    full = res["coverage"] >= 0.999
    return xr.Dataset(
        {
            "integrated_divergence": res["integrated_divergence"],
            "face_flux": res["face_flux"],
            "line_integral_flux": line.where(full),
            "coverage": res["coverage"],
        }
    )


def _series_rows(series: xr.Dataset, tdim: str) -> list[dict]:
    rows = []
    for i, t in enumerate(series[tdim].values):
        line = float(series["line_integral_flux"][i])
        rows.append(
            {
                tdim: str(t)[:19],
                "integrated_divergence_m3_yr": float(series["integrated_divergence"][i]),
                "face_flux_m3_yr": float(series["face_flux"][i]),
                "line_integral_flux_m3_yr": "" if line != line else line,
                "coverage": round(float(series["coverage"][i]), 4),
            }
        )
    return rows


def _write_csv(path: Path, rows: list[dict]) -> Path:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


def _write_period_files(res, line, ds, tmp: Path, k, sdate, edate, labels) -> list[Path]:
    files = [
        write_netcdf(
            res.assign(line_integral_flux=line),
            tmp / "qdiv_period.nc",
            f"Ice flux divergence, upscale {k}, {sdate}-{edate}",
            source=ds,
        )
    ]
    (tmp / "geotiff").mkdir()
    for name in MAPS:
        if name in res:
            files.append(write_cog(res[name], tmp / "geotiff" / f"{name}.tif", "time", labels))
    files.append(write_cog(res["thickness"], tmp / "geotiff" / "thickness.tif"))
    return files


def _figures(res, poly, tmp: Path, labels: list[str], progress: Progress, image) -> list[Path]:
    from itscube.products.figures.flux import dhdt_limit, qdiv_figure

    lim = dhdt_limit(res)  # one colour scale for every period of the run
    files = []
    with progress.task("figures", len(labels)) as advance:
        for i, lab in enumerate(labels):
            files.append(qdiv_figure(res.isel(time=i), poly, tmp / "figures", lab, lim, image))
            advance()
    return files
