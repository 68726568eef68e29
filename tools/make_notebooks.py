"""Write the example notebooks (without outputs) from the cell sources below.

Run ``python tools/make_notebooks.py`` after editing; CI executes the notebooks
(tests/test_notebooks.py), so they cannot rot.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

SWITCH = "USE_REAL_DATA = False  # True: the official ITS_LIVE catalog and cubes on AWS (internet)"

DOWNLOAD = [
    new_markdown_cell(
        """# 1. Download ITS_LIVE velocity cubes

This notebook does the job of the original *downloader* notebook with the itscube API: find the
datacubes covering an area in the ITS_LIVE catalog, download the sub-yearly (image-pair) and annual
layers for a date range, with the usual layer filters, into local Zarr stores, and look at them.

By default it runs **offline on the bundled synthetic sample** (a made-up outlet glacier in the
exact ITS_LIVE v2 schema, served on a local HTTP server so that the real download code path runs).
Set `USE_REAL_DATA = True` to use the real ITS_LIVE catalog and cubes on AWS instead (internet
needed; the area is then Sermeq Kujalleq / Jakobshavn Isbræ)."""
    ),
    new_code_cell(
        SWITCH
        + """

import matplotlib.pyplot as plt
import numpy as np

import itscube

START, END = "2016-01-01", "2021-12-31"
if USE_REAL_DATA:
    catalog = itscube.load_catalog()  # catalog_v02.json of the its-live-data bucket
    area = itscube.bbox_area(-49.9, 69.1, -49.5, 69.25)  # lon/lat (west, south, east, north)
else:
    from itscube.sample import SampleServer

    server = SampleServer()  # the bundled sample on http://127.0.0.1:<port>
    catalog = itscube.load_catalog(server.catalog_url, cache=False)
    area = itscube.bbox_area(-155000, -2254000, -145000, -2246000, crs="EPSG:3413")
print(f"{len(catalog)} cubes in {catalog.source}")"""
    ),
    new_markdown_cell("## Which cubes cover the area?"),
    new_code_cell(
        """cubes = itscube.find_cubes(area, catalog)
for cube in cubes:
    print(cube.name, f"EPSG:{cube.epsg}", cube.url("subyearly"))"""
    ),
    new_markdown_cell(
        """## Download

Only the Zarr chunks that intersect the area and dates are read, in parallel, with retries; an
interrupted download resumes where it stopped. The filters are the original notebook's
(`roi_valid_percentage` above 40 %) plus an image-pair separation bound. Several cubes in one
projection are mosaicked onto one grid."""
    ),
    new_code_cell(
        """filters = itscube.Filters(min_valid_percent=40, max_dt_days=400)
sub = itscube.download(
    area, start=START, end=END, kind="subyearly", filters=filters, out="data", catalog=catalog
)
ann = itscube.download(area, start=START, end=END, kind="annual", out="data", catalog=catalog)
print(sub.stores, f"{sub.bytes_fetched / 1e6:.1f} MB fetched")
print(ann.stores)"""
    ),
    new_markdown_cell(
        """## Open the downloaded cubes

`open_cube` gives an analysis-ready dataset: layers sorted by `mid_date`, fill values as NaN,
velocities in m/yr, CRS attached (`ds.rio.crs`)."""
    ),
    new_code_cell(
        """ds = itscube.open_cube(sub.stores[0])
annual = itscube.open_cube(ann.stores[0])
print(ds.rio.crs, dict(ds.sizes))
ds[["vx", "vy", "date_dt", "vx_error"]]"""
    ),
    new_markdown_cell(
        """## A regular series from irregular image pairs

The original notebook resampled the layers to a regular series (`amount` x `Y|M|MS`). itscube's
`period_mean` does the same with inverse-variance weights (1/error²), and reports the number of
layers and the error of each mean."""
    ),
    new_code_cell(
        """quarterly = itscube.period_mean(ds, "QS")
speed = np.hypot(quarterly.vx, quarterly.vy)
y0, x0 = ds.sizes["y"] // 2, ds.sizes["x"] // 2
pt = ds.isel(y=y0, x=x0).load()
t, v = pt.mid_date.values, np.hypot(pt.vx, pt.vy).values

fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(13, 4.5))
ax0.errorbar(t, v, yerr=pt.vx_error.values, fmt="none", ecolor="0.8")
sc = ax0.scatter(t, v, c=pt.date_dt.values, s=8, norm="log")
ax0.step(quarterly.time.values, speed.isel(y=y0, x=x0).values, where="post", color="k",
         label="quarterly mean")
ax0.step(annual.time.values, np.hypot(annual.vx, annual.vy).isel(y=y0, x=x0).values,
         where="mid", color="tab:red", label="annual cube")
ax0.set_ylabel("speed (m/yr)")
ax0.legend()
fig.colorbar(sc, ax=ax0, label="image-pair separation (days)")
speed.mean("time").plot(ax=ax1, cmap="cividis", cbar_kwargs={"label": "mean speed (m/yr)"})
ax1.set_aspect("equal")
ax1.set_title("mean speed");"""
    ),
    new_markdown_cell(
        """The same from the command line:

```bash
itscube find --bbox -49.9 69.1 -49.5 69.25
itscube download --bbox -49.9 69.1 -49.5 69.25 --start 2016-01-01 --end 2021-12-31 \\
    --min-valid 40 --max-dt-days 400 --out data
```"""
    ),
    new_code_cell(
        """if not USE_REAL_DATA:
    server.close()
    # the sample is synthetic: a check that this notebook saw what it should
    assert ds.sizes["mid_date"] > 100 and float(speed.max()) > 500"""
    ),
]

ANALYSIS = [
    new_markdown_cell(
        """# 2. Strain rates, particle tracking and flux divergence

This notebook does the job of the original *tracker / strain / flux divergence* notebook with the
itscube API, on one sub-yearly cube:

1. mean velocity fields per period from the irregular image pairs (inverse-variance weighted);
2. strain rates at several length scales ("upscale"), maps and a time series;
3. tracking points through the time-varying field (RK4, bilinear, gaps flagged);
4. flux divergence and dynamic thinning inside a boundary from an ice-thickness GeoTIFF.

By default it uses the **bundled synthetic sample** (an outlet glacier whose analytic velocity is
known, so the numbers can be checked) and the `Example_Qdiv` thickness and boundary templates.
Set `USE_REAL_DATA = True` to read a real ITS_LIVE cube from AWS lazily instead (internet needed);
then give your own thickness GeoTIFF and boundary CSV."""
    ),
    new_code_cell(
        SWITCH
        + """

import matplotlib.pyplot as plt
import numpy as np

import itscube
from itscube.products.figures import map_panel

START, END = "2018-01-01", "2019-12-31"
if USE_REAL_DATA:
    url = ("https://its-live-data.s3.amazonaws.com/datacubes/v2-updated-october2024/N60W040/"
           "ITS_LIVE_vel_EPSG3413_G0120_X-150000_Y-2250000.zarr")
    ds = itscube.open_cube(url, start=START, end=END)
    ds = ds.sel(x=slice(-190000, -170000), y=slice(-2270000, -2285000))  # a 20 km x 15 km box
    thickness_tif, boundary_csv = "my_thickness.tif", "my_boundary.csv"  # yours, in EPSG:3413
else:
    from itscube.sample import SAMPLE_FIELD, ensure_sample

    sample = ensure_sample()
    ds = itscube.open_cube(sample.subyearly, start=START, end=END)
    thickness_tif, boundary_csv = sample.thickness, sample.boundary
ds = itscube.select_layers(ds, filters=itscube.Filters(min_valid_percent=40))
print(ds.rio.crs, dict(ds.sizes))"""
    ),
    new_markdown_cell(
        """## Strain rates at several length scales

`upscale=k` takes centred differences over ±k pixels (a 2·k·120 m baseline) on the native grid;
the original notebook's strided grid (`v[::k, ::k]`) is `strided=True`, `method="log"` is the
logarithmic strain of Alley et al. (2018). Strain rates are in 1/yr; `longitudinal`, `transverse`
and `shear` are rotated into the local flow direction."""
    ),
    new_code_cell(
        """yearly = itscube.period_mean(ds, "year")
sr = itscube.strain_rates(yearly, upscale=[1, 2, 4])
first = sr.isel(time=0)
fig, axes = plt.subplots(1, 3, figsize=(17, 4.5), constrained_layout=True)
for ax, k in zip(axes, sr.upscale.values):
    s = first.sel(upscale=k)
    map_panel(ax, s.longitudinal, f"longitudinal, L = {2 * k * 120} m",
              cmap="RdBu_r", diverging=True, vlim=0.1)"""
    ),
    new_markdown_cell(
        """### A strain-rate time series

The original notebook's sliding windows: mean velocity per window (here quarterly), strain of
each window, stacked along time."""
    ),
    new_code_cell(
        """quarterly = itscube.period_mean(ds, "QS")
sq = itscube.strain_rates(quarterly, upscale=2)
cx, cy = float(ds.x.mean()), float(ds.y.mean())
box = dict(x=slice(cx - 1500, cx + 1500), y=slice(cy + 500, cy - 500))
series = sq.longitudinal.sel(**box).mean(["x", "y"])
ax = series.plot(marker="o", figsize=(8, 3.5))
plt.ylabel("longitudinal strain rate (1/yr)")
plt.title("mean over a box at the centre of the cube");"""
    ),
    new_markdown_cell(
        """## Tracking points

Points move with the velocity of yearly composites (inverse-variance means of the pairs inside
each year), bilinearly interpolated, RK4 with 5-day steps. Gaps are filled from the nearest year,
then spatially, and flagged; a point leaving the data stops with a status instead of standing
still."""
    ),
    new_code_cell(
        """seeds = np.column_stack([np.full(9, cx - 3000.0), np.linspace(cy - 2400, cy + 2400, 9)])
tracks = itscube.track(ds, seeds, START, END, period="year")
print(tracks.status.values, tracks.displacement.values.round(0))

fig, ax = plt.subplots(figsize=(8, 6))
map_panel(ax, np.hypot(yearly.vx, yearly.vy).isel(time=0).assign_attrs(units="m/yr"),
          "tracks over the 2018 speed", cmap="cividis")
for p in range(tracks.sizes["point"]):
    ax.plot(tracks.x[p] / 1e3, tracks.y[p] / 1e3, color="w")
    ax.plot(tracks.x[p, 0] / 1e3, tracks.y[p, 0] / 1e3, "o", color="w", ms=3)"""
    ),
    new_markdown_cell(
        """## Flux divergence and dynamic thinning

The thickness GeoTIFF is resampled bilinearly onto the cube grid (any CRS); the boundary CSV
holds x, y in the cube projection (or lon, lat). `flux_divergence` computes div(H u) by finite
volumes, so its integral over the boundary equals the net flux through it (Gauss), which is
also compared with the line integral along the polygon."""
    ),
    new_code_cell(
        """H = itscube.read_thickness(thickness_tif, ds)
boundary = itscube.read_boundary(boundary_csv, ds)
q = itscube.flux_divergence(yearly, H, boundary, upscale=2, column_factor=1.0)
line = itscube.boundary_flux(q, boundary)
for i, t in enumerate(q.time.values):
    integ = float(q.integrated_divergence[i])
    print(f"{str(t)[:4]}: integrated div(Hu) {integ:.3e} m3/yr = {integ * 917 / 1e12:.3f} Gt/yr, "
          f"line integral {float(line[i]):.3e} m3/yr, "
          f"mean dynamic dH/dt {-integ / float(q.area[i]):.2f} m/yr, "
          f"coverage {float(q.coverage[i]):.0%}")

fig, ax = plt.subplots(figsize=(8, 6))
map_panel(ax, q.dynamic_dhdt.isel(time=0), "dynamic dH/dt = -div(H u), 2018",
          cmap="RdBu", diverging=True, vlim=15)
bx, by = boundary.exterior.xy
ax.plot(np.asarray(bx) / 1e3, np.asarray(by) / 1e3, "k");"""
    ),
    new_markdown_cell(
        """## The same as products on disk

The command line writes the documented folders (`strain/<upscale>_<sdate>_<edate>/`,
`track/<sdate>_<edate>/`, `qdiv/<upscale>_<sdate>_<edate>/`) with NetCDF, Cloud-Optimized
GeoTIFFs, figures and a summary:

```bash
itscube strain CUBE --upscale 1 2 4 --start 2018-01-01 --end 2019-12-31 --period year
itscube track CUBE --line X0 Y0 X1 Y1 9 --start 2018-01-01 --end 2019-12-31
itscube qdiv CUBE --thickness Thickness.tif --boundary Boundaries.csv --upscale 2 --period year
```"""
    ),
    new_code_cell(
        """if not USE_REAL_DATA:
    # the sample's analytic glacier: centre-line longitudinal strain rate ~ grad (0.04 /yr)
    # times the seasonal/secular factor (about 1.07 in 2018)
    centre = float(first.sel(upscale=2).longitudinal.sel(**box).mean())
    print(f"centre longitudinal {centre:.4f} /yr vs generator grad {SAMPLE_FIELD.grad} /yr")
    assert 0.9 * SAMPLE_FIELD.grad < centre < 1.25 * SAMPLE_FIELD.grad
    assert (tracks.status.values == "ok").all()
    assert abs(float(q.gauss_residual[0])) < 1e-6 * abs(float(q.face_flux[0])) + 1e-3"""
    ),
]


def write(name: str, cells: list) -> Path:
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.metadata["language_info"] = {"name": "python"}
    path = EXAMPLES / name
    nbformat.write(nb, path)
    return path


if __name__ == "__main__":
    for name, cells in (("01_download.ipynb", DOWNLOAD), ("02_strain_track_flux.ipynb", ANALYSIS)):
        print(write(name, cells))
