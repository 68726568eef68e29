"""Figures of the flux-divergence product: dynamic thinning maps with the flux boundary and
velocity arrows."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr

from itscube.products.figures.common import (
    arrows,
    map_panel,
    save,
    symmetric_limit,
)

__all__ = [
    "boundary_line",
    "dhdt_limit",
    "dhdt_panel",
    "qdiv_figure",
]


def boundary_line(ax, boundary, **kw) -> None:
    """The exterior of a shapely polygon (projected metres) on km axes."""
    bx, by = boundary.exterior.xy
    ax.plot(np.asarray(bx) / 1e3, np.asarray(by) / 1e3, color="k", **kw)


def dhdt_limit(res: xr.Dataset) -> float:
    """Colour limit of dH/dt maps: the 98th percentile of |dH/dt| inside the boundary, over
    every period of ``res`` (one scale for all periods of a run, so years compare)."""
    inside = res["dynamic_dhdt"].where(res["mask"] > 0) if "mask" in res else res["dynamic_dhdt"]
    return symmetric_limit(inside.values)


def dhdt_panel(ax, res: xr.Dataset, title: str, vlim: float | None = None, background=None):
    """Dynamic dH/dt on a diverging scale (``vlim``, default :func:`dhdt_limit`)."""
    return map_panel(
        ax,
        res["dynamic_dhdt"],
        title,
        cmap="RdBu",
        diverging=True,
        vlim=dhdt_limit(res) if vlim is None else vlim,
        background=background,
    )


def qdiv_figure(
    res: xr.Dataset,
    boundary,
    folder: Path,
    label: str,
    vlim: float | None = None,
    background: xr.DataArray | None = None,
) -> Path:
    """Dynamic thickness change on a diverging scale (``vlim``: shared by the periods of a
    run), the boundary, and flux vectors with a reference key."""
    folder.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(7.5, 6))
    dhdt_panel(ax, res, f"dynamic dH/dt = -div(H u) {label}", vlim, background)
    boundary_line(ax, boundary, lw=1.5, label="boundary")
    arrows(ax, res, "flux_x", "flux_y", color="0.15", centred=True, key="m2/yr")
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(
        ax.get_title() + "\narrows: ice flux H u (m2 yr-1); red: thinning, blue: thickening",
        fontsize=10,
    )
    return save(fig, folder / f"dynamic_dhdt_{label}.png")
