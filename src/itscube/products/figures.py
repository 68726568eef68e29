"""Figures of itscube products (matplotlib; the CLI selects the headless Agg backend, the
library leaves the backend alone so figures show inline in notebooks)."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np
import xarray as xr

from itscube.grid import grid_bounds

__all__ = [
    "DPI",
    "annual_steps",
    "arrows",
    "boundary_line",
    "dhdt_limit",
    "dhdt_panel",
    "displacement_figure",
    "draw_background",
    "extent_km",
    "hovmoller_figure",
    "locator_figure",
    "map_panel",
    "overview_figure",
    "principal_crosses",
    "profile_years_figure",
    "qdiv_figure",
    "save",
    "seasonal_figure",
    "series_figure",
    "strain_figures",
    "symmetric_limit",
    "tracks_figure",
    "year_spans",
]

DPI = 150


def extent_km(da: xr.DataArray) -> list[float]:
    """``imshow`` extent (km) of a map with pixel-centre coordinates."""
    x, y = da.x.values, da.y.values
    x0, y0, x1, y1 = grid_bounds(x, y)
    return [x0 / 1e3, x1 / 1e3, y0 / 1e3, y1 / 1e3]


def symmetric_limit(*arrays: np.ndarray, q: float = 98.0) -> float:
    vals = np.concatenate([np.abs(np.asarray(a, "f8")).ravel() for a in arrays])
    vals = vals[np.isfinite(vals)]
    lim = float(np.percentile(vals, q)) if vals.size else 1.0
    return lim if lim > 0 else 1.0


def map_panel(
    ax,
    da: xr.DataArray,
    title: str,
    *,
    cmap: str = "viridis",
    diverging: bool = False,
    vlim: float | None = None,
    units: str | None = None,
    background: xr.DataArray | None = None,
    limits: tuple[float, float] | None = None,
):
    """Draw one map with a colorbar; axes in km of the projected CRS. On a diverging scale
    (``-vlim..vlim``) or given ``limits`` values beyond them are clipped and the colorbar
    shows extend arrows. Over a ``background`` image (RGB on the same grid) the map is
    drawn translucent."""
    data = da.transpose("y", "x").values
    if da.y.values[0] < da.y.values[-1]:
        data = data[::-1]
    kw = {}
    if background is not None:
        draw_background(ax, background)
        kw["alpha"] = 0.6
    if diverging:
        lim = vlim if vlim is not None else symmetric_limit(data)
        limits = (-lim, lim)
    if limits is not None:  # (keeping the translucency over a background)
        kw.update(vmin=limits[0], vmax=limits[1])
    im = ax.imshow(data, extent=extent_km(da), cmap=cmap, interpolation="nearest", **kw)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("x (km)")
    ax.set_ylabel("y (km)")
    extend = "neither"
    if limits is not None:
        finite = data[np.isfinite(data)]
        lo = bool(finite.size and finite.min() < limits[0])
        hi = bool(finite.size and finite.max() > limits[1])
        extend = {(True, True): "both", (True, False): "min", (False, True): "max"}.get(
            (lo, hi), "neither"
        )
    cb = ax.figure.colorbar(im, ax=ax, shrink=0.85, extend=extend)
    cb.set_label(units or da.attrs.get("units", ""))
    return im


MOVING_M_YR = 5.0
"""Speeds below this (m/yr) are stable ground in overview maps: the image shows there."""


def _last_valid(tracks: xr.Dataset) -> tuple[np.ndarray, np.ndarray]:
    """The last finite position of every track (m)."""
    x, y = tracks.x.values, tracks.y.values
    idx = np.where(np.isfinite(x), np.arange(x.shape[1]), -1).max(axis=1).clip(0)
    rows = np.arange(x.shape[0])
    return x[rows, idx], y[rows, idx]


def draw_background(ax, rgb: xr.DataArray, fontsize: float = 5) -> None:
    """An RGB image (bands, y, x; uint8) under a map, in km, with its date and licence."""
    img = np.moveaxis(np.asarray(rgb.transpose("band", "y", "x").values), 0, -1)
    if rgb.y.values[0] < rgb.y.values[-1]:
        img = img[::-1]
    ax.imshow(img, extent=extent_km(rgb.isel(band=0)), interpolation="bilinear")
    note = f"image {rgb.attrs.get('datetime', '')[:10]} {rgb.attrs.get('scene', '')}".strip()
    licence = rgb.attrs.get("licence", "")
    import textwrap

    licence = "\n".join(textwrap.wrap(licence, 60))
    ax.annotate(
        f"{note}\n{licence}" if licence else note,
        (0.01, 0.01),
        xycoords="axes fraction",
        fontsize=fontsize,
        color="w",
        va="bottom",
        bbox={"facecolor": "k", "alpha": 0.5, "pad": 1.5, "lw": 0},
    )


def save(fig, path: Path) -> Path:
    """Write ``fig`` as a PNG (to a temporary name, then renamed) and close it. A figure with
    constrained layout already fits its contents: no "tight" pass, which draws it twice
    (a series figure: 0.73 -> 0.45 s)."""
    from matplotlib.layout_engine import ConstrainedLayoutEngine

    tmp = path.with_name(path.name + ".tmp.png")
    fitted = isinstance(fig.get_layout_engine(), ConstrainedLayoutEngine)
    fig.savefig(tmp, dpi=DPI, bbox_inches=None if fitted else "tight", format="png")
    plt.close(fig)
    tmp.replace(path)
    return path


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
    scale = f"L = {res.attrs.get('length_scale_m', 0):.0f} m, {res.attrs.get('method', '')}"
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


def arrows(
    ax,
    ds: xr.Dataset,
    u: str,
    v: str,
    *,
    color: str,
    centred: bool,
    n: int = 20,
    key: str | None = None,
):
    """Quiver of ``ds[u], ds[v]`` on about ``n`` points per side (axes in km); ``centred``
    starts half a step in from the edge. Arrows are scaled so that the longest spans about
    one grid step (they stay inside the axes); ``key`` (units) adds a reference arrow."""
    step = max(1, max(ds.sizes["y"], ds.sizes["x"]) // n)
    first = step // 2 if centred else 0
    sub = ds.isel(y=slice(first, None, step), x=slice(first, None, step))
    mag = np.hypot(sub[u].values, sub[v].values)
    top = float(np.nanpercentile(mag, 98)) if np.isfinite(mag).any() else 1.0
    top = top if top > 0 else 1.0
    spacing_km = abs(float(ds.x[1] - ds.x[0])) * step / 1e3 if ds.sizes["x"] > 1 else 1.0
    shown = np.isfinite(mag) & (mag > 0.02 * top)  # no dots on empty or ice-free cells
    X, Y = np.meshgrid(sub.x.values / 1e3, sub.y.values / 1e3)
    q = ax.quiver(
        X[shown],
        Y[shown],
        sub[u].values[shown],
        sub[v].values[shown],
        color=color,
        width=0.003,
        angles="xy",
        scale_units="xy",
        pivot="middle",
        scale=top / (0.9 * spacing_km),
    )
    if key:
        ref = float(f"{top:.1g}")
        ax.quiverkey(
            q,
            0.80,
            -0.11,
            ref,
            f"{ref:g} {key}",
            labelpos="E",
            coordinates="axes",
            fontproperties={"size": 8},
        )


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


def year_spans(times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``[1 January, 1 January next year)`` of each annual-composite time stamp (ITS_LIVE
    stamps composites mid-year): the span each composite value holds for.

    >>> starts, ends = year_spans(np.array(["2018-07-02"], dtype="datetime64[ns]"))
    >>> str(starts[0])[:10], str(ends[0])[:10]
    ('2018-01-01', '2019-01-01')
    """
    years = np.asarray(times, dtype="datetime64[Y]")
    return years.astype("datetime64[ns]"), (years + 1).astype("datetime64[ns]")


def annual_steps(ax, times: np.ndarray, values: np.ndarray, **style):
    """Annual composites as flat steps over their whole calendar years (not half a year
    either side of the mid-year stamp, as ``step(where="mid")`` would draw the first and
    last ones)."""
    starts, ends = year_spans(times)
    return ax.hlines(values, starts, ends, **style)


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
    scale = f"L = {strain.attrs.get('length_scale_m', 0):.0f} m"
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


def series_figure(
    one: xr.Dataset,
    path: Path,
    annual: xr.Dataset | None = None,
    regular: xr.Dataset | None = None,
) -> Path:
    """Speed at one point against time: each image pair a horizontal bar from its first to
    its second acquisition, coloured by the pair's separation, with its error bar; the
    annual composites as steps over their calendar years; the regular series, if any."""
    from matplotlib.collections import LineCollection

    tdim = "mid_date" if "mid_date" in one.dims else "time"
    fig, ax = plt.subplots(figsize=(11, 4.5), constrained_layout=True)
    v = one["v"].values
    ok = np.isfinite(v)
    if "acquisition_date_img1" in one and ok.any():
        t1 = mdates.date2num(one["acquisition_date_img1"].values[ok])
        t2 = mdates.date2num(one["acquisition_date_img2"].values[ok])
        dt = np.asarray(one["date_dt"].values[ok], "f8")
        bars = LineCollection(
            [[(a, y), (b, y)] for a, b, y in zip(t1, t2, v[ok], strict=True)],
            cmap="viridis",
            norm=matplotlib.colors.LogNorm(max(1.0, np.nanmin(dt)), max(2.0, np.nanmax(dt))),
            linewidths=1.6,
            zorder=3,
        )
        bars.set_array(dt)
        ax.add_collection(bars)
        fig.colorbar(bars, ax=ax, label="image-pair separation (days)")
    mid = one[tdim].values
    ax.errorbar(mid[ok], v[ok], yerr=one["v_error"].values[ok], fmt="none", ecolor="0.7", lw=0.6)
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
        label = f"regular ({regular.attrs.get('regularised', '')}), over each bin"
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
        f"speed along the profile ({regular.attrs.get('regularised', '')} means)", fontsize=10
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
