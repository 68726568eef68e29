"""Figures of the track product: tracks over the speed map (and image background), displacement
maps."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr

from itscube.products.figures.common import (
    MOVING_M_YR,
    arrows,
    draw_background,
    map_panel,
    save,
)

__all__ = [
    "displacement_figure",
    "tracks_figure",
]


def tracks_figure(
    res: xr.Dataset, speed_field: xr.Dataset, path: Path, background: xr.DataArray | None = None
) -> Path:
    """Tracks over the mean speed map (or an image ``background``), coloured by time, with
    start/end markers."""
    from matplotlib.collections import LineCollection

    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(8, 6.5))
    speed = xr.apply_ufunc(np.hypot, speed_field["vx"], speed_field["vy"], dask="allowed")
    speed.attrs["units"] = "m yr-1"
    period = ""
    if "time_bnds" in speed_field:
        b = speed_field["time_bnds"].values.ravel()
        period = f" {str(b[0])[:10]} to {str(b[-1] - np.timedelta64(1, 'D'))[:10]}"
    if background is not None:  # the image shows on stable ground, the speed on the ice
        draw_background(ax, background)
        speed = speed.where(speed >= MOVING_M_YR)
    map_panel(ax, speed, "", cmap="Greys")
    t = (res.time.values - res.time.values[0]).astype("timedelta64[D]").astype(float) / 365.25
    norm = plt.Normalize(np.nanmin(np.abs(t)), np.nanmax(np.abs(t)))
    for p in range(res.sizes["point"]):
        xs, ys = res.x.values[p] / 1e3, res.y.values[p] / 1e3
        ok = np.isfinite(xs)
        if ok.sum() < 2:
            continue
        pts = np.column_stack([xs[ok], ys[ok]])
        segs = np.stack([pts[:-1], pts[1:]], axis=1)
        lc = LineCollection(list(segs), cmap="plasma", norm=norm, linewidths=1.5)
        lc.set_array(np.abs(t[ok][:-1]))
        ax.add_collection(lc)
        ax.plot(*pts[0], "o", color="tab:green", ms=4)
        ax.plot(*pts[-1], "s", color="tab:red", ms=4)
        if "spread_x" in res:  # --ensemble: the 1-sigma end-position ellipse
            from matplotlib.patches import Ellipse

            sx, sy = float(res.spread_x[p]) / 1e3, float(res.spread_y[p]) / 1e3
            if np.isfinite(sx) and np.isfinite(sy):
                ax.add_patch(Ellipse(pts[-1], 2 * sx, 2 * sy, fill=False, color="tab:red", lw=1))
    sm = plt.cm.ScalarMappable(norm=norm, cmap="plasma")
    fig.colorbar(sm, ax=ax, shrink=0.85, label="years since start")
    ellipses = ", ellipses: 1-sigma ensemble spread" if "spread_x" in res else ""
    ax.set_title(
        f"tracks {str(res.time.values[0])[:10]} -> {str(res.time.values[-1])[:10]}"
        f" (green start, red end{ellipses})\n"
        + f"grey: mean speed{period}, m/yr"
        + (" (over the image where the ice is still)" if background is not None else ""),
        fontsize=10,
    )
    return save(fig, path)


def displacement_figure(field: xr.Dataset, path: Path, dates: str = "") -> Path:
    """Displacement map with arrows (``dates``: the window, for the title); points that did
    not end ``ok`` are blank (their tracks stopped early)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(8, 6.5))
    title = f"total displacement {dates}".strip() + "\n(blank: left the grid or met a gap)"
    map_panel(ax, field["displacement"], title, cmap="viridis")
    arrows(ax, field, "dx", "dy", color="w", centred=False)
    return save(fig, path)
