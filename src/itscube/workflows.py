"""Product runs behind the CLI: open a cube, compute, write folders of files and figures."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import xarray as xr

from ._version import __version__
from .cube import open_cube, time_dim
from .errors import InputError
from .outputs import (
    check_out_dir,
    dask_progress,
    date_label,
    map_stats,
    product_folder,
    source_of,
    staged_folder,
    step_progress,
    write_cog,
    write_json,
    write_netcdf,
    write_stack,
)
from .strain import COMPONENTS, ERROR_COMPONENTS, strain_rates
from .temporal import Filters, period_mean, select_layers

MEMORY_BUDGET = 256 * 1024**2
"""Target bytes of one dask chunk's inputs and outputs in streamed per-step products."""


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


def _window(cube, start, end, filters, n_arrays, budget) -> tuple[xr.Dataset, str, str, str]:
    """The streamed window of a cube, its time dim and its date labels (as asked, else as
    found in the cube)."""
    ds = open_window(cube, start, end, filters, n_arrays, budget)
    tdim = time_dim(ds)
    times = ds[tdim].values
    return ds, tdim, date_label(start, times.min()), date_label(end, times.max())


def _period_means(ds, period, start, end, console, progress) -> xr.Dataset:
    with dask_progress(console, "period means", progress):
        return period_mean(ds, period, start=start, end=end).compute()


def _summary_head(product: str, cube, ds: xr.Dataset, sdate: str, edate: str) -> dict:
    """The keys every product's ``summary.json`` starts with."""
    return {
        "product": product,
        "itscube_version": __version__,
        "cube": str(cube),
        "source_data": source_of(ds),
        "crs": str(ds.rio.crs),
        "window": {"start": sdate, "end": edate},
    }


def _close_product(
    folder: Path, tmp: Path, files: list[Path], summary: dict, t_start: float
) -> Product:
    """Write ``summary.json`` (with the ``seconds`` since ``t_start``) into the staged folder
    ``tmp``; the product as it will be once ``tmp`` is renamed to ``folder``."""
    summary["seconds"] = round(time.perf_counter() - t_start, 2)
    files.append(write_json(summary, tmp / "summary.json"))
    return Product(folder, [folder / f.relative_to(tmp) for f in files], summary)


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
    min_speed: float = 5.0,
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
    check_out_dir(out)
    n_arrays = 4 + len(COMPONENTS) + len(ERROR_COMPONENTS)
    ds, tdim, sdate, edate = _window(cube, start, end, filters, n_arrays, budget)
    for k in upscales:  # validate every upscale before any work
        strain_rates(
            ds.isel({tdim: slice(0, 1)}),
            k,
            method,
            strided=strided,
            errors=False,
            min_speed=min_speed,
        )
    means = _period_means(ds, period, start, end, console, progress)
    products = []
    for k in upscales:
        folder = product_folder(out, "strain", k, sdate, edate)
        with staged_folder(folder, overwrite) as tmp:
            files = []
            res = strain_rates(
                means, k, method, fill_gaps=fill_gaps, strided=strided, min_speed=min_speed
            )
            files.append(
                write_netcdf(
                    res.assign_attrs(itscube_source=source_of(ds)),
                    tmp / "strain_period.nc",
                    f"Surface strain rates, upscale {k}, {sdate}-{edate}",
                )
            )
            labels = [str(p) for p in res["period"].values] if "period" in res else None
            (tmp / "geotiff").mkdir()
            for name in COMPONENTS:
                files.append(write_cog(res[name], tmp / "geotiff" / f"{name}.tif", "time", labels))
            if figures:
                from .plots import strain_figures

                bar, advance = step_progress(
                    console, f"figures, upscale {k}", len(labels or ["all"]), progress
                )
                with bar:
                    for i, lab in enumerate(labels or ["all"]):
                        files += strain_figures(res.isel(time=i), tmp / "figures", lab)
                        advance()
            steps_file = None
            if per_step:
                steps = strain_rates(
                    ds, k, method, fill_gaps=fill_gaps, strided=strided, min_speed=min_speed
                )
                with dask_progress(console, f"per-step strain, upscale {k}", progress):
                    steps_file = write_stack(
                        steps, tmp / "strain_steps", f"Per-layer surface strain rates, upscale {k}"
                    )
                files.append(steps_file)
            summary = {
                **_summary_head("strain_rates", cube, ds, sdate, edate),
                "kind": ds.attrs.get("itscube_kind"),
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
                        "layers": int(means["layers"][i]) if "layers" in means else None,
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
            }
            product = _close_product(folder, tmp, files, summary, t_start)
        products.append(product)
    return products


def run_qdiv(
    cube: str | os.PathLike,
    *,
    thickness: str | os.PathLike,
    boundary: str | os.PathLike,
    upscales: Sequence[int] = (1,),
    out: str | os.PathLike = ".",
    start=None,
    end=None,
    period: str = "all",
    per_step: bool = False,
    column_factor: float = 1.0,
    scheme: str = "centred",
    thickness_error: str | os.PathLike | None = None,
    thickness_crs: str | None = None,
    boundary_crs: str | None = None,
    filters: Filters | None = None,
    allow_partial: bool = False,
    figures: bool = True,
    overwrite: bool = False,
    progress: bool = True,
    console=None,
    budget: int = MEMORY_BUDGET,
) -> list[Product]:
    """Flux-divergence products, one folder per upscale: ``OUT/qdiv/<k>_<sdate>_<edate>``.

    Each folder holds ``qdiv_period.nc``, ``geotiff/*.tif`` (COG), ``fluxes.csv`` (per
    period: integrated divergence, boundary face flux, line-integral boundary flux, their
    differences, Gt/yr, uncertainties), ``flux_timeseries.csv`` (with ``per_step``),
    ``figures/*.png`` and ``summary.json``.
    """
    import csv

    from .flux import (
        RHO_ICE,
        boundary_flux,
        flux_divergence,
        read_boundary,
        read_thickness,
        to_gt,
    )

    t_start = time.perf_counter()
    check_out_dir(out)
    ds, tdim, sdate, edate = _window(cube, start, end, filters, 8, budget)
    H = read_thickness(thickness, ds, thickness_crs)
    sH = (
        read_thickness(thickness_error, ds, thickness_crs, what="--thickness-error")
        if thickness_error is not None
        else None
    )
    poly = read_boundary(boundary, ds, boundary_crs)
    means = _period_means(ds, period, start, end, console, progress)
    products = []
    for k in upscales:
        res = flux_divergence(
            means,
            H,
            poly,
            upscale=k,
            column_factor=column_factor,
            scheme=scheme,
            thickness_error=sH,
            allow_partial=allow_partial,
        )
        line = boundary_flux(res, poly)
        folder = product_folder(out, "qdiv", k, sdate, edate)
        with staged_folder(folder, overwrite) as tmp:
            files = [
                write_netcdf(
                    res.assign(line_integral_flux=line).assign_attrs(itscube_source=source_of(ds)),
                    tmp / "qdiv_period.nc",
                    f"Ice flux divergence, upscale {k}, {sdate}-{edate}",
                )
            ]
            labels = [str(p) for p in means["period"].values]
            (tmp / "geotiff").mkdir()
            for name in (
                "flux_divergence",
                "dynamic_dhdt",
                "flux_divergence_error",
                "flux_x",
                "flux_y",
            ):
                if name in res:
                    files.append(
                        write_cog(res[name], tmp / "geotiff" / f"{name}.tif", "time", labels)
                    )
            files.append(write_cog(res["thickness"], tmp / "geotiff" / "thickness.tif"))
            rows = []
            for i, lab in enumerate(labels):
                r = res.isel(time=i)
                integ = float(r["integrated_divergence"])
                coverage = float(r["coverage"])
                # the line integral runs along the whole polygon: not comparable when partial
                lin = float(line.isel(time=i)) if coverage >= 0.999 else float("nan")
                err = r.get("flux_divergence_error")
                cell = float(abs((r.x[1] - r.x[0]) * (r.y[1] - r.y[0])))
                inside = r["mask"].values.astype(bool)
                row = {
                    "period": lab,
                    "layers": int(means["layers"][i]),
                    "area_m2": float(r["area"]),
                    "integrated_divergence_m3_yr": integ,
                    "face_flux_m3_yr": float(r["face_flux"]),
                    "gauss_residual_m3_yr": float(r["gauss_residual"]),
                    "line_integral_flux_m3_yr": lin,
                    "line_minus_integrated_m3_yr": lin - integ,
                    "relative_difference": (lin - integ) / abs(integ) if integ else float("nan"),
                    "integrated_divergence_gt_yr": float(to_gt(integ)),
                    "mean_dynamic_dhdt_m_yr": -integ / float(r["area"]),
                    "coverage": coverage,
                }
                if err is not None:
                    e = err.values[inside]
                    row["error_independent_m3_yr"] = float(np.sqrt(np.nansum(e**2)) * cell)
                    row["error_correlated_m3_yr"] = float(np.nansum(e) * cell)
                    # headline uncertainty: the correlated sum, an upper bound
                    sig = row["error_correlated_m3_yr"]
                    row["integrated_divergence_error_gt_yr"] = float(to_gt(sig))
                    row["integrated_divergence_low_gt_yr"] = float(to_gt(integ - sig))
                    row["integrated_divergence_high_gt_yr"] = float(to_gt(integ + sig))
                rows.append(row)
            with open(tmp / "fluxes.csv", "w", newline="") as f:
                w = csv.DictWriter(f, fieldnames=list(rows[0]))
                w.writeheader()
                w.writerows(rows)
            files.append(tmp / "fluxes.csv")
            if per_step:
                series = []
                n = ds.chunks[tdim][0] if ds.chunks else ds.sizes[tdim]
                bar, advance = step_progress(
                    console, f"per-step flux, upscale {k}", ds.sizes[tdim], progress
                )
                bar.start()
                for i0 in range(0, ds.sizes[tdim], n):
                    part = ds.isel({tdim: slice(i0, i0 + n)})[["vx", "vy"]].load()
                    # single image pairs have cloud gaps: each step is integrated over its
                    # covered cells and flagged with its coverage
                    rp = flux_divergence(
                        part,
                        H,
                        poly,
                        upscale=k,
                        column_factor=column_factor,
                        scheme=scheme,
                        allow_partial=True,
                    )
                    lp = boundary_flux(rp, poly)
                    for j, t in enumerate(part[tdim].values):
                        cov = float(rp["coverage"][j])
                        series.append(
                            (
                                str(t)[:19],
                                float(rp["integrated_divergence"][j]),
                                float(rp["face_flux"][j]),
                                float(lp[j]) if cov >= 0.999 else "",
                                round(cov, 4),
                            )
                        )
                    advance(part.sizes[tdim])
                bar.stop()
                with open(tmp / "flux_timeseries.csv", "w", newline="") as f:
                    w = csv.writer(f)
                    w.writerow(
                        [
                            tdim,
                            "integrated_divergence_m3_yr",
                            "face_flux_m3_yr",
                            "line_integral_flux_m3_yr",
                            "coverage",
                        ]
                    )
                    w.writerows(series)
                files.append(tmp / "flux_timeseries.csv")
            if figures:
                from .plots import dhdt_limit, qdiv_figure

                lim = dhdt_limit(res)  # one colour scale for every period of the run
                bar, advance = step_progress(console, "figures", len(labels), progress)
                with bar:
                    for i, lab in enumerate(labels):
                        files.append(qdiv_figure(res.isel(time=i), poly, tmp / "figures", lab, lim))
                        advance()
            summary = {
                **_summary_head("flux_divergence", cube, ds, sdate, edate),
                "thickness": str(thickness),
                "thickness_error": None if thickness_error is None else str(thickness_error),
                "boundary": str(boundary),
                "layers": int(ds.sizes[tdim]),
                "period": period,
                "upscale_px": int(k),
                "column_factor": column_factor,
                "scheme": scheme,
                "allow_partial": allow_partial,
                "rho_ice_kg_m3": RHO_ICE,
                "periods": rows,
                "units": {"flux": "m2 yr-1", "divergence": "m yr-1", "volume": "m3 yr-1"},
            }
            product = _close_product(folder, tmp, files, summary, t_start)
        products.append(product)
    return products


def run_track(
    cube: str | os.PathLike,
    *,
    seeds=None,
    grid_step: int | None = None,
    start=None,
    end=None,
    out: str | os.PathLike = ".",
    dt_days: float = 5.0,
    method: str = "rk4",
    backward: bool = False,
    composite: str = "year",
    steady: bool = False,
    ensemble: int = 0,
    seeds_crs: str | None = None,
    fill_radius: float = 3.0,
    filters: Filters | None = None,
    extrapolate: bool = False,
    figures: bool = True,
    overwrite: bool = False,
) -> Product:
    """Tracks into ``OUT/track/<sdate>_<edate>``: ``tracks.gpkg`` (layers ``tracks`` lines
    and ``points``), ``tracks.csv``, ``tracks.nc``, ``displacement_*.tif`` (with
    ``grid_step``), ``figures/*.png`` and ``summary.json``. With ``grid_step`` and no
    ``seeds`` the grid points are the tracked points; with both, the seeds are tracked and
    the grid gives the displacement maps."""
    import geopandas as gpd
    import shapely.geometry as sg

    from .track import STATUS, displacement_field, ensemble_spread, track

    if start is None or end is None:
        raise InputError("give both --start and --end")
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
        fill_radius=fill_radius,
        extrapolate=extrapolate,
    )
    field = None
    if grid_step is not None:
        field = displacement_field(ds, start, end, step=grid_step, **kw)
        if seeds is None:
            X, Y = np.meshgrid(field.x.values, field.y.values)
            seeds, seeds_crs = np.column_stack([X.ravel(), Y.ravel()]), None
    if seeds is None:
        raise InputError("give seeds: --seeds FILE, --point X Y, --line X0 Y0 X1 Y1 N or --grid")
    res = track(ds, seeds, start, end, seeds_crs=seeds_crs, **kw)
    if ensemble:
        res = res.merge(ensemble_spread(ds, seeds, start, end, ensemble, seeds_crs=seeds_crs, **kw))
    sdate, edate = date_label(start), date_label(end)
    folder = product_folder(out, "track", None, sdate, edate)
    crs = ds.rio.crs
    with staged_folder(folder, overwrite) as tmp:
        files = [
            write_netcdf(
                res.assign_attrs(itscube_source=source_of(ds)),
                tmp / "tracks.nc",
                f"Tracked points {sdate}-{edate}",
            )
        ]
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
        files.append(tmp / "tracks.csv")
        lines = []
        for p in range(res.sizes["point"]):
            xs, ys = res.x.values[p], res.y.values[p]
            ok = np.isfinite(xs)
            geom = sg.LineString(np.column_stack([xs[ok], ys[ok]])) if ok.sum() > 1 else None
            row = {
                "point": p,
                "id": str(res.id.values[p]),
                "status": str(res.status.values[p]),
                "displacement_m": float(res.displacement[p]),
                "geometry": geom,
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
        files.append(gpkg)
        if field is not None:
            names = {
                "dx": "displacement_x",
                "dy": "displacement_y",
                "displacement": "displacement",
                "status_code": "displacement_status",
            }
            for name, stem in names.items():
                files.append(write_cog(field[name], tmp / f"{stem}.tif"))
        if figures:
            from .plots import displacement_figure, tracks_figure

            speed = period_mean(
                ds.sel(
                    {
                        time_dim(ds): slice(
                            *sorted((np.datetime64(str(start)), np.datetime64(str(end))))
                        )
                    }
                ),
                "all",
            ).isel(time=0)
            files.append(tracks_figure(res, speed, tmp / "figures" / "tracks.png"))
            if field is not None:
                files.append(
                    displacement_figure(
                        field, tmp / "figures" / "displacement.png", f"{start} to {end}"
                    )
                )
        counts = {s: int((res.status.values == s).sum()) for s in STATUS}
        summary = {
            **_summary_head("tracks", cube, ds, sdate, edate),
            "direction": "backward" if backward else "forward",
            "method": method,
            "dt_days": dt_days,
            "composite": "steady" if steady else composite,
            "points": int(res.sizes["point"]),
            "status": counts,
            "points_with_gap_fallback": int((res.filled.values > 0).any(axis=1).sum()),
            "median_displacement_m": float(np.nanmedian(res.displacement.values)),
            "ensemble_members": ensemble,
            "median_spread_m": float(np.nanmedian(res.spread.values)) if ensemble else None,
        }
        product = _close_product(folder, tmp, files, summary, t_start)
    return product
