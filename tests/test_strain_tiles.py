"""Strain on spatial tiles with halos equals strain on whole maps, value for value."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from itscube.strain import strain_rates


def _cube(nt=3, ny=37, nx=41, seed=0) -> xr.Dataset:
    """A smooth random field with gaps and per-layer errors (m/yr), 120 m pixels."""
    rng = np.random.default_rng(seed)
    x = 1000.0 + 120.0 * np.arange(nx)
    y = 9000.0 - 120.0 * np.arange(ny)
    X, Y = np.meshgrid(x, y)
    vx = 100 + 0.01 * X[None] - 0.02 * Y[None] + rng.normal(0, 3, (nt, ny, nx))
    vy = -50 + 0.03 * X[None] + rng.normal(0, 3, (nt, ny, nx))
    vx[:, 10:13, 20:24] = np.nan  # a gap across a tile edge
    dims = ("mid_date", "y", "x")
    ds = xr.Dataset(
        {
            "vx": (dims, vx.astype("f4")),
            "vy": (dims, vy.astype("f4")),
            "vx_error": ("mid_date", np.full(nt, 5.0, "f4")),
            "vy_error": ("mid_date", np.full(nt, 7.0, "f4")),
        },
        coords={"mid_date": np.arange(nt).astype("datetime64[D]"), "y": y, "x": x},
    )
    return ds.rio.write_crs(3413)


@pytest.mark.parametrize(("method", "tiles"), [("gradient", 4), ("log", 1), ("coarsen", 1)])
@pytest.mark.parametrize("k", [1, 3])
def test_tiles_with_halos_equal_whole_maps(method, tiles, k):
    """Gradient strain runs on the tiles; the log method's stakes go as far as the flow
    takes them and coarsen's blocks must not straddle tiles: those get whole maps."""
    ds = _cube()
    whole = strain_rates(ds.chunk({"mid_date": 2, "y": -1, "x": -1}), k, method).compute()
    tiled_in = ds.chunk({"mid_date": 2, "y": 10, "x": 13})  # uneven tiles, not multiples of k
    tiled = strain_rates(tiled_in, k, method)
    assert len(tiled["effective"].chunksizes["y"]) == tiles
    tiled = tiled.compute()
    for name in whole.data_vars:
        np.testing.assert_array_equal(tiled[name].values, whole[name].values, err_msg=name)
    assert np.isfinite(whole["effective"].values).sum() > 0.5 * whole["effective"].size


def test_tiles_thinner_than_the_halo_are_merged():
    ds = _cube()
    res = strain_rates(ds.chunk({"mid_date": 3, "y": 2, "x": 2}), 3)
    assert min(res["effective"].chunksizes["y"]) >= 3  # 2-px tiles merged, halo fits
    whole = strain_rates(ds, 3)
    np.testing.assert_array_equal(res["exx"].values, whole["exx"].values)


def test_linear_field_on_tiles_is_exact():
    """The analytic check on tiles: a linear field's strain rates are its gradients."""
    ds = _cube()
    X, Y = np.meshgrid(ds.x.values, ds.y.values)
    ds["vx"] = (("mid_date", "y", "x"), np.broadcast_to(0.004 * X + 0.001 * Y, ds.vx.shape))
    ds["vy"] = (("mid_date", "y", "x"), np.broadcast_to(-0.002 * X + 0.003 * Y, ds.vx.shape))
    res = strain_rates(ds.astype("f8").chunk({"y": 9, "x": 11}), 2).compute()
    inner = res.isel(y=slice(2, -2), x=slice(2, -2))
    np.testing.assert_allclose(inner["exx"].values, 0.004, rtol=1e-4)
    np.testing.assert_allclose(inner["eyy"].values, 0.003, rtol=1e-4)
    np.testing.assert_allclose(inner["exy"].values, 0.5 * (0.001 - 0.002), rtol=1e-3)


@pytest.mark.slow
def test_strain_product_on_tiles_equals_whole_maps(tmp_path):
    """A map larger than the memory budget per layer: the product streams it in tiles with
    halos, and writes the same per-step strain as with whole maps."""
    from itscube.products.strain import run_strain
    from itscube.sample import ensure_sample

    sample = ensure_sample()
    opts = dict(upscale=[2], start="2018-01-01", end="2018-06-30", per_step=True,
                figures=False)  # fmt: skip
    whole = run_strain(sample.subyearly, out=tmp_path / "whole", **opts)[0]
    tiled = run_strain(sample.subyearly, out=tmp_path / "tiled", budget=128_000, **opts)[0]
    with (
        xr.open_dataset(whole.folder / "strain_steps.nc") as a,
        xr.open_dataset(tiled.folder / "strain_steps.nc") as b,
    ):
        assert b["exx"].encoding["chunksizes"][-1] < a.sizes["x"]  # written from tiles
        for name in ("exx", "eyy", "exy", "effective", "exx_error"):
            np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)
