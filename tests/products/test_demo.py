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
from tests.conftest import one_line_error, run_cli

pytestmark = pytest.mark.slow

CX, CY = SAMPLE_CENTRE
WINDOW = "20180101_20191231"
YEAR1 = "20180101-20181231"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "out"
    result = run_cli("demo", "--out", out, "--no-progress")
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


def _weighted_factor(ds: xr.Dataset, select: np.ndarray) -> float:
    """Inverse-variance weighted mean factor of the selected image pairs (ignoring gaps)."""
    t1 = decimal_year(ds.acquisition_date_img1.values[select])
    t2 = decimal_year(ds.acquisition_date_img2.values[select])
    f = np.array([_factor_mean(a, b) for a, b in zip(t1, t2, strict=True)])
    w = 1.0 / np.maximum(ds.vx_error.values[select], 0.1) ** 2
    return float((w * f).sum() / w.sum())


def _factor_2018(out: Path) -> float:
    """Weighted factor of the 2018 period mean (pairs whose ``mid_date`` is in 2018)."""
    sub = open_cube(_store(out, "subyearly"))
    t = sub.mid_date.values
    in_2018 = (t >= np.datetime64("2018-01-01")) & (t < np.datetime64("2019-01-01"))
    return _weighted_factor(sub, in_2018)


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


def test_demo_strain_matches_the_generator(demo):
    """Centre-line longitudinal strain rate = grad x (weighted seasonal factor), 1/yr."""
    out, _ = demo
    f = _factor_2018(out)
    with xr.open_dataset(out / f"strain/2_{WINDOW}/strain_period.nc") as st:
        region = st.isel(time=0).sel(x=slice(CX - 2000, CX + 3000), y=slice(CY + 600, CY - 600))
        longitudinal = float(region.longitudinal.mean())
        transverse = float(region.transverse.mean())
        eta = (region.y.values - CY) / SAMPLE_FIELD.half_width
    assert longitudinal == pytest.approx(SAMPLE_FIELD.grad * f, rel=0.03)
    expected_t = float(np.mean(-f * SAMPLE_FIELD.converge * (1 - 5 * eta**4)))
    assert transverse == pytest.approx(expected_t, rel=0.1)


def test_demo_track_matches_the_generator(demo):
    """The centre-line point moves as x' = F_year (u_head + grad (x - x_head)), i.e.
    u(x1) = u(x0) exp(grad sum F_year), with F_year from the pairs inside each year."""
    out, _ = demo
    sub = open_cube(_store(out, "subyearly"))
    a, b = sub.acquisition_date_img1.values, sub.acquisition_date_img2.values
    total = 0.0
    for year in (2018, 2019):
        inside = (a >= np.datetime64(f"{year}-01-01")) & (b < np.datetime64(f"{year + 1}-01-01"))
        total += _weighted_factor(sub, inside)
    with xr.open_dataset(out / f"track/{WINDOW}/tracks.nc") as tr:
        centre = int(np.argmin(np.abs(tr.y.values[:, 0] - CY)))
        x0 = float(tr.x[centre, 0])
        u0 = SAMPLE_FIELD.u_head + SAMPLE_FIELD.grad * (x0 - SAMPLE_FIELD.x_head)
        expected = (u0 * np.exp(SAMPLE_FIELD.grad * total) - u0) / SAMPLE_FIELD.grad
        assert float(tr.displacement_x[centre]) == pytest.approx(expected, rel=0.03)
        assert abs(float(tr.displacement_y[centre])) < 5.0
        # the ice converges toward the centre line symmetrically (vy = -converge (y - y_c) ...)
        dy = tr.displacement_y.values
        assert (dy[: centre - 1] > 10).all() and (dy[centre + 2 :] < -10).all()
        np.testing.assert_allclose(dy, -dy[::-1], atol=6.0)
        assert set(tr.status.values.astype(str)) == {"ok"}


def test_demo_flux_matches_the_generator(demo):
    out, _ = demo
    f = _factor_2018(out)
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
    assert abs(row.gauss_residual_m3_yr) < 1e-6 * abs(row.face_flux_m3_yr) + 1e-3
    assert abs(row.relative_difference) < 0.05


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
