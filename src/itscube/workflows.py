"""Product runs behind the CLI: open a cube, compute, write folders of files and figures."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import xarray as xr

from . import __version__
from .cube import open_cube, time_dim
from .errors import InputError
from .outputs import (
    dask_progress,
    date_label,
    map_stats,
    product_folder,
    staged_folder,
    write_cog,
    write_json,
    write_netcdf,
    write_stack,
)
from .strain import COMPONENTS, ERROR_COMPONENTS, strain_rates
from .temporal import Filters, period_mean, select_layers

MEMORY_BUDGET = 256 * 1024**2
"""Target bytes of one dask chunk's inputs and outputs in streamed per-step products."""

COG_COMPONENTS = (
    "exx",
    "eyy",
    "exy",
    "rotation",
    "dilatation",
    "effective",
    "e1",
    "e2",
    "e1_angle",
    "longitudinal",
    "transverse",
    "shear",
)


@dataclasses.dataclass
class Product:
    """One output folder and what is in it."""

    folder: Path
    files: list[Path]
    summary: dict


@contextlib.contextmanager
def dask_client(address: str | None) -> Iterator[object | None]:
    """Connect to a dask.distributed scheduler (``address`` or ``DASK_SCHEDULER_ADDRESS``)."""
    address = address or os.environ.get("DASK_SCHEDULER_ADDRESS")
    if not address:
        yield None
        return
    try:
        from distributed import Client
    except ImportError as exc:  # pragma: no cover - distributed is a dependency
        raise InputError("--scheduler needs the 'distributed' package") from exc
    try:
        client = Client(address, timeout="10s")
    except (OSError, TimeoutError) as exc:
        raise InputError(f"--scheduler {address}: cannot connect ({exc})") from exc
    with client:
        yield client


def time_chunk(ny: int, nx: int, n_arrays: int, budget: int = MEMORY_BUDGET) -> int:
    """Layers per dask chunk so that ``n_arrays`` float32 maps of a chunk fit ``budget``."""
    return max(1, budget // max(1, ny * nx * 4 * n_arrays))


def open_window(
    cube, start, end, filters: Filters | None, n_arrays: int, budget: int = MEMORY_BUDGET
) -> xr.Dataset:
    """Open a cube lazily, chunked for streaming, restricted to the dates and filters."""
    ds = open_cube(cube)
    ds = select_layers(ds, start, end, filters)
    tdim = time_dim(ds)
    n = time_chunk(ds.sizes["y"], ds.sizes["x"], n_arrays, budget)
    return ds.chunk({tdim: n, "y": -1, "x": -1})


def run_strain(
    cube: str | os.PathLike,
    *,
    upscales: Sequence[int] = (1,),
    out: str | os.PathLike = ".",
    start=None,
    end=None,
    method: str = "gradient",
    period: str = "all",
    per_step: bool = False,
    filters: Filters | None = None,
    fill_gaps: float | None = None,
    strided: bool = False,
    figures: bool = True,
    overwrite: bool = False,
    progress: bool = True,
    console=None,
    budget: int = MEMORY_BUDGET,
) -> list[Product]:
    """Strain products of a cube, one folder per upscale: ``OUT/strain/<k>_<sdate>_<edate>``.

    Each folder holds ``strain_period.nc`` (all components and errors per period, with the
    period-mean velocities), ``geotiff/<component>.tif`` (COG, one band per period),
    ``figures/*.png`` (unless ``figures`` is false), ``strain_steps.nc`` (or ``.zarr``
    when large; with ``per_step``) and ``summary.json``. Per-step strain streams through
    dask in chunks of about ``budget`` bytes.
    """
    if not upscales:
        raise InputError("give at least one --upscale")
    t_start = time.perf_counter()
    n_arrays = 4 + len(COMPONENTS) + len(ERROR_COMPONENTS)
    ds = open_window(cube, start, end, filters, n_arrays, budget)
    tdim = time_dim(ds)
    times = ds[tdim].values
    sdate = date_label(start, times.min())
    edate = date_label(end, times.max())
    for k in upscales:  # validate every upscale before any work
        strain_rates(ds.isel({tdim: slice(0, 1)}), k, method, strided=strided, errors=False)
    with dask_progress(console, "period means", progress):
        means = period_mean(ds, period, start=start, end=end).compute()
    products = []
    for k in upscales:
        folder = product_folder(out, "strain", k, sdate, edate)
        with staged_folder(folder, overwrite) as tmp:
            files = []
            res = strain_rates(means, k, method, fill_gaps=fill_gaps, strided=strided)
            files.append(
                write_netcdf(
                    res,
                    tmp / "strain_period.nc",
                    f"Surface strain rates, upscale {k}, {sdate}-{edate}",
                )
            )
            labels = [str(p) for p in res["period"].values] if "period" in res else None
            (tmp / "geotiff").mkdir()
            for name in COG_COMPONENTS:
                files.append(write_cog(res[name], tmp / "geotiff" / f"{name}.tif", "time", labels))
            if figures:
                from .plots import strain_figures

                for i, lab in enumerate(labels or ["all"]):
                    files += strain_figures(res.isel(time=i), tmp / "figures", lab)
            steps_file = None
            if per_step:
                steps = strain_rates(ds, k, method, fill_gaps=fill_gaps, strided=strided)
                with dask_progress(console, f"per-step strain, upscale {k}", progress):
                    steps_file = write_stack(
                        steps, tmp / "strain_steps", f"Per-layer surface strain rates, upscale {k}"
                    )
                files.append(steps_file)
            summary = {
                "product": "strain_rates",
                "itscube_version": __version__,
                "cube": str(cube),
                "kind": ds.attrs.get("itscube_kind"),
                "crs": str(ds.rio.crs),
                "window": {"start": sdate, "end": edate},
                "layers": int(ds.sizes[tdim]),
                "filters": dataclasses.asdict(filters or Filters()),
                "method": method,
                "upscale_px": int(k),
                "length_scale_m": float(res.attrs["length_scale_m"]),
                "strided": strided,
                "fill_gaps_radius_px": fill_gaps,
                "period": period,
                "periods": [
                    {
                        "label": lab,
                        **{
                            name: map_stats(res[name].isel(time=i))
                            for name in (
                                "effective",
                                "longitudinal",
                                "transverse",
                                "shear",
                                "dilatation",
                                "e1",
                                "e2",
                            )
                        },
                    }
                    for i, lab in enumerate(labels or ["all"])
                ],
                "per_step_file": None if steps_file is None else steps_file.name,
                "units": {"strain rates": "yr-1", "e1_angle": "degree", "velocity": "m yr-1"},
                "seconds": round(time.perf_counter() - t_start, 2),
            }
            write_json(summary, tmp / "summary.json")
            files.append(tmp / "summary.json")
        products.append(Product(folder, [folder / f.relative_to(tmp) for f in files], summary))
    return products
