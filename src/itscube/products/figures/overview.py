"""The demo's one-page overview figure."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import xarray as xr

from itscube.products.figures.common import (
    MOVING_M_YR,
    _last_valid,
    annual_steps,
    draw_background,
    map_panel,
    save,
)
from itscube.products.figures.flux import boundary_line, dhdt_panel

__all__ = [
    "overview_figure",
]


def overview_figure(
    strain: xr.Dataset,
    qdiv: xr.Dataset,
    tracks: xr.Dataset,
    subyearly: xr.Dataset,
    annual: xr.Dataset | None,
    boundary,
    point: tuple[float, float],
    path: Path,
    background: xr.DataArray | None = None,
) -> Path:
    """One page of the main job: speed with tracks (over an image ``background`` if given),
    longitudinal strain rate, dynamic dH/dt, and the velocity time series at ``point``
    (sub-yearly pairs and annual composites).

    ``strain`` and ``qdiv`` are (y, x) slices of the product NetCDFs, ``tracks`` the
    ``tracks.nc`` dataset, ``boundary`` a shapely polygon in the cube CRS.
    """
    fig, axes = plt.subplots(2, 2, figsize=(14, 10.5), constrained_layout=True)
    speed = xr.apply_ufunc(np.hypot, strain["vx"], strain["vy"], dask="allowed")
    speed.attrs["units"] = "m yr-1"
    period = str(strain["period"].values) if "period" in strain else ""
    t0, t1 = (np.datetime_as_string(tracks.time.values[i], unit="D") for i in (0, -1))
    ax = axes[0, 0]
    if background is not None:
        draw_background(ax, background, fontsize=7)
    # moving ice opaque (the colour bar is its colours); the image shows on stable ground
    map_panel(
        ax,
        speed.where(speed >= MOVING_M_YR),
        f"mean speed {period}; tracks {t0} to {t1}",
        cmap="cividis",
    )
    for p in range(tracks.sizes["point"]):
        ax.plot(tracks.x.values[p] / 1e3, tracks.y.values[p] / 1e3, color="w", lw=1.2)
    ax.plot(tracks.x.values[:, 0] / 1e3, tracks.y.values[:, 0] / 1e3, "o", color="w", ms=4,
            mec="k", mew=0.5, ls="none", label=f"track start {t0}")  # fmt: skip
    last = _last_valid(tracks)
    ax.plot(last[0] / 1e3, last[1] / 1e3, ">", color="tab:orange", ms=5, mec="k", mew=0.5,
            ls="none", label=f"track end {t1}")  # fmt: skip
    ax.plot(point[0] / 1e3, point[1] / 1e3, "*", color="tab:red", ms=12, ls="none",
            label="time-series point (lower right)")  # fmt: skip
    scale = f"L = {strain.attrs.get('itscube_length_scale_m', 0):.0f} m"
    map_panel(
        axes[0, 1],
        strain["longitudinal"],
        f"longitudinal strain rate ({scale}) {period}",
        cmap="RdBu_r",
        diverging=True,
    )
    dhdt_panel(axes[1, 0], qdiv, f"dynamic dH/dt = -div(H u) {period}")
    for ax in (axes[0, 0], axes[0, 1], axes[1, 0]):
        boundary_line(ax, boundary, lw=1.2, label="flux boundary")
    axes[0, 0].legend(loc="upper right", fontsize=7, framealpha=0.8)
    ax = axes[1, 1]
    pt = subyearly.sel(x=point[0], y=point[1], method="nearest")
    dt = pt["date_dt"].values
    sc = ax.scatter(
        pt["mid_date"].values,
        pt["vx"].values,
        c=dt,
        s=10,
        cmap="viridis",
        norm=matplotlib.colors.LogNorm(max(1.0, np.nanmin(dt)), np.nanmax(dt)),
        zorder=3,
    )
    if "vx_error" in pt:
        ax.errorbar(
            pt["mid_date"].values,
            pt["vx"].values,
            yerr=pt["vx_error"].values,
            fmt="none",
            ecolor="0.75",
            lw=0.6,
            zorder=2,
        )
    fig.colorbar(sc, ax=ax, label="image-pair separation (days)")
    if annual is not None:
        ap = annual.sel(x=point[0], y=point[1], method="nearest")
        annual_steps(ax, ap["time"].values, ap["vx"].values, color="k", lw=2, label="annual")
        ax.legend(loc="upper left", fontsize=8)
    lo = np.nanpercentile(pt["vx"].values, 2)
    hi = np.nanpercentile(pt["vx"].values, 98)
    ax.set_ylim(lo - 0.2 * (hi - lo), hi + 0.2 * (hi - lo))
    ax.set_ylabel("vx (m yr-1)")
    ax.set_title(f"vx at the star ({point[0]:.0f}, {point[1]:.0f} m)", fontsize=10)
    return save(fig, path)
