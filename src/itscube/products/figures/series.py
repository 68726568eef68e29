"""Figures of the series product: per-point series with annual means, Hovmöller diagrams and
profiles, locator maps."""

from __future__ import annotations

from pathlib import Path

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np
import xarray as xr

from itscube.products.figures.common import (
    annual_steps,
    save,
)

__all__ = [
    "hovmoller_figure",
    "locator_figure",
    "profile_years_figure",
    "series_figure",
]


def series_figure(
    one: xr.Dataset,
    path: Path,
    annual: xr.Dataset | None = None,
    regular: xr.Dataset | None = None,
) -> Path:
    """Speed at one point against time: each image pair a horizontal bar from its first to
    its second acquisition, coloured by the pair's separation (octave bins), with its error
    bar; the annual composites as steps over their calendar years; the regular series, if
    any. Bars and error bars are drawn as one broken line per colour (thousands of pairs:
    a path each made the figure 1.3 s instead of 0.4 s)."""
    tdim = "mid_date" if "mid_date" in one.dims else "time"
    fig, ax = plt.subplots(figsize=(11, 4.5), constrained_layout=True)
    v = one["v"].values
    ok = np.isfinite(v)
    if "acquisition_date_img1" in one and ok.any():
        _pair_bars(
            ax,
            mdates.date2num(one["acquisition_date_img1"].values[ok]),
            mdates.date2num(one["acquisition_date_img2"].values[ok]),
            v[ok],
            np.asarray(one["date_dt"].values[ok], "f8"),
        )
    mid, err = mdates.date2num(one[tdim].values[ok]), one["v_error"].values[ok]
    ax.plot(_broken(mid, mid), _broken(v[ok] - err, v[ok] + err), color="0.7", lw=0.6)
    if annual is not None and np.isfinite(annual["v"].values).any():
        annual_steps(
            ax,
            annual["time"].values,
            annual["v"].values,
            color="k",
            lw=2.2,
            label="annual composites",
        )
    if regular is not None:
        bnds = regular["time_bnds"].values
        label = f"regular ({regular.attrs.get('itscube_regularised', '')}), over each bin"
        ax.hlines(regular["v"].values, bnds[:, 0], bnds[:, 1], color="tab:red", lw=2.2, label=label)
    ax.xaxis_date()
    ax.autoscale_view()
    ax.set_ylabel("speed (m yr-1)")
    label = str(one["id"].values) if "id" in one.coords else ""
    ax.set_title(
        f"speed at {label} ({float(one['lon']):.4f}, {float(one['lat']):.4f})", fontsize=10
    )
    if annual is not None or regular is not None:
        ax.legend(loc="upper left", fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    return save(fig, path)


def _broken(start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """``start[0], end[0], nan, start[1], end[1], nan, ...``: separate segments as one line.

    >>> _broken(np.array([1.0, 3.0]), np.array([2.0, 4.0])).tolist()
    [1.0, 2.0, nan, 3.0, 4.0, nan]
    """
    return np.column_stack([start, end, np.full(len(start), np.nan)]).ravel()


def _pair_bars(ax, t1: np.ndarray, t2: np.ndarray, v: np.ndarray, dt: np.ndarray) -> None:
    """Image-pair bars ``t1..t2`` at speed ``v`` (dates as matplotlib numbers), coloured by
    the separation ``dt`` (days) on octave bins (1-2, 2-4, ... days), with a colorbar.
    Pairs of unknown separation are left out, as a colour map leaves out NaN."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import BoundaryNorm

    known = np.isfinite(dt)  # a pair without a separation has no colour: not drawn
    if not known.any():
        return
    t1, t2, v, dt = t1[known], t2[known], v[known], dt[known]
    lo = float(np.floor(np.log2(max(1.0, float(np.min(dt))))))
    hi = max(lo + 1, float(np.ceil(np.log2(max(1.0, float(np.max(dt)))))))
    bounds = 2.0 ** np.arange(lo, hi + 1)
    cmap = plt.get_cmap("viridis", len(bounds) - 1)
    octave = np.clip(np.searchsorted(bounds, dt, side="right") - 1, 0, cmap.N - 1)
    for k in np.unique(octave):
        sel = octave == k
        ax.plot(
            _broken(t1[sel], t2[sel]),
            _broken(v[sel], v[sel]),
            color=cmap(int(k)),
            lw=1.6,
            zorder=3,
            solid_capstyle="butt",
        )
    ax.figure.colorbar(
        ScalarMappable(BoundaryNorm(bounds, cmap.N), cmap),
        ax=ax,
        ticks=bounds,
        format="%g",
        label="image-pair separation (days)",
    )


def hovmoller_figure(regular: xr.Dataset, path: Path) -> Path:
    """Distance along the profile against time, coloured by speed (a regular series)."""
    fig, ax = plt.subplots(figsize=(10, 5), constrained_layout=True)
    t = mdates.date2num(regular["time"].values)
    d = regular["distance"].values / 1e3
    mesh = ax.pcolormesh(
        t, d, regular["v"].transpose("point", "time").values, cmap="viridis", shading="nearest"
    )
    ax.xaxis_date()
    ax.set_ylabel("distance along the profile (km)")
    ax.set_title(
        f"speed along the profile ({regular.attrs.get('itscube_regularised', '')} means)",
        fontsize=10,
    )
    fig.colorbar(mesh, ax=ax, label="speed (m yr-1)")
    path.parent.mkdir(parents=True, exist_ok=True)
    return save(fig, path)


def profile_years_figure(yearly: xr.Dataset, path: Path) -> Path:
    """Speed along the profile, one line per year."""
    fig, ax = plt.subplots(figsize=(10, 4.5), constrained_layout=True)
    colours = plt.get_cmap("viridis")(np.linspace(0, 1, max(1, yearly.sizes["time"])))
    for k, t in enumerate(yearly["time"].values):
        ax.plot(
            yearly["distance"].values / 1e3,
            yearly["v"].isel(time=k).values,
            color=colours[k],
            label=str(t)[:4],
        )
    ax.set_xlabel("distance along the profile (km)")
    ax.set_ylabel("speed (m yr-1)")
    ax.legend(fontsize=7, ncol=2)
    ax.set_title("speed along the profile per year", fontsize=10)
    path.parent.mkdir(parents=True, exist_ok=True)
    return save(fig, path)


def locator_figure(series: xr.Dataset, path: Path, polygon=None) -> Path:
    """Where the series were taken, in lon/lat, with the cubes' footprints when known."""
    fig, ax = plt.subplots(figsize=(6, 5), constrained_layout=True)
    ax.plot(
        series["lon"].values,
        series["lat"].values,
        "o-" if "distance" in series.coords else "o",
        color="tab:red",
        ms=4,
    )
    for lon, lat, name in zip(
        series["lon"].values[:30], series["lat"].values[:30], series["id"].values[:30], strict=True
    ):
        ax.annotate(str(name), (lon, lat), fontsize=7, xytext=(3, 3), textcoords="offset points")
    if polygon is not None:
        xs, ys = polygon.exterior.xy
        ax.plot(xs, ys, color="k", lw=1)
    ax.set_xlabel("longitude")
    ax.set_ylabel("latitude")
    ax.set_title("series locations", fontsize=10)
    ax.set_aspect(1 / max(0.1, np.cos(np.deg2rad(float(np.nanmean(series["lat"].values))))))
    path.parent.mkdir(parents=True, exist_ok=True)
    return save(fig, path)
