"""Figures of the strain product: effective rate, principal rates with their directions, flow-
aligned components."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr

from itscube.products.figures.common import (
    MOVING_M_YR,
    map_panel,
    save,
    symmetric_limit,
)

__all__ = [
    "principal_crosses",
    "strain_figures",
]


def principal_crosses(ax, res: xr.Dataset, n_crosses: int = 18) -> None:
    """Principal-direction crosses: arms along e1 and e2, length ~ |rate|, red extending,
    blue compressing."""
    from matplotlib.collections import LineCollection

    ny, nx = res.sizes["y"], res.sizes["x"]
    step = max(1, max(ny, nx) // n_crosses)
    sub = res.isel(y=slice(step // 2, None, step), x=slice(step // 2, None, step))
    X, Y = np.meshgrid(sub.x.values / 1e3, sub.y.values / 1e3)
    ang = np.radians(sub["e1_angle"].values)
    e1, e2 = sub["e1"].values, sub["e2"].values
    half_cell = 0.45 * step * abs(float(res.x[1] - res.x[0])) / 1e3
    scale = half_cell / symmetric_limit(e1, e2, q=95)
    segs, colours = [], []
    for val, dx, dy in ((e1, np.cos(ang), np.sin(ang)), (e2, -np.sin(ang), np.cos(ang))):
        a = np.minimum(np.abs(val) * scale, half_cell)
        ok = np.isfinite(a) & np.isfinite(dx)
        for x0, y0, aa, ddx, ddy, vv in zip(
            X[ok], Y[ok], a[ok], dx[ok], dy[ok], val[ok], strict=True
        ):
            segs.append([(x0 - aa * ddx, y0 - aa * ddy), (x0 + aa * ddx, y0 + aa * ddy)])
            colours.append("#b2182b" if vv > 0 else "#2166ac")
    ax.add_collection(LineCollection(segs, colors=colours, linewidths=1.2))


def strain_figures(
    res: xr.Dataset, folder: Path, label: str, background: xr.DataArray | None = None
) -> list[Path]:
    """Maps of one period's strain rates: effective, principal (with crosses), flow-aligned.

    ``res`` is a (y, x) slice of :func:`itscube.strain_rates` output.
    """
    folder.mkdir(parents=True, exist_ok=True)
    made = []
    length, method = res.attrs.get("itscube_length_scale_m", 0), res.attrs.get("itscube_method", "")
    scale = f"L = {length:.0f} m, {method}"
    fig, ax = plt.subplots(figsize=(6.5, 5))
    map_panel(
        ax,
        res["effective"],
        f"effective strain rate {label}\n{scale}",
        cmap="magma",
        background=background,
    )
    made.append(save(fig, folder / f"effective_{label}.png"))

    speed = xr.apply_ufunc(np.hypot, res["vx"], res["vy"], dask="allowed")
    ice = (speed >= MOVING_M_YR).values  # colour limits from the moving ice, robustly

    def lim_of(name: str) -> float:
        vals = res[name].values
        return symmetric_limit(np.where(ice, vals, np.nan) if ice.any() else vals, q=95.0)

    fig, axes = plt.subplots(1, 3, figsize=(17, 5), constrained_layout=True)
    for ax, name, cmap, sign in ((axes[0], "e1", "Reds", 1), (axes[1], "e2", "Blues_r", -1)):
        lo, hi = sorted((0.0, sign * lim_of(name)))  # one-sided: e1 >= e2
        map_panel(ax, res[name], f"{name} {label}", cmap=cmap, limits=(lo, hi))
    map_panel(
        axes[2],
        res["effective"],
        f"principal directions {label}\nover the effective strain rate (grey, yr-1)",
        cmap="Greys",
    )
    principal_crosses(axes[2], res)
    fig.suptitle(
        f"principal strain rates ({scale}); crosses: red arms extend, blue compress", fontsize=10
    )
    made.append(save(fig, folder / f"principal_{label}.png"))

    fig, axes = plt.subplots(1, 3, figsize=(17, 5), constrained_layout=True)
    for ax, name in zip(axes, ("longitudinal", "transverse", "shear"), strict=True):
        map_panel(  # each its own scale: a shared one left the weaker components blank
            ax,
            res[name],
            f"{name} {label}",
            cmap="RdBu_r",
            diverging=True,
            vlim=lim_of(name),
            background=background,
        )
        cs = ax.contour(
            res.x.values / 1e3,
            res.y.values / 1e3,
            speed.values,
            colors="0.3",
            linewidths=0.5,
            levels=6,
        )
        ax.clabel(cs, fontsize=6, fmt="%.0f")
    fig.suptitle(f"flow-aligned strain rates ({scale}); grey: speed contours (m/yr)", fontsize=10)
    made.append(save(fig, folder / f"flow_aligned_{label}.png"))
    return made
