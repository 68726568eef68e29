"""Flux divergence: analytic fields, the discrete Gauss theorem, inputs and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pyproj
import pytest
import rioxarray
import shapely.geometry as sg
import xarray as xr

from itscube._datasets import itslive as synthetic
from itscube._datasets.fields import FIELD_DX as DX
from itscube._datasets.fields import FIELD_XC as XC
from itscube._datasets.fields import FIELD_YC as YC
from itscube._datasets.fields import field_dataset, finite
from itscube.errors import InputError, MissingCRSError
from itscube.flux import (
    boundary_flux,
    flux_divergence,
    read_boundary,
    read_thickness,
    to_gt,
)
from tests.helpers import CENTRE_A, one_line_error, run_cli


def thickness_like(ds, fh) -> xr.DataArray:
    X, Y = np.meshgrid(ds.x.values, ds.y.values)
    return xr.DataArray(fh(X, Y).astype("f8"), coords={"y": ds.y, "x": ds.x}, dims=("y", "x"))


@pytest.mark.parametrize("scheme", ["centred", "upwind"])
@pytest.mark.parametrize("descending", [True, False])
def test_constant_thickness_linear_velocity(scheme, descending):
    a, b, c, d = 0.003, 0.001, -0.002, -0.001
    ds = field_dataset(
        lambda X, Y: 150 + a * (X - XC) + b * (Y - YC),
        lambda X, Y: 20 + c * (X - XC) + d * (Y - YC),
        descending=descending,
    )
    H = thickness_like(ds, lambda X, Y: 0 * X + 500.0)
    res = flux_divergence(ds, H, scheme=scheme)
    np.testing.assert_allclose(finite(res["flux_divergence"]), 500 * (a + d), rtol=1e-4)
    np.testing.assert_allclose(finite(res["dynamic_dhdt"]), -500 * (a + d), rtol=1e-4)
    assert np.isnan(res["flux_divergence"].values[0, 0, :]).all()  # outer ring


@pytest.mark.parametrize("scheme", ["centred", "upwind"])
@pytest.mark.parametrize("descending", [True, False])
def test_linear_thickness_uniform_flow(scheme, descending):
    u0, v0, gx, gy = 120.0, -60.0, 0.01, -0.02
    ds = field_dataset(lambda X, Y: 0 * X + u0, lambda X, Y: 0 * X + v0, descending=descending)
    H = thickness_like(ds, lambda X, Y: 400 + gx * (X - XC) + gy * (Y - YC))
    res = flux_divergence(ds, H, scheme=scheme, column_factor=0.9)
    want = 0.9 * (u0 * gx + v0 * gy)
    np.testing.assert_allclose(finite(res["flux_divergence"]), want, rtol=1e-6)


def smooth_case(descending=True):
    ds = field_dataset(
        lambda X, Y: 200 + 80 * np.sin((X - XC) / 900.0) + 0.002 * (Y - YC),
        lambda X, Y: -30 + 40 * np.cos((Y - YC) / 700.0) * np.sin((X - XC) / 1500.0),
        descending=descending,
    )
    H = thickness_like(ds, lambda X, Y: 500 + 100 * np.cos((X - XC) / 1200.0) + 0.01 * (Y - YC))
    return ds, H


@pytest.mark.parametrize("descending", [True, False])
def test_discrete_gauss_theorem_to_round_off(descending):
    ds, H = smooth_case(descending)
    poly = sg.Polygon(
        [
            (XC - 1500, YC - 1000),
            (XC + 900, YC - 1300),
            (XC + 1700, YC + 200),
            (XC + 300, YC + 1400),
            (XC - 1300, YC + 800),
        ]
    )
    for scheme in ("centred", "upwind"):
        res = flux_divergence(ds, H, poly, scheme=scheme)
        integ = float(res["integrated_divergence"][0])
        faces = float(res["face_flux"][0])
        assert abs(integ) > 1e6
        assert integ == pytest.approx(faces, rel=1e-12, abs=1e-6 * abs(integ) * 1e-6)
        assert abs(float(res["gauss_residual"][0])) < 1e-9 * abs(integ)


def test_line_integral_matches_integrated_divergence():
    # a linear flux field: the boundary line integral and the area integral are both exact
    a, d = 0.003, -0.001
    ds = field_dataset(lambda X, Y: 150 + a * (X - XC), lambda X, Y: 20 + d * (Y - YC))
    H = thickness_like(ds, lambda X, Y: 0 * X + 500.0)
    h = DX / 2  # a rectangle along cell faces: the mask is exactly the polygon
    poly = sg.box(XC - 8 * DX - h, YC - 5 * DX - h, XC + 6 * DX + h, YC + 7 * DX + h)
    res = flux_divergence(ds, H, poly)
    line = float(boundary_flux(res, poly)[0])
    area = float(res["area"][0])
    assert area == pytest.approx(poly.area) and float(res["coverage"][0]) == 1.0
    # float32 velocities: ~1e-6 relative
    assert float(res["integrated_divergence"][0]) == pytest.approx(500 * (a + d) * area, rel=2e-5)
    assert line == pytest.approx(float(res["integrated_divergence"][0]), rel=1e-5)
    # a general polygon: equal up to the staircase of cell centres (discretisation)
    ds2, H2 = smooth_case()
    poly2 = sg.Polygon(
        [
            (XC - 1500, YC - 1000),
            (XC + 900, YC - 1300),
            (XC + 1700, YC + 200),
            (XC + 300, YC + 1400),
            (XC - 1300, YC + 800),
        ]
    )
    res2 = flux_divergence(ds2, H2, poly2)
    line2 = float(boundary_flux(res2, poly2)[0])
    assert line2 == pytest.approx(float(res2["integrated_divergence"][0]), rel=0.05)
    assert to_gt(1e12 / 917) == pytest.approx(1.0)


def test_nan_and_upscale():
    ds, H = smooth_case()
    H[10, 12] = np.nan
    res = flux_divergence(ds, H)
    div = res["flux_divergence"].values[0]
    assert np.isnan(div[10, 12]) and np.isnan(div[9, 12]) and np.isnan(div[10, 13])
    assert np.isfinite(div[10, 15])
    poly = sg.box(XC - 2000, YC - 1500, XC + 2000, YC + 1500)
    # a gap inside the boundary: an error by default, never a NaN or a silent sum
    with pytest.raises(InputError, match=r"% of the boundary polygon's area has no velocity"):
        flux_divergence(ds, H, poly)
    part = flux_divergence(ds, H, poly, allow_partial=True)
    full = flux_divergence(ds, H.fillna(500.0), poly)
    cov = float(part["coverage"][0])
    inside = full["mask"].values == 1
    n_in, n_gap = int(inside.sum()), int((~np.isfinite(div) & inside).sum())
    assert 3 <= n_gap <= 5  # the NaN thickness cell and the neighbours sharing its faces
    assert cov == pytest.approx((n_in - n_gap) / n_in, rel=1e-3)
    assert float(part["area"][0]) == pytest.approx(float(full["area"][0]) * (n_in - n_gap) / n_in)
    # Gauss holds exactly on the covered cells
    assert float(part["gauss_residual"][0]) == pytest.approx(0, abs=1e-6)
    valid = np.isfinite(div) & (full["mask"].values == 1)
    assert float(part["integrated_divergence"][0]) == pytest.approx(
        div[valid].sum() * DX * DX, rel=1e-9
    )
    # a polygon running off the grid: the off-grid share counts as missing
    off = sg.box(XC - 1000, YC - 1000, XC + 4000, YC + 1000)
    with pytest.raises(InputError, match="has no velocity or thickness"):
        flux_divergence(ds, H.fillna(500.0), off)
    assert float(flux_divergence(ds, H.fillna(500.0), off, allow_partial=True)["coverage"][0]) < 0.8
    inner = sg.box(XC - 1200, YC - 1200, XC + 1200, YC + 1200)
    coarse = flux_divergence(ds, H.fillna(500.0), inner, upscale=3)
    assert coarse.sizes["x"] == 41 // 3
    assert float(coarse["gauss_residual"][0]) == pytest.approx(0, abs=1e-6)


def test_errors():
    ds = field_dataset(lambda X, Y: 0 * X + 100.0, lambda X, Y: 0 * X, sigma=4.0)
    H = thickness_like(ds, lambda X, Y: 0 * X + 500.0)
    sH = thickness_like(ds, lambda X, Y: 0 * X + 20.0)
    res = flux_divergence(ds, H, thickness_error=sH)
    # s_qx^2 = (500*4)^2 + (100*20)^2 = 8e6, s_qy^2 = (500*4)^2 = 4e6
    want = np.sqrt(2 * 8e6 / (2 * DX) ** 2 + 2 * 4e6 / (2 * DX) ** 2)
    np.testing.assert_allclose(finite(res["flux_divergence_error"]), want, rtol=1e-5)


def test_thickness_reprojected_from_another_crs(tmp_path):
    ds = field_dataset(lambda X, Y: 0 * X + 100.0, lambda X, Y: 0 * X)
    # thickness on a lon/lat grid, defined as a linear function of the cube's x, y
    to_ll = pyproj.Transformer.from_crs(3413, 4326, always_xy=True)
    to_xy = pyproj.Transformer.from_crs(4326, 3413, always_xy=True)
    lon0, lat0 = to_ll.transform(XC, YC)
    lons = np.linspace(lon0 - 0.12, lon0 + 0.12, 160)
    lats = np.linspace(lat0 + 0.06, lat0 - 0.06, 140)
    LON, LAT = np.meshgrid(lons, lats)
    X, Y = to_xy.transform(LON, LAT)
    tif = synthetic.write_geotiff(
        tmp_path / "H_ll.tif", lons, lats, 300 + 0.02 * (X - XC) - 0.01 * (Y - YC), 4326
    )
    H = read_thickness(tif, ds)
    Xc, Yc = np.meshgrid(ds.x.values, ds.y.values)
    want = 300 + 0.02 * (Xc - XC) - 0.01 * (Yc - YC)
    np.testing.assert_allclose(H.values, want, atol=0.5)  # bilinear on a curved grid
    # no CRS: an error unless the user says what it is
    bare = synthetic.write_geotiff(tmp_path / "bare.tif", ds.x.values, ds.y.values, want, None)
    with pytest.raises(MissingCRSError, match="give thickness_crs EPSG"):
        read_thickness(bare, ds)
    np.testing.assert_allclose(read_thickness(bare, ds, crs="EPSG:3413").values, want, rtol=1e-6)
    neg = synthetic.write_geotiff(tmp_path / "neg.tif", ds.x.values, ds.y.values, want - 310, 3413)
    with pytest.warns(UserWarning, match="negative"):
        Hn = read_thickness(neg, ds)
    assert np.isnan(Hn.values).any() and (Hn.values[np.isfinite(Hn.values)] >= 0).all()


def test_boundary_csv_validation(tmp_path):
    ds = field_dataset(lambda X, Y: 0 * X, lambda X, Y: 0 * X)

    def csv(name, text):
        p = tmp_path / name
        p.write_text(text)
        return p

    good = csv(
        "b.csv",
        f"Easting,Northing\n{XC - 500},{YC - 500}\n{XC + 500},{YC - 500}\n{XC},{YC + 500}\n",
    )
    poly = read_boundary(good, ds)
    assert poly.area == pytest.approx(500_000) and poly.exterior.is_ccw
    headerless = csv("n.csv", f"{XC - 500} ,{YC - 500}\n{XC + 500},{YC - 500}\n{XC},{YC + 500}\n")
    assert read_boundary(headerless, ds).area == pytest.approx(500_000)
    cases = {
        "one column": (csv("1.csv", "x\n1\n2\n3\n"), "two coordinate columns"),
        "text": (csv("t.csv", f"x,y\n{XC},{YC}\nabc,{YC}\n{XC},{YC + 9}\n"), "not numbers"),
        "two points": (csv("2.csv", f"x,y\n{XC},{YC}\n{XC + 9},{YC}\n"), "at least 3"),
        "bow tie": (
            csv(
                "bt.csv",
                f"x,y\n{XC},{YC}\n{XC + 900},{YC + 900}\n{XC + 900},{YC}\n{XC},{YC + 900}\n",
            ),
            "not valid",
        ),
        "outside": (csv("o.csv", "x,y\n0,0\n1000,0\n0,1000\n"), "outside the cube"),
    }
    for name, (path, match) in cases.items():
        with pytest.raises(InputError, match=match):
            read_boundary(path, ds)
        assert name


@pytest.fixture(scope="module")
def qdiv_inputs(cubes, tmp_path_factory):
    from itscube import open_cube

    root = tmp_path_factory.mktemp("qdiv-in")
    ds = open_cube(cubes.a_path)
    flat = np.full((ds.sizes["y"], ds.sizes["x"]), 400.0)
    tif = synthetic.write_geotiff(root / "H.tif", ds.x.values, ds.y.values, flat, 3413)
    x0, y0 = CENTRE_A
    b = root / "boundary.csv"
    b.write_text(
        f"x,y\n{x0 - 1500},{y0 - 1500}\n{x0 + 1500},{y0 - 1500}\n{x0 + 1500},"
        f"{y0 + 1500}\n{x0 - 1500},{y0 + 1500}\n"
    )
    return tif, b


def test_qdiv_cli(cubes, qdiv_inputs, tmp_path):
    from tests.helpers import FIELD

    tif, b = qdiv_inputs
    r = run_cli(
        "qdiv",
        cubes.a_path,
        "--thickness",
        tif,
        "--boundary",
        b,
        "--upscale",
        "1",
        "2",
        "--start",
        "2019-01-01",
        "--end",
        "2019-12-31",
        "--per-step",
        "--out",
        tmp_path,
        "--no-progress",
    )
    assert r.exit_code == 0, r.output
    folder = tmp_path / "qdiv" / "1_20190101_20191231"
    assert (tmp_path / "qdiv" / "2_20190101_20191231").is_dir()
    nc = xr.open_dataset(folder / "qdiv_period.nc")
    # constant H = 400 m on the linear test field: div = 400 (a + d)
    # the mean: int16 rounding of the noise-free cube quantises single cells
    assert float(nc["flux_divergence"].mean()) == pytest.approx(400 * (FIELD.a + FIELD.d), rel=0.05)
    tif_out = rioxarray.open_rasterio(folder / "geotiff" / "dynamic_dhdt.tif")
    assert tif_out.rio.crs.to_epsg() == 3413
    summary = json.loads((folder / "summary.json").read_text())
    row = summary["periods"][0]
    assert abs(row["gauss_residual_m3_yr"]) < 1e-9 * abs(row["integrated_divergence_m3_yr"])
    assert abs(row["relative_difference"]) < 0.05
    assert (folder / "fluxes.csv").read_text().startswith("period,layers,area_m2")
    lines = (folder / "flux_timeseries.csv").read_text().splitlines()
    assert len(lines) > 5 and lines[0].startswith("mid_date")
    png = next((folder / "figures").glob("*.png"))
    assert png.stat().st_size > 20_000


def test_qdiv_cli_errors(cubes, qdiv_inputs, tmp_path):
    tif, b = qdiv_inputs

    def qdiv(thickness, boundary, *extra):
        args = ["--thickness", thickness, "--boundary", boundary, *extra, "--out", tmp_path]
        return run_cli("qdiv", cubes.a_path, *args)

    bare = synthetic.write_geotiff(
        tmp_path / "bare.tif", [0.0, 1.0], [1.0, 0.0], np.ones((2, 2)), None
    )
    one_line_error(qdiv(bare, b), match="--thickness-crs")
    one_line_error(qdiv(tmp_path / "nope.tif", b), match="not found")
    bad = tmp_path / "bad.csv"
    bad.write_text("x\n1\n2\n")
    one_line_error(qdiv(tif, bad), match="two coordinate columns")
    one_line_error(qdiv(tif, b, "--column-factor", "3"), match="column-factor")
    assert not (tmp_path / "qdiv").exists()


def test_boundary_in_lonlat_is_projected(tmp_path):
    ds = field_dataset(lambda X, Y: 0 * X, lambda X, Y: 0 * X)
    to_ll = pyproj.Transformer.from_crs(3413, 4326, always_xy=True)
    square = [
        (XC - 600, YC - 600),
        (XC + 600, YC - 600),
        (XC + 600, YC + 600),
        (XC - 600, YC + 600),
    ]
    p = tmp_path / "ll.csv"
    p.write_text(
        "lon,lat\n" + "".join("{:.8f},{:.8f}\n".format(*to_ll.transform(*q)) for q in square)
    )
    poly = read_boundary(p, ds)  # lon/lat header: projected to the cube CRS
    assert poly.area == pytest.approx(1200 * 1200, rel=1e-4)
    q = tmp_path / "plain.csv"  # no header: the first two columns, in the crs given
    q.write_text("".join("{:.8f},{:.8f}\n".format(*to_ll.transform(*c)) for c in square))
    assert read_boundary(q, ds, crs="EPSG:4326").area == pytest.approx(1200 * 1200, rel=1e-4)
    named = tmp_path / "named.csv"  # a header naming no coordinates: an error, not a guess
    named.write_text("a,b\n" + q.read_text())
    with pytest.raises(InputError, match="found a, b"):
        read_boundary(named, ds, crs="EPSG:4326")


def test_qdiv_boundary_past_the_data(cubes, qdiv_inputs, tmp_path):
    """A boundary larger than the cube: an error naming the missing share by default; with
    --allow-partial the covered cells, their coverage in the table, CSV and summary."""
    tif, _ = qdiv_inputs
    x0, y0 = CENTRE_A
    big = tmp_path / "big.csv"
    big.write_text(
        f"x,y\n{x0 - 1500},{y0 - 1500}\n{x0 + 6000},{y0 - 1500}\n{x0 + 6000},"
        f"{y0 + 1500}\n{x0 - 1500},{y0 + 1500}\n"
    )
    args = [
        "qdiv",
        cubes.a_path,
        "--thickness",
        tif,
        "--boundary",
        big,
        "--start",
        "2019-01-01",
        "--end",
        "2019-12-31",
        "--no-progress",
        "--out",
        tmp_path,
    ]
    one_line_error(run_cli(*args), match="of the boundary polygon's area has no velocity")
    assert not (tmp_path / "qdiv").exists()
    r = run_cli(*args, "--allow-partial")
    assert r.exit_code == 0, r.output
    assert "coverage" in r.output and "nan" not in r.output.lower()
    folder = tmp_path / "qdiv" / "1_20190101_20191231"
    row = json.loads((folder / "summary.json").read_text())["periods"][0]
    assert 0.3 < row["coverage"] < 0.7 and np.isfinite(row["integrated_divergence_m3_yr"])
    assert "coverage" in (folder / "fluxes.csv").read_text().splitlines()[0]


def test_thickness_in_km_is_flagged(cubes, tmp_path):
    from itscube import open_cube

    ds = open_cube(cubes.a_path)
    km = synthetic.write_geotiff(
        tmp_path / "H_km.tif",
        ds.x.values,
        ds.y.values,
        np.full((ds.sizes["y"], ds.sizes["x"]), 0.4),
        3413,
    )
    with pytest.warns(UserWarning, match=r"H_km\.tif: the thickest ice is 0\.4, implausible"):
        read_thickness(km, ds)
    metres = synthetic.write_geotiff(
        tmp_path / "H_m.tif",
        ds.x.values,
        ds.y.values,
        np.full((ds.sizes["y"], ds.sizes["x"]), 400.0),
        3413,
    )
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        read_thickness(metres, ds)


def test_flux_headline_carries_its_uncertainty(cubes, qdiv_inputs, tmp_path):
    tif, b = qdiv_inputs
    r = run_cli(
        "qdiv",
        cubes.a_path,
        "--thickness",
        tif,
        "--boundary",
        b,
        "--start",
        "2019-01-01",
        "--end",
        "2019-12-31",
        "--no-progress",
        "--out",
        tmp_path,
    )
    assert r.exit_code == 0, r.output
    row = json.loads((tmp_path / "qdiv" / "1_20190101_20191231" / "summary.json").read_text())[
        "periods"
    ][0]
    err = row["integrated_divergence_error_gt_yr"]
    assert err > 0
    assert row["integrated_divergence_low_gt_yr"] == pytest.approx(
        row["integrated_divergence_gt_yr"] - err
    )
    assert f"± {err:.4f}" in r.output.replace("\n", " ")
    assert str(tmp_path / "qdiv" / "1_20190101_20191231") in r.output.splitlines()


def _stretching_stack(n=6):
    times = [f"2019-{m:02d}-01" for m in range(1, n + 1)]
    ds = field_dataset(lambda X, Y: 150 + 0.003 * (X - XC), lambda X, Y: 0 * X - 10.0, times=times)
    ds["vx"] = ds["vx"] * xr.DataArray(np.linspace(1.0, 1.5, n), dims="mid_date")
    return ds


def test_flux_divergence_is_lazy_on_dask_and_equals_the_eager_result():
    ds = _stretching_stack()
    H = thickness_like(ds, lambda X, Y: 0 * X + 500.0)
    poly = sg.box(XC - 1260, YC - 900, XC + 1260, YC + 900)  # on cell edges
    eager = flux_divergence(ds, H, poly)
    lazy = flux_divergence(ds.chunk({"mid_date": 2}), H, poly)
    for name in ("flux_divergence", "integrated_divergence", "face_flux", "coverage"):
        assert lazy[name].chunks is not None, name  # nothing computed yet
        np.testing.assert_allclose(lazy[name].values, eager[name].values, rtol=1e-6)
    # d(H u)/dx = 500 * 0.003 * scale, over the whole box
    want = 500 * 0.003 * np.linspace(1.0, 1.5, 6) * float(eager["area"][0])
    np.testing.assert_allclose(eager["integrated_divergence"].values, want, rtol=1e-4)


def test_partial_coverage_error_is_raised_when_a_lazy_result_is_computed():
    ds = _stretching_stack()
    ds["vx"][3, 14:17, 19:22] = np.nan  # a gap inside the boundary in one layer
    H = thickness_like(ds, lambda X, Y: 0 * X + 500.0)
    poly = sg.box(XC - 1260, YC - 900, XC + 1260, YC + 900)  # on cell edges
    lazy = flux_divergence(ds.chunk({"mid_date": 2}), H, poly)  # no error yet: nothing read
    with pytest.raises(InputError, match="boundary polygon's area has no velocity"):
        lazy["integrated_divergence"].compute()
    ok = flux_divergence(ds.chunk({"mid_date": 2}), H, poly, allow_partial=True).compute()
    assert float(ok["coverage"][3]) < 1.0 and (ok["coverage"].values[[0, 1, 2, 4, 5]] == 1).all()


def test_per_layer_flux_series_streams_and_matches_each_layer():
    from itscube.products.flux import flux_series

    ds = _stretching_stack()
    H = thickness_like(ds, lambda X, Y: 0 * X + 500.0)
    poly = sg.box(XC - 1260, YC - 900, XC + 1260, YC + 900)  # on cell edges
    series = flux_series(ds.chunk({"mid_date": 1}), H, poly)
    assert series["integrated_divergence"].chunks == ((1,) * 6,)  # one task per layer
    series = series.compute()
    for i in range(6):
        one = flux_divergence(ds.isel(mid_date=[i]), H, poly)
        assert float(series["integrated_divergence"][i]) == pytest.approx(
            float(one["integrated_divergence"][0]), rel=1e-9
        )
    np.testing.assert_allclose(
        series["line_integral_flux"], series["integrated_divergence"], rtol=0.02
    )


@pytest.mark.slow
def test_qdiv_common_layers_averages_fewer_pairs_and_changes_the_maps(cubes, qdiv_inputs, tmp_path):
    tif, b = qdiv_inputs
    out = {}
    for name, extra in (("all", []), ("common", ["--common-layers"])):
        r = run_cli(
            "qdiv", cubes.a_path, "--thickness", tif, "--boundary", b, "--start", "2019-01-01",
            "--end", "2019-12-31", "--out", tmp_path / name, "--no-progress", *extra,
        )  # fmt: skip
        assert r.exit_code == 0, r.output
        folder = tmp_path / name / "qdiv" / "1_20190101_20191231"
        out[name] = (
            json.loads((folder / "summary.json").read_text()),
            xr.open_dataset(folder / "qdiv_period.nc")["flux_divergence"].load(),
        )
    (s_all, d_all), (s_common, d_common) = out["all"], out["common"]
    assert s_common["common_layers"] and not s_all["common_layers"]
    assert 0 < s_common["periods"][0]["layers"] < s_all["periods"][0]["layers"]
    assert not np.allclose(d_all.values, d_common.values, equal_nan=True)
