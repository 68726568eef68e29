"""Figures of the seasonal product: amplitude and phase of the annual cycle."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import xarray as xr

from itscube.products.figures.common import (
    map_panel,
    save,
)

__all__ = [
    "seasonal_figure",
]


def seasonal_figure(res: xr.Dataset, path: Path, dates: str) -> Path:
    """Mean speed, seasonal amplitude (m/yr) and day of the peak, from the span-aware fit."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6), constrained_layout=True)
    map_panel(axes[0], res["v0"], f"mean speed {dates}", cmap="viridis", units="m/yr")
    map_panel(axes[1], res["v_amp"], "seasonal amplitude along flow", cmap="magma", units="m/yr")
    significant = res["v_amp"] > 2 * res["v_amp_error"]
    map_panel(
        axes[2],
        res["v_phase"].where(significant),
        "day of the seasonal maximum (amplitude > 2σ)",
        cmap="twilight",
        units="day of year",
    )
    axes[2].images[0].set_clim(1, 366)
    blank = int((res["fit_flag"] > 0).sum())
    fig.suptitle(
        f"Span-aware fit of annual means + annual sinusoid ({dates}); blank: no fit or too few "
        f"months sampled ({blank} px)",
        fontsize=10,
    )
    return save(fig, path)
