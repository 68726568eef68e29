"""Strain rates against analytic fields (descending y, as ITS_LIVE stores it)."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from itscube import open_cube, strain_rates
from itscube._datasets.fields import FIELD_DX as DX
from itscube._datasets.fields import FIELD_XC as XC
from itscube._datasets.fields import FIELD_YC as YC
from itscube._datasets.fields import field_dataset, finite
from itscube.errors import CubeFormatError, InputError
from itscube.temporal import ErrorModel, period_mean
from tests.helpers import FIELD

METHODS = ("gradient", "coarsen", "log")


def centre(da: xr.DataArray) -> float:
    return float(da.sel(x=XC, y=YC, method="nearest").squeeze())


@pytest.mark.parametrize("method", METHODS)
def test_uniform_flow_has_no_strain(method):
    ds = field_dataset(lambda X, Y: 0 * X + 250.0, lambda X, Y: 0 * X - 80.0)
    res = strain_rates(ds, 2, method)
    for name in ("exx", "eyy", "exy", "rotation", "effective", "e1", "e2", "longitudinal", "shear"):
        vals = finite(res[name])
        assert vals.size > 100
        np.testing.assert_allclose(vals, 0.0, atol=1e-7)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("descending", [True, False])
def test_linear_field_is_exact(method, descending):
    a, b, c, d = 0.004, 0.0015, -0.0025, -0.003
    ds = field_dataset(
        lambda X, Y: 120 + a * (X - XC) + b * (Y - YC),
        lambda X, Y: 35 + c * (X - XC) + d * (Y - YC),
        descending=descending,
    )
    res = strain_rates(ds, 2, method)
    # log strain measures finite deformation: second-order terms ~ e^2 T (T ~ 0.2 yr here)
    tol = dict(rtol=0, atol=5e-6) if method == "log" else dict(rtol=1e-4, atol=1e-7)
    exy = 0.5 * (b + c)
    tensor = np.array([[a, exy], [exy, d]])
    e2, e1 = np.linalg.eigvalsh(tensor)
    vec = np.linalg.eigh(tensor)[1][:, 1]
    angle = np.degrees(np.arctan2(vec[1], vec[0]))
    angle = (angle + 90) % 180 - 90
    expected = {
        "exx": a,
        "eyy": d,
        "exy": exy,
        "rotation": 0.5 * (c - b),
        "dilatation": a + d,
        "effective": np.sqrt(a * a + d * d + a * d + exy * exy),
        "e1": e1,
        "e2": e2,
    }
    for name, want in expected.items():
        vals = finite(res[name])
        assert vals.size > 50, name
        np.testing.assert_allclose(vals, want, err_msg=f"{name} ({method})", **tol)
    np.testing.assert_allclose(finite(res["e1_angle"]), angle, atol=0.05)
    assert res["exx"].attrs["units"] == "yr-1"
    assert res.rio.crs.to_epsg() == 3413


@pytest.mark.parametrize("theta_deg", [30.0, 120.0, -135.0, 180.0])
def test_rotated_pure_shear_flow_components(theta_deg):
    """Pure shear + simple shear in flow coordinates, the flow pointing theta from +x."""
    th = np.radians(theta_deg)
    R = np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
    eps_l, eps_t, gamma = 0.006, -0.002, 0.004  # du'/dx', dv'/dy', du'/dy'
    G = R @ np.array([[eps_l, gamma], [0.0, eps_t]]) @ R.T  # velocity gradient in x/y
    U = 200.0 * np.array([np.cos(th), np.sin(th)])
    ds = field_dataset(
        lambda X, Y: U[0] + G[0, 0] * (X - XC) + G[0, 1] * (Y - YC),
        lambda X, Y: U[1] + G[1, 0] * (X - XC) + G[1, 1] * (Y - YC),
    )
    res = strain_rates(ds, 1)
    assert centre(res["longitudinal"]) == pytest.approx(eps_l, rel=1e-4)
    assert centre(res["transverse"]) == pytest.approx(eps_t, rel=1e-4)
    assert centre(res["shear"]) == pytest.approx(gamma / 2, rel=1e-4)
    # invariants do not depend on the frame
    assert centre(res["dilatation"]) == pytest.approx(eps_l + eps_t, rel=1e-4)


def test_solid_body_rotation():
    omega = 0.01  # rad/yr
    ds = field_dataset(lambda X, Y: -omega * (Y - YC), lambda X, Y: omega * (X - XC))
    res = strain_rates(ds, 3)
    for name in ("exx", "eyy", "exy", "effective", "e1", "e2"):
        np.testing.assert_allclose(finite(res[name]), 0.0, atol=1e-7)
    np.testing.assert_allclose(finite(res["rotation"]), omega, rtol=1e-5)


def test_upscale_is_a_plus_minus_k_pixel_baseline():
    """Centred differences over ±k pixels damp a sinusoid by sin(kh)/(kh), exactly."""
    lam, A = 4000.0, 50.0
    wn = 2 * np.pi / lam
    ds = field_dataset(lambda X, Y: 100 + A * np.sin(wn * (X - XC)), lambda X, Y: 0 * X)
    res = strain_rates(ds, [1, 2, 4])
    assert list(res.upscale.values) == [1, 2, 4]
    X = res.x.values
    for k in (1, 2, 4):
        h = k * DX
        want = A * wn * np.cos(wn * (X - XC)) * np.sin(wn * h) / (wn * h)
        got = res["exx"].sel(upscale=k).isel(mid_date=0, y=15).values
        ok = np.isfinite(got)
        assert ok.sum() == len(X) - 2 * k  # NaN only within k pixels of the edges
        np.testing.assert_allclose(got[ok], want[ok], atol=2e-6)


def test_coarsen_and_strided_grids():
    ds = field_dataset(lambda X, Y: 0.003 * X**2 / 1e4, lambda X, Y: 0 * X)
    coarse = strain_rates(ds, 3, "coarsen")
    assert coarse.sizes == {"mid_date": 1, "y": 31 // 3, "x": 41 // 3}
    np.testing.assert_allclose(coarse.x.values, ds.x.values[: 13 * 3].reshape(13, 3).mean(1))
    # centred differences of a quadratic are exact: exx = 0.0006 X / 1e4 at block centres
    np.testing.assert_allclose(
        coarse["exx"].isel(mid_date=0, y=5).values[1:-1],
        0.006 * coarse.x.values[1:-1] / 1e4,
        rtol=1e-4,
    )
    full = strain_rates(ds, 2)
    strided = strain_rates(ds, 2, strided=True)
    assert strided.sizes["x"] == 21 and strided.sizes["y"] == 16
    xr.testing.assert_allclose(
        strided["exx"], full["exx"].isel(x=slice(None, None, 2), y=slice(None, None, 2))
    )


def test_nan_propagates_and_is_never_zero():
    ds = field_dataset(lambda X, Y: 100 + 0.002 * X, lambda X, Y: 5 + 0.001 * Y)
    ds["vx"][0, 15, 20] = np.nan
    ds["vy"][0, 15, 20] = np.nan
    res = strain_rates(ds, 2).isel(mid_date=0)
    exx_nan = set(zip(*np.nonzero(np.isnan(res["exx"].values[2:-2, 2:-2])), strict=True))
    assert exx_nan == {(13, 16), (13, 20)}  # (15, 18) and (15, 22) in full indices
    exy_nan = set(zip(*np.nonzero(np.isnan(res["exy"].values[2:-2, 2:-2])), strict=True))
    assert exy_nan == {(13, 16), (13, 20), (11, 18), (15, 18)}
    assert np.isnan(res["longitudinal"].values[15, 20])  # needs the centre velocity
    assert np.isfinite(res["exx"].values[15, 20])
    assert not np.any(res["exx"].values == 0)


def test_errors_propagate():
    sigma = 6.0
    ds = field_dataset(lambda X, Y: 100 + 0.002 * X, lambda X, Y: 0 * X, sigma=sigma)
    independent = ErrorModel(offset=0.0, correlation_m=0.0)
    res = strain_rates(ds, 2, error_model=independent)
    L = 4 * DX
    np.testing.assert_allclose(finite(res["exx_error"]), np.sqrt(2) * sigma / L, rtol=1e-5)
    np.testing.assert_allclose(finite(res["exy_error"]), sigma / L, rtol=1e-5)
    np.testing.assert_allclose(finite(res["dilatation_error"]), 2 * sigma / L, rtol=1e-5)
    # the default model: the offset (half the error) cancels in a difference, and the noise
    # as far as it is correlated over the baseline L: var = 2 s^2 (1 - a^2)(1 - rho(L))
    rho = np.exp(-(L**2) / (2 * 360.0**2))
    modelled = strain_rates(ds, 2)
    np.testing.assert_allclose(
        finite(modelled["exx_error"]), np.sqrt(2 * (1 - 0.25) * (1 - rho)) * sigma / L, rtol=1e-5
    )
    coarse = strain_rates(ds, 2, "coarsen", error_model=independent)  # 4-pixel blocks: s / 2
    np.testing.assert_allclose(finite(coarse["exx_error"]), np.sqrt(2) * (sigma / 2) / L, rtol=1e-5)
    assert "exx_error" not in strain_rates(ds, 2, errors=False)


def test_per_step_and_period_agree():
    """Strain is linear in velocity: the strain of the mean is the mean of the strains."""
    times = ["2019-01-01", "2019-05-01", "2019-09-01"]
    ds = field_dataset(lambda X, Y: 100 + 0.002 * X, lambda X, Y: 0.001 * Y, times=times, sigma=5.0)
    ds["vx"] = ds["vx"] * xr.DataArray([1.0, 1.5, 0.5], dims="mid_date").astype("f4")
    steps = strain_rates(ds, 1)
    period = strain_rates(period_mean(ds, "all"), 1)
    xr.testing.assert_allclose(
        period["exx"].isel(time=0, drop=True), steps["exx"].mean("mid_date"), rtol=2e-4
    )
    assert "time_bnds" in period and "n_layers" in period


def test_dask_is_lazy_and_matches_numpy():
    ds = field_dataset(
        lambda X, Y: 100 + 0.002 * X + 0.001 * Y,
        lambda X, Y: 0.003 * X,
        times=["2019-01-01", "2019-02-01", "2019-03-01", "2019-04-01"],
        sigma=3.0,
    )
    lazy = strain_rates(ds.chunk({"mid_date": 1, "y": 10}), [1, 2])
    assert lazy["exx"].chunks is not None
    xr.testing.assert_allclose(lazy.compute(), strain_rates(ds, [1, 2]))


def test_distributed_localcluster():
    distributed = pytest.importorskip("distributed")
    ds = field_dataset(lambda X, Y: 100 + 0.002 * X, lambda X, Y: 0 * X, times=["2019-01-01"] * 1)
    with (
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=2, processes=False, dashboard_address=":0"
        ) as cluster,
        distributed.Client(cluster),
    ):
        res = strain_rates(ds.chunk({"mid_date": 1}), 2)["exx"].compute()
    np.testing.assert_allclose(finite(res), 0.002, rtol=1e-5)


@pytest.mark.slow
def test_real_cube_path(cubes):
    """Open the schema-true cube (int16 velocities, descending y) and recover the field."""
    ds = open_cube(cubes.a_path, start="2019-01-01", end="2019-12-31").chunk({"mid_date": 8})
    res = strain_rates(ds, 2)
    assert res.sizes["mid_date"] == ds.sizes["mid_date"]
    # int16 rounding (±0.5 m/yr) quantises each pixel to 1/480 yr-1 steps; the mean recovers it
    exx = res["exx"].mean(["y", "x"]).values
    np.testing.assert_allclose(exx, FIELD.a, atol=3e-4)
    eyy = res["eyy"].mean(["y", "x"]).values
    np.testing.assert_allclose(eyy, FIELD.d, atol=3e-4)
    per = strain_rates(period_mean(ds), 2)
    assert float(per["exy"].mean()) == pytest.approx(0.5 * (FIELD.b + FIELD.c), abs=2e-4)


def test_bad_inputs():
    ds = field_dataset(lambda X, Y: 0 * X, lambda X, Y: 0 * X, ny=11, nx=21)
    with pytest.raises(InputError, match=r"^upscale must be >= 1 pixel; got 0"):
        strain_rates(ds, 0)
    with pytest.raises(InputError, match="too large"):
        strain_rates(ds, 6)
    with pytest.raises(InputError, match="too large"):
        strain_rates(ds, 4, "coarsen")
    with pytest.raises(InputError, match=r"^method must be one of gradient"):
        strain_rates(ds, 1, "spline")
    with pytest.raises(CubeFormatError, match="no vy"):
        strain_rates(ds.drop_vars("vy"), 1)
    with pytest.raises(InputError, match="one grid"):
        strain_rates(ds, [1, 2], "coarsen")


def test_flow_aligned_components_masked_where_the_ice_barely_moves():
    """Solid-body rotation: speed = omega r, zero at the centre, where the flow direction
    is undefined; flow-aligned components are NaN below min_speed, exact elsewhere."""
    omega = 0.02  # rad/yr: 2.4 m/yr one pixel from the centre, 24 m/yr at ten
    ds = field_dataset(lambda X, Y: -omega * (Y - YC), lambda X, Y: omega * (X - XC))
    res = strain_rates(ds, 1)  # default min_speed 5 m/yr
    X, Y = np.meshgrid(res.x.values, res.y.values)
    r = np.hypot(X - XC, Y - YC)
    lon = res["longitudinal"].isel(mid_date=0).values
    assert np.all(np.isnan(lon[r * omega < 5.0]))
    inner = (r * omega >= 5.0) & np.isfinite(res["exx"].isel(mid_date=0).values)
    np.testing.assert_allclose(lon[inner], 0.0, atol=1e-6)  # rigid rotation: no stretching
    assert res["longitudinal"].attrs["masked_below_speed_m_yr"] == 5.0
    # the tensor itself is not masked, and min_speed=0 keeps everything
    assert np.isfinite(res["exx"].isel(mid_date=0).values[r == 0]).all()
    kept = strain_rates(ds, 1, min_speed=0)["longitudinal"].isel(mid_date=0).values
    assert np.isfinite(kept[r * omega < 5.0]).sum() > 0
    with pytest.raises(InputError, match=r"^min_speed must be >= 0"):
        strain_rates(ds, 1, min_speed=-1)


def test_results_of_an_opened_cube_write_with_any_zarr_format(cubes, tmp_path):
    """The source store's codecs do not travel into results (a Zarr v2 Blosc codec made
    ``to_zarr`` in Zarr v3 fail)."""
    ds = open_cube(cubes.a_path).isel(mid_date=slice(0, 3))
    res = strain_rates(ds, 1)
    res[["effective", "vx"]].to_zarr(tmp_path / "v3.zarr")
    res[["effective"]].to_zarr(tmp_path / "v2.zarr", zarr_format=2)
    back = xr.open_zarr(tmp_path / "v3.zarr")
    np.testing.assert_allclose(back["effective"].values, res["effective"].values)


def test_coarsen_keeps_the_period_bounds_and_layer_counts():
    import numpy as np

    from itscube import period_mean, strain_rates
    from itscube._datasets.fields import field_dataset

    times = ["2018-03-01", "2018-07-01", "2019-03-01"]
    ds = field_dataset(lambda X, Y: 100 + 0.01 * X, lambda X, Y: 0 * X, ny=12, nx=12, times=times)
    ds["vx"][0, 0, 0] = np.nan  # one pixel lacks a layer
    means = period_mean(ds, "year")
    res = strain_rates(means, 2, method="coarsen")
    assert "time_bnds" in res and (res.time_bnds.values == means.time_bnds.values).all()
    assert res.n_layers.shape == (2, 6, 6)
    assert int(res.n_layers[0, 0, 0]) == 1 and int(res.n_layers[0, 1, 1]) == 2


@pytest.mark.parametrize("method", ["gradient", "log", "coarsen"])
def test_fused_low_speed_mask_equals_the_separate_pass(method):
    """The mask applied inside the kernel gives what the former separate xarray pass gave:
    flow-aligned components NaN where hypot(vx, vy) of the velocities used < min_speed."""
    rng = np.random.default_rng(4)
    ds = field_dataset(lambda X, Y: 30 * np.sin(X / 3000.0), lambda X, Y: 20 * np.cos(Y / 2500.0))
    ds["vx"] = ds["vx"] + rng.normal(0, 3, ds["vx"].shape).astype("f4")
    plain = strain_rates(ds, 2, method, min_speed=0.0)
    speed = np.hypot(plain["vx"], plain["vy"])
    threshold = float(speed.median()) + 1e-3  # off any pixel's speed: no float32 ties
    fused = strain_rates(ds, 2, method, min_speed=threshold)
    moving = speed >= threshold
    assert 0.2 < float(moving.mean()) < 0.8, "the mask bites somewhere and not everywhere"
    for name in ("longitudinal", "transverse", "shear"):
        np.testing.assert_array_equal(fused[name].values, plain[name].where(moving).values)
    for name in ("exx", "eyy", "exy", "effective", "e1_angle"):
        np.testing.assert_array_equal(fused[name].values, plain[name].values)
