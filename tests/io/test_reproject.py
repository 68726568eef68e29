"""Reprojection with vectors turned: checked against the projections' own analytic
derivatives (pyproj's ``get_factors``), not against the code's finite differences."""

from __future__ import annotations

import numpy as np
import pyproj
import pytest

from itscube import open_cube
from itscube._datasets.itslive import make_layers, make_subyearly_cube
from itscube.io.reproject import jacobian, mosaic, reproject_cube, target_grid

LONLAT = pyproj.CRS(4326)

pytestmark = pytest.mark.slow  # half a minute or more: outside the fast lane


def _derivs(crs, lon, lat):
    """d(x, y)/d(lon, lat) of a projection, analytic (PROJ's factors)."""
    f = pyproj.Proj(crs).get_factors(lon, lat)
    return (
        np.array([[f.dx_dlam, f.dx_dphi], [f.dy_dlam, f.dy_dphi]]).transpose(2, 3, 0, 1)
        if np.ndim(lon) == 2
        else np.array([[f.dx_dlam, f.dx_dphi], [f.dy_dlam, f.dy_dphi]])
    )


def _truth_jacobian(src, dst, lon, lat):
    """d(target)/d(source) = D_dst D_src^-1 from the analytic derivatives."""
    return _derivs(dst, lon, lat) @ np.linalg.inv(_derivs(src, lon, lat))


@pytest.mark.parametrize(
    ("src", "dst", "lon", "lat"),
    [(32605, 3338, -150.3, 61.0), (32606, 3338, -149.7, 61.0), (3413, 32623, -47.5, 69.0),
     (32623, 3413, -42.0, 66.0), (3031, 32719, -70.0, -75.0)],
)  # fmt: skip
def test_jacobian_equals_the_projections_derivatives(src, dst, lon, lat):
    x, y = pyproj.Transformer.from_crs(LONLAT, src, always_xy=True).transform(lon, lat)
    j = np.array(jacobian(src, dst, np.array([x]), np.array([y]))).reshape(2, 2)
    truth = _truth_jacobian(src, dst, lon, lat)
    np.testing.assert_allclose(j, truth, atol=2e-6)
    turn = np.degrees(np.arctan2(j[1, 0], j[0, 0]))
    assert abs(turn) > 0.1, "the axes turn: a test of rotation, not of identity"


def test_target_grid_is_aligned():
    x, y = target_grid((100.0, -250.0, 1000.0, 130.0), 120.0)
    assert x[0] == 60.0 and x[-1] == 1020.0 and y[0] == 180.0 and y[-1] == -300.0
    assert np.all(np.diff(x) == 120) and np.all(np.diff(y) == -120)


# a linear field defined in Alaska Albers, stored in two UTM zones as the archive would
X0, Y0 = pyproj.Transformer.from_crs(LONLAT, 3338, always_xy=True).transform(-150.0, 61.0)


def _truth(X, Y):
    return 400.0 + 0.02 * (X - X0), -250.0 + 0.015 * (Y - Y0)


def _field_in(epsg, target=3338, truth=None):
    """The target's linear field as a cube in ``epsg`` stores it: J(source <- target) v."""
    truth = truth or _truth
    to_ll = pyproj.Transformer.from_crs(epsg, LONLAT, always_xy=True)
    to_t = pyproj.Transformer.from_crs(LONLAT, target, always_xy=True)

    def field(x, y, _t):
        lon, lat = to_ll.transform(x, y)
        vt = np.stack(truth(*to_t.transform(lon, lat)), axis=-1)[..., None]
        m = _derivs(epsg, lon, lat) @ np.linalg.inv(_derivs(target, lon, lat))
        vs = (m @ vt)[..., 0]
        return vs[..., 0], vs[..., 1]

    return field


@pytest.fixture(scope="module")
def two_zones(tmp_path_factory):
    root = tmp_path_factory.mktemp("zones")
    cubes = []
    layers = make_layers(3, "2018-01-01", "2019-12-31", seed=3)  # the same pairs in both
    for epsg, lon in ((32605, -150.03), (32606, -149.97)):  # overlapping at the seam
        cx, cy = pyproj.Transformer.from_crs(LONLAT, epsg, always_xy=True).transform(lon, 61.0)
        path = root / f"{epsg}.zarr"
        make_subyearly_cube(path, _field_in(epsg), epsg=epsg, centre=(cx, cy), shape=(70, 70),
                            layers=layers, noise=False, gap_share=0.0, seed=epsg)  # fmt: skip
        cubes.append(open_cube(path))
    cubes = _Cubes(cubes)
    cubes.paths = [str(root / "32605.zarr"), str(root / "32606.zarr")]
    return cubes


class _Cubes(list):
    paths: list[str]


def _errors(cubes, rotate):
    a, b = cubes
    bounds = (X0 - 5000, Y0 - 3000, X0 + 5000, Y0 + 3000)  # across the zone boundary
    x, y = target_grid(bounds, 120.0)
    out = [reproject_cube(c, "EPSG:3338", x, y, rotate=rotate) for c in (a, b)]
    m = mosaic(out, "mid_date").compute()
    X, Y = np.meshgrid(x, y)
    tx, ty = _truth(X, Y)
    ex = m.vx.values - tx
    ey = m.vy.values - ty
    return m, np.abs(np.concatenate([ex.ravel(), ey.ravel()]))


def test_linear_field_across_two_utm_zones_is_recovered(two_zones):
    m, err = _errors(two_zones, rotate=True)
    assert np.isfinite(err).all(), "no gap at the seam: every pixel of the area has a value"
    assert np.percentile(err, 99) < 1.0, np.percentile(err, 99)
    # v is the norm of the turned components
    np.testing.assert_allclose(m.v.values, np.hypot(m.vx.values, m.vy.values), rtol=1e-5)
    _, plain = _errors(two_zones, rotate=False)
    assert np.percentile(plain, 99) > 10.0, "without turning the vectors the test must fail"


def test_mosaic_is_continuous_across_the_seam(two_zones):
    m, _ = _errors(two_zones, rotate=True)
    vx = m.vx.values[0]
    steps = np.abs(np.diff(vx, axis=1))
    # the truth changes by 0.02 * 120 = 2.4 m/yr per column; a seam would jump by the turn
    assert steps.max() < 2.4 + 1.5, steps.max()
    assert len(np.unique(m.x.values)) == m.sizes["x"], "no double column"


def test_download_into_one_store_of_the_target_crs(two_zones, tmp_path):
    from itscube import bbox_area, download

    area = bbox_area(-150.06, 60.985, -149.94, 61.015)
    wanted = ["vx", "vy", "v", "v_error", "vx_error", "vy_error", "date_dt", "vx_stable_shift"]
    res = download(area, urls=_paths(two_zones), out=tmp_path, out_crs="EPSG:3338",
                   variables=wanted)  # fmt: skip
    assert res.folder.name.endswith("_EPSG3338") and len(res.stores) == 1
    ds = open_cube(res.stores[0])
    assert ds.rio.crs.to_epsg() == 3338 and ds.sizes["mid_date"] == 3
    assert np.all(np.diff(ds.x.values) == 120.0) and np.all(ds.x.values % 120 == 60)
    X, Y = np.meshgrid(ds.x.values, ds.y.values)
    tx, ty = _truth(X, Y)
    err = np.abs(np.concatenate([(ds.vx.values - tx).ravel(), (ds.vy.values - ty).ravel()]))
    assert np.isfinite(err).all()
    assert np.percentile(err, 99) < 1.0, np.percentile(err, 99)
    import json

    prov = json.loads(res.provenance.read_text())
    assert prov["reprojection"]["sources"] == ["EPSG:32605", "EPSG:32606"]
    axes = {str(v) for v in ds.data_vars if str(v).startswith(("vx", "vy"))}
    assert axes <= {"vx", "vy", "vx_error", "vy_error"}, "nothing left along the source axes"
    assert any("not reprojected" in n and "vx_stable_shift" in n for n in prov["notes"])
    assert not (res.folder / ".partial").exists()
    again = download(area, urls=_paths(two_zones), out=tmp_path, out_crs="EPSG:3338",
                     variables=wanted)  # fmt: skip
    assert again.already_complete


def _paths(cubes):
    return cubes.paths


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"out_crs": "EPSG:999999"}, "is not a CRS"),
        ({"out_crs": "EPSG:4326"}, "in degrees; give a resolution"),
        ({"out_crs": "EPSG:3338", "resolution": 5}, "finer than a tenth"),
        ({"out_crs": "EPSG:3031"}, "cannot be represented in EPSG:3031"),
    ],
)
def test_bad_targets_say_what_to_do(kwargs, match, tmp_path):
    from itscube import bbox_area, download
    from itscube.errors import InputError

    area = bbox_area(-150.06, 60.985, -149.94, 61.015)
    with pytest.raises(InputError, match=match):
        download(area, urls=["/nowhere.zarr"], out=tmp_path, **kwargs)
    assert not list(tmp_path.iterdir()), "nothing written"


@pytest.mark.parametrize(
    ("src", "dst", "lon", "lat"),
    [(3413, 32622, -53.0, 69.0), (32622, 3413, -53.0, 69.0), (3031, 32719, -70.0, -75.0)],
)
def test_polar_stereographic_and_utm_both_ways(src, dst, lon, lat, tmp_path):
    cx, cy = pyproj.Transformer.from_crs(LONLAT, dst, always_xy=True).transform(lon, lat)

    def truth(X, Y):
        return 800.0 + 0.01 * (X - cx), 300.0 - 0.02 * (Y - cy)

    sx, sy = pyproj.Transformer.from_crs(LONLAT, src, always_xy=True).transform(lon, lat)
    make_subyearly_cube(tmp_path / "c.zarr", _field_in(src, dst, truth), epsg=src,
                        centre=(sx, sy), shape=(70, 70), n_layers=2, noise=False,
                        gap_share=0.0)  # fmt: skip
    x, y = target_grid((cx - 2500, cy - 2500, cx + 2500, cy + 2500), 120.0)
    out = reproject_cube(open_cube(tmp_path / "c.zarr"), f"EPSG:{dst}", x, y).compute()
    tx, ty = truth(*np.meshgrid(x, y))
    err = np.abs(np.concatenate([(out.vx.values - tx).ravel(), (out.vy.values - ty).ravel()]))
    assert np.isfinite(err).all() and np.percentile(err, 99) < 1.0
    plain = reproject_cube(open_cube(tmp_path / "c.zarr"), f"EPSG:{dst}", x, y, rotate=False)
    miss = np.abs(plain.vx.values - tx)
    assert np.nanpercentile(miss, 99) > 2.0, "the turn matters here"


def test_tracks_across_the_seam_follow_the_analytic_field(two_zones, tmp_path):
    """Points tracked on the mosaic cross the zone boundary as the field says: for the
    steady linear field of _truth, X(t) - X0 + 20000 = (X(0) - X0 + 20000) exp(0.02 t)."""
    from itscube import bbox_area, download
    from itscube.track import track

    area = bbox_area(-150.06, 60.985, -149.94, 61.015)
    res = download(area, urls=_paths(two_zones), out=tmp_path, out_crs="EPSG:3338")
    ds = open_cube(res.stores[0])
    seeds = np.array([[X0 - 200.0, Y0 + 200.0], [X0 - 300.0, Y0 - 300.0]])  # west of the seam
    out = track(ds, seeds, "2018-03-01", "2019-03-01", dt_days=5, steady=True,
                estimator="pair-mean")  # fmt: skip
    years = float((out.time.values[-1] - out.time.values[0]) / np.timedelta64(1, "D")) / 365.25
    tx = X0 - 20000 + (seeds[:, 0] - X0 + 20000) * np.exp(0.02 * years)
    ty = Y0 + 250 / 0.015 + (seeds[:, 1] - Y0 - 250 / 0.015) * np.exp(0.015 * years)
    x_end, y_end = out.x.values[:, -1], out.y.values[:, -1]
    assert (x_end > X0).all(), "the points crossed the zone boundary (near X0)"
    np.testing.assert_allclose(x_end, tx, atol=2.0)
    np.testing.assert_allclose(y_end, ty, atol=2.0)


def test_open_cube_in_another_crs(two_zones, tmp_path):
    ds = open_cube(_paths(two_zones)[0], out_crs="EPSG:3338")
    assert ds.rio.crs.to_epsg() == 3338 and np.all(ds.x.values % 120 == 60)
    X, Y = np.meshgrid(ds.x.values, ds.y.values)
    tx, _ = _truth(X, Y)
    err = np.abs(ds.vx.values[0] - tx)
    assert np.nanpercentile(err, 99) < 1.0 and np.isfinite(err).mean() > 0.5


def test_anisotropic_errors_go_through_the_matrix():
    """Per-pixel errors of 10 (x) and 1 (y) m/yr, turned by about 108 degrees (UTM 5N to
    polar stereographic north): the target's
    x error mixes in the y error by the matrix's squares, checked by Monte Carlo."""
    import xarray as xr

    cx, cy = pyproj.Transformer.from_crs(LONLAT, 32605, always_xy=True).transform(-153.0, 61.0)
    xs, ys = cx + 120.0 * np.arange(-5, 6), cy - 120.0 * np.arange(-5, 6)
    rng = np.random.default_rng(0)
    n = 4000
    shape = (n, len(ys), len(xs))
    ds = xr.Dataset(
        {
            "vx": (("mid_date", "y", "x"), (100 + 10 * rng.standard_normal(shape)).astype("f4")),
            "vy": (("mid_date", "y", "x"), (50 + 1 * rng.standard_normal(shape)).astype("f4")),
            "vx_error": (("mid_date", "y", "x"), np.full(shape, 10.0, "f4")),
            "vy_error": (("mid_date", "y", "x"), np.full(shape, 1.0, "f4")),
        },
        coords={"x": xs, "y": ys, "mid_date": np.arange(n)},
    ).rio.write_crs(32605)
    tx, ty = pyproj.Transformer.from_crs(32605, 3413, always_xy=True).transform(cx, cy)
    x, y = np.array([tx]), np.array([ty])
    out = reproject_cube(ds, "EPSG:3413", x, y).compute()
    j = _truth_jacobian(32605, 3413, -153.0, 61.0)
    want_x = np.sqrt(j[0, 0] ** 2 * 100 + j[0, 1] ** 2 * 1)
    want_y = np.sqrt(j[1, 0] ** 2 * 100 + j[1, 1] ** 2 * 1)
    assert float(out.vx_error[0, 0, 0]) == pytest.approx(want_x, rel=1e-4)
    assert float(out.vy_error[0, 0, 0]) == pytest.approx(want_y, rel=1e-4)
    assert want_y > 5, "the y error takes up most of the larger x error"
    spread = out.vx.values[:, 0, 0].std(), out.vy.values[:, 0, 0].std()
    assert spread[0] == pytest.approx(want_x, rel=0.05) and spread[1] == pytest.approx(
        want_y, rel=0.05
    )


def test_annual_composites_turned_and_their_seasonal_ellipse_left_out():
    from itscube.sample import ensure_sample

    src = open_cube(ensure_sample().annual).load()
    out = open_cube(ensure_sample().annual, out_crs="EPSG:32622").load()
    assert out.rio.crs.to_epsg() == 32622 and out.sizes["time"] == src.sizes["time"]
    for name in ("vx", "vy", "v", "vx0", "vy0", "v0", "dvx_dt", "dvy_dt", "vx_error", "count"):
        assert name in out, name
    dropped = out.attrs["itscube_not_reprojected"].split()
    assert {"v_amp", "v_phase"} <= set(dropped) and "v_amp" not in out
    # speeds are invariant: the median speed is kept, only the components turn
    assert float(out.v.median()) == pytest.approx(float(src.v.median()), rel=0.02)
    turn = np.degrees(np.arctan2(float(out.vy.median()), float(out.vx.median())))
    turn0 = np.degrees(np.arctan2(float(src.vy.median()), float(src.vx.median())))
    assert abs(turn - turn0) > 1.0, "the components were turned"
