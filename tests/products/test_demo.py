"""``itscube demo``: every product exists and opens, and its key numbers match the analytic
glacier the sample was generated from (:data:`itscube.sample.SAMPLE_FIELD`).

Expected values are computed here from the generator's field and the layer metadata of the
downloaded cube (dates, errors), never from itscube's own products.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rioxarray  # noqa: F401
import xarray as xr

from itscube import open_cube
from itscube._datasets.itslive import decimal_year, glacier_thickness
from itscube.sample import SAMPLE_CENTRE, SAMPLE_FIELD
from tests.helpers import DrawnFigures, one_line_error, record_figures, run_cli

pytestmark = pytest.mark.slow

CX, CY = SAMPLE_CENTRE
WINDOW = "20180101_20191231"
YEAR1 = "20180101-20181231"


DRAWN = DrawnFigures()
"""What the demo's figures drew (filled by the ``demo`` fixture)."""


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "out"
    with pytest.MonkeyPatch.context() as mp:
        drawn = record_figures(mp)
        result = run_cli("demo", "--out", out, "--no-progress")
    DRAWN.clear()
    DRAWN.update(drawn)
    assert result.exit_code == 0, result.output
    return out, result.output


def _store(out: Path, kind: str) -> Path:
    (store,) = sorted((out / "download").glob(f"{kind}_*/{kind}_EPSG3413.zarr"))
    return store


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", path
    return struct.unpack(">II", head[16:24])


def _factor_mean(t1: float, t2: float, n: int = 200) -> float:
    """Time-mean of the generator's seasonal/secular speed factor over [t1, t2]."""
    ts = t1 + (np.arange(n) + 0.5) / n * (t2 - t1)
    return float(np.mean([SAMPLE_FIELD.factor(t) for t in ts]))


def _factor_2018() -> float:
    """The generator's speed factor averaged over calendar 2018 (the truth of the 2018
    period mean)."""
    return _factor_mean(2018.0, 2019.0, n=4000)


def _true_tracks(x, y, t_start, t_end, step_hours: float = 6.0):
    """Positions reached by RK4 on the generator's analytic field with 6-hour steps (time
    in years of 365.25 days, as the tracker counts it; the field's phase from the date)."""
    n = int(np.ceil((t_end - t_start) / np.timedelta64(int(step_hours * 3600), "s")))
    h_ns = (t_end - t_start) / n
    h = h_ns / np.timedelta64(1, "D") / 365.25
    x, y = np.array(x, "f8"), np.array(y, "f8")

    def f(px, py, t):
        return SAMPLE_FIELD(px, py, float(decimal_year(np.array([t]))[0]))

    for i in range(n):
        t = t_start + i * h_ns
        k1 = f(x, y, t)
        k2 = f(x + h / 2 * k1[0], y + h / 2 * k1[1], t + h_ns / 2)
        k3 = f(x + h / 2 * k2[0], y + h / 2 * k2[1], t + h_ns / 2)
        k4 = f(x + h * k3[0], y + h * k3[1], t + h_ns)
        x = x + h / 6 * (k1[0] + 2 * k2[0] + 2 * k3[0] + k4[0])
        y = y + h / 6 * (k1[1] + 2 * k2[1] + 2 * k3[1] + k4[1])
    return x, y


def test_demo_prints_what_it_made(demo):
    _, text = demo
    assert "itscube demo finished in" in text
    for product in ("subyearly cube", "annual cube", "strain rates, upscale 2", "upscale 4"):
        assert product in text
    assert "Gt/yr" in text and "displacement" in text and "overview.png" in text


def test_demo_downloaded_through_http(demo):
    out, _ = demo
    for kind, tdim in (("subyearly", "mid_date"), ("annual", "time")):
        store = _store(out, kind)
        prov = json.loads((store.parent / "provenance.json").read_text())
        assert prov["complete"] and prov["catalog"].startswith("http://127.0.0.1:")
        assert all(src["url"].startswith("http://127.0.0.1:") for src in prov["sources"])
        ds = open_cube(store)
        assert ds.rio.crs.to_epsg() == 3413
        times = ds[tdim].values
        assert times.min() >= np.datetime64("2016-01-01") and times.max() <= np.datetime64(
            "2022-01-01"
        )
    assert open_cube(_store(out, "subyearly")).sizes["mid_date"] > 150


EXPECTED_FILES = [
    *(f"strain/{k}_{WINDOW}/{f}" for k in (2, 4) for f in ("strain_period.nc", "summary.json")),
    *(
        f"strain/{k}_{WINDOW}/geotiff/{c}.tif"
        for k in (2, 4)
        for c in ("exx", "eyy", "exy", "effective", "e1", "e2", "longitudinal", "shear")
    ),
    *(
        f"strain/{k}_{WINDOW}/figures/{f}_{YEAR1}.png"
        for k in (2, 4)
        for f in ("effective", "principal", "flow_aligned")
    ),
    f"track/{WINDOW}/tracks.gpkg",
    f"track/{WINDOW}/tracks.csv",
    f"track/{WINDOW}/tracks.nc",
    f"track/{WINDOW}/displacement_x.tif",
    f"track/{WINDOW}/displacement.tif",
    f"track/{WINDOW}/displacement_status.tif",
    f"track/{WINDOW}/figures/tracks.png",
    f"track/{WINDOW}/figures/displacement.png",
    f"qdiv/2_{WINDOW}/qdiv_period.nc",
    f"qdiv/2_{WINDOW}/fluxes.csv",
    f"qdiv/2_{WINDOW}/geotiff/dynamic_dhdt.tif",
    f"qdiv/2_{WINDOW}/geotiff/thickness.tif",
    f"qdiv/2_{WINDOW}/figures/dynamic_dhdt_{YEAR1}.png",
    "overview.png",
]


def test_demo_files_exist_and_open(demo):
    out, _ = demo
    for rel in EXPECTED_FILES:
        path = out / rel
        assert path.is_file(), rel
        if path.suffix == ".tif":
            with xr.open_dataarray(path, engine="rasterio") as da:
                assert da.rio.crs.to_epsg() == 3413, rel
                assert np.isfinite(da.values).mean() > 0.3, rel
        elif path.suffix == ".nc":
            with xr.open_dataset(path) as ds:
                assert ds.sizes.get("x", 0) > 10 or ds.sizes.get("point", 0) == 9, rel
                assert ds.attrs["Conventions"].startswith("CF"), rel
                # the sample is synthetic, and its products say so
                assert "synthetic" in ds.attrs["source"] and "NASA" not in ds.attrs["source"]
        elif path.suffix == ".png":
            w, h = _png_size(path)
            assert 400 <= w <= 4000 and 300 <= h <= 4000, (rel, w, h)
            assert 20_000 < path.stat().st_size < 3_000_000, rel
        elif path.suffix == ".json":
            doc = json.loads(path.read_text())
            assert doc
            if path.name == "summary.json":
                assert doc["source_data"].startswith("synthetic"), rel
    import pyogrio

    layers = {name for name, _ in pyogrio.list_layers(out / f"track/{WINDOW}/tracks.gpkg")}
    assert layers == {"tracks", "points"}
    leftovers = [p for p in out.rglob("*") if ".tmp" in p.name or p.name.endswith(".part")]
    assert not leftovers


def test_demo_figures_draw_the_products(demo):
    """What the figures drew is what the files hold: the first year's effective strain
    map (k = 2) and the tracks, point for point."""
    out, _ = demo
    res = xr.open_dataset(out / f"strain/2_{WINDOW}/strain_period.nc")
    want = res["effective"].isel({res["effective"].dims[0]: 0}).transpose("y", "x").values
    want = want[::-1] if res.y.values[0] < res.y.values[-1] else want
    maps = [
        im
        for ax in DRAWN.find(f"2_{WINDOW}/figures/effective_{YEAR1}.png")
        for im in ax["images"]
        if im.ndim == 2
    ]
    shown = np.ma.filled(np.ma.asarray(maps[0]).astype("f8"), np.nan)
    np.testing.assert_allclose(shown, want, rtol=1e-6, equal_nan=True)
    assert np.isfinite(shown).mean() > 0.5
    tracks = xr.open_dataset(out / f"track/{WINDOW}/tracks.nc")
    segments = DRAWN.find("tracks.png")[0]["segments"]
    drawn_tracks = [p for p in range(tracks.sizes["point"]) if np.isfinite(tracks.x[p]).sum() > 1]
    assert len(segments) == len(drawn_tracks) > 0
    for segs, p in zip(segments, drawn_tracks, strict=True):
        ok = np.isfinite(tracks.x.values[p])
        np.testing.assert_allclose(segs[:, 1, 0], tracks.x.values[p][ok][1:] / 1e3)
        np.testing.assert_allclose(segs[:, 1, 1], tracks.y.values[p][ok][1:] / 1e3)


def test_demo_strain_matches_the_generator(demo):
    """Centre-line longitudinal strain rate = grad x (weighted seasonal factor), 1/yr."""
    out, _ = demo
    f = _factor_2018()
    with xr.open_dataset(out / f"strain/2_{WINDOW}/strain_period.nc") as st:
        region = st.isel(time=0).sel(x=slice(CX - 2000, CX + 3000), y=slice(CY + 600, CY - 600))
        longitudinal = float(region.longitudinal.mean())
        transverse = float(region.transverse.mean())
        eta = (region.y.values - CY) / SAMPLE_FIELD.half_width
    assert longitudinal == pytest.approx(SAMPLE_FIELD.grad * f, rel=0.03)
    expected_t = float(np.mean(-f * SAMPLE_FIELD.converge * (1 - 5 * eta**4)))
    assert transverse == pytest.approx(expected_t, rel=0.1)


def test_demo_track_matches_the_generator(demo):
    """All nine tracks end within 1 % of the displacement integrated finely from the
    generator's own field (the span-aware fit; the old in-year pair means ran 4-5 % long)."""
    out, _ = demo
    with xr.open_dataset(out / f"track/{WINDOW}/tracks.nc") as tr:
        tr = tr.load()
    x0, y0 = tr.x.values[:, 0], tr.y.values[:, 0]
    xt, yt = _true_tracks(x0, y0, tr.time.values[0], tr.time.values[-1])
    true_d = np.hypot(xt - x0, yt - y0)
    np.testing.assert_allclose(tr.displacement.values, true_d, rtol=0.01)
    np.testing.assert_allclose(tr.displacement_y.values, yt - y0, atol=0.01 * true_d.max())
    centre = int(np.argmin(np.abs(y0 - CY)))
    assert abs(float(tr.displacement_y[centre])) < 5.0
    assert set(tr.status.values.astype(str)) == {"ok"}
    assert tr.attrs["itscube_estimator"] == "fit"


def test_demo_flux_matches_the_generator(demo):
    out, _ = demo
    f = _factor_2018()
    with xr.open_dataset(out / f"qdiv/2_{WINDOW}/qdiv_period.nc") as q:
        q = q.isel(time=0).load()
    # the thickness template is the generator's thickness, reprojected onto the cube grid
    X, Y = np.meshgrid(q.x.values, q.y.values)
    h_true = glacier_thickness(SAMPLE_FIELD, X, Y)
    on_ice = h_true > 50
    assert np.nanmax(np.abs(q.thickness.values - h_true)[on_ice]) < 5.0
    # below the head the stretching ice thins fast: -div(H u) from the analytic H and u
    region = q.sel(x=slice(CX - 4500, CX - 3300), y=slice(CY + 400, CY - 400))
    Xr, Yr = np.meshgrid(region.x.values, region.y.values)

    def flux(x, y):
        u, v = SAMPLE_FIELD(x, y, 2018.0)
        scale = f / SAMPLE_FIELD.factor(2018.0) * glacier_thickness(SAMPLE_FIELD, x, y)
        return u * scale, v * scale

    e = 1.0
    div = (flux(Xr + e, Yr)[0] - flux(Xr - e, Yr)[0]) / (2 * e) + (
        flux(Xr, Yr + e)[1] - flux(Xr, Yr - e)[1]
    ) / (2 * e)
    assert float(region.dynamic_dhdt.mean()) == pytest.approx(-div.mean(), rel=0.05)
    # the discrete Gauss theorem and the boundary line integral
    table = pd.read_csv(out / f"qdiv/2_{WINDOW}/fluxes.csv")
    row = table.iloc[0]
    # the headline against the generator's flux through the polygon (analytic H and 2018-mean
    # u, integrated along the densified boundary), within its ± and 10 % (the mask of cell
    # centres is not the polygon)
    truth = _analytic_boundary_flux(out, f)
    assert row.integrated_divergence_gt_yr == pytest.approx(truth, rel=0.1)
    assert abs(row.integrated_divergence_gt_yr - truth) < 3 * row.integrated_divergence_error_gt_yr
    assert abs(row.gauss_residual_m3_yr) < 1e-6 * abs(row.face_flux_m3_yr) + 1e-3
    assert abs(row.relative_difference) < 0.05


def _analytic_boundary_flux(out: Path, f: float) -> float:
    """Gt/yr of ice through the sample's boundary polygon, from the generator's H and u."""
    import shapely

    from itscube.io.vector import read_csv_points
    from itscube.sample import ensure_sample

    pts, _ = read_csv_points(Path(ensure_sample().boundary))
    ring = shapely.geometry.polygon.orient(shapely.Polygon(pts), 1.0).exterior
    c = np.asarray(shapely.segmentize(ring, 1.0).coords)
    mid, seg = 0.5 * (c[1:] + c[:-1]), c[1:] - c[:-1]
    u, v = SAMPLE_FIELD(mid[:, 0], mid[:, 1], 2018.0)
    scale = f / SAMPLE_FIELD.factor(2018.0) * glacier_thickness(SAMPLE_FIELD, mid[:, 0], mid[:, 1])
    return float(np.sum(scale * (u * seg[:, 1] - v * seg[:, 0])) * 917 / 1e12)


def test_demo_out_must_be_a_folder(tmp_path):
    (tmp_path / "file").write_text("x")
    one_line_error(run_cli("demo", "--out", tmp_path / "file"), match="is a file")


def test_demo_draws_the_tracks_over_the_clear_sample_scene(demo):
    """The sample's STAC API offers a cloudy scene near the start date and a clear one later:
    the background is the clear one, through the same search as on Earth Search."""
    out, _ = demo
    summary = json.loads((out / f"track/{WINDOW}/summary.json").read_text())
    assert summary["background"]["scene"] == "S2A_SAMPLE_20180415"
    assert "Copernicus" in summary["background"]["licence"]
