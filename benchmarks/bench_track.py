"""Benchmark: itscube tracking vs OceanParcels v4 (``AdvectionRK4``, ``mesh="flat"``).

Same steady, smooth glacier-like field, same seeds, RK4 with 5-day steps over 10 years,
measured in the same run. Reports the largest end-point difference (m), particle-steps per
second for both at ``--particles`` points, and itscube's scaling from 100 to 1,000,000
particles. Parcels interpolates linearly in time between field snapshots while itscube holds
composites constant over their bins, so only the steady case is compared like for like.

Run (parcels in the same environment: ``pip install parcels``):
``python benchmarks/bench_track.py [--particles 10000] [--parcels-particles 1000]``
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import xarray as xr

from itscube.track import track

DX = 120.0
SECONDS_PER_YEAR = 365.25 * 86400
X0, Y0 = -150000.0, -2250000.0


def field(n: int = 200):
    """A smooth steady field (m/yr): speed-up along x, lateral shear, gentle convergence."""
    x = X0 + DX * np.arange(n)
    y = Y0 + DX * np.arange(n)[::-1]  # ITS_LIVE order: descending
    X, Y = np.meshgrid((x - x[0]) / (n * DX), (y - y[-1]) / (n * DX))
    u = 150 + 250 * X + 60 * np.sin(np.pi * Y)
    v = -40 * (Y - 0.5) + 10 * np.sin(2 * np.pi * X)
    return x, y, u.astype("f8"), v.astype("f8")


def itscube_cube(x, y, u, v) -> xr.Dataset:
    times = np.array(["2015-07-01", "2025-07-01"], dtype="datetime64[ns]")
    ds = xr.Dataset(
        {
            "vx": (("mid_date", "y", "x"), np.stack([u, u]).astype("f4")),
            "vy": (("mid_date", "y", "x"), np.stack([v, v]).astype("f4")),
        },
        coords={"x": x, "y": y, "mid_date": times},
    )
    return ds.rio.write_crs("EPSG:3413", grid_mapping_name="mapping")


def seeds(n: int, rng) -> np.ndarray:
    x = X0 + DX * (10 + 40 * rng.random(n))
    y = Y0 + DX * (40 + 120 * rng.random(n))
    return np.column_stack([x, y])


def run_itscube(ds, pts, years: float, output_every: int = 1):
    """``track()`` end to end: every ``output_every``-th position kept (1: all of them),
    with velocities, lon/lat and the Dataset."""
    end = np.datetime64("2016-01-01") + np.timedelta64(round(years * 365.25), "D")
    t0 = time.perf_counter()
    res = track(
        ds, pts, "2016-01-01", str(end)[:10], dt_days=5, steady=True, output_every=output_every
    )
    return res, time.perf_counter() - t0


def run_kernel(x, y, u, v, pts, years: float) -> float:
    """itscube's advection kernel alone (what parcels' ``execute`` is timed for)."""
    from itscube._kernels.advect import advect, output_steps

    steps = round(years * 365.25 / 5)
    U, V = u[None].astype("f8"), v[None].astype("f8")
    F = np.zeros(U.shape, np.uint8)
    dt = np.full(steps, 5 / 365.25)
    idx = np.zeros(steps, np.int64)
    grid = (float(x[0]), float(x[1] - x[0]), float(y[0]), float(y[1] - y[0]))
    args = (*grid, dt, idx, 4, 1.0, output_steps(steps, 1))
    advect(pts[:2, 0].copy(), pts[:2, 1].copy(), U, V, F, *args)  # warm-up
    t0 = time.perf_counter()
    advect(pts[:, 0].copy(), pts[:, 1].copy(), U, V, F, *args)
    return time.perf_counter() - t0


def run_parcels(x, y, u, v, pts, years: float):
    import parcels
    import parcels._sgrid as sgrid

    # parcels wants SI units (m/s) and ascending coordinates
    ua = (u[::-1] / SECONDS_PER_YEAR).astype("f4")
    va = (v[::-1] / SECONDS_PER_YEAR).astype("f4")
    ya = y[::-1]
    ny, nx = ua.shape
    ds = xr.Dataset(
        {
            "U": (["time", "depth", "YG", "XG"], np.stack([ua, ua])[:, None]),
            "V": (["time", "depth", "YG", "XG"], np.stack([va, va])[:, None]),
        },
        coords={
            "time": (["time"], [np.timedelta64(0, "s"), np.timedelta64(4000, "D")], {"axis": "T"}),
            "depth": (["depth"], np.array([0.0]), {"axis": "Z"}),
            "YC": (["YC"], np.arange(ny) + 0.5, {"axis": "Y"}),
            "YG": (["YG"], np.arange(ny), {"axis": "Y"}),
            "XC": (["XC"], np.arange(nx) + 0.5, {"axis": "X"}),
            "XG": (["XG"], np.arange(nx), {"axis": "X"}),
            # local coordinates: parcels keeps positions in float32, whose spacing at
            # y = -2.25e6 m is 0.25 m; relative to the grid origin it is < 2 mm
            "lat": (["YG"], ya - Y0, {"axis": "Y"}),
            "lon": (["XG"], x - X0, {"axis": "X"}),
        },
    ).pipe(
        sgrid._attach_sgrid_metadata,
        sgrid.SGrid2DMetadata(
            cf_role="grid_topology",
            topology_dimension=2,
            node_dimensions=("XG", "YG"),
            node_coordinates=("lon", "lat"),
            face_dimensions=(
                sgrid.FaceNodePadding("XC", "XG", sgrid.Padding.LOW),
                sgrid.FaceNodePadding("YC", "YG", sgrid.Padding.HIGH),
            ),
            vertical_dimensions=(sgrid.FaceNodePadding("ZC", "depth", sgrid.Padding.BOTH),),
        ),
    )
    fs = parcels.FieldSet.from_sgrid_conventions(ds, mesh="flat")
    pset = parcels.ParticleSet(fs, x=pts[:, 0] - X0, y=pts[:, 1] - Y0)
    days = round(years * 365.25)
    t0 = time.perf_counter()
    pset.execute(
        parcels.kernels.AdvectionRK4,
        dt=np.timedelta64(5, "D"),
        runtime=np.timedelta64(days, "D"),
        verbose_progress=False,
    )
    elapsed = time.perf_counter() - t0
    return np.column_stack([np.asarray(pset.x) + X0, np.asarray(pset.y) + Y0]), elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--particles", type=int, default=10_000)
    ap.add_argument("--parcels-particles", type=int, default=1_000)
    ap.add_argument("--years", type=float, default=10.0)
    ap.add_argument("--max-scaling", type=int, default=1_000_000)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    x, y, u, v = field()
    ds = itscube_cube(x, y, u, v)
    run_itscube(ds, seeds(10, rng), 0.1)  # JIT warm-up
    out: dict = {"field": "200 x 200 at 120 m, steady", "years": args.years, "dt_days": 5}
    steps = round(args.years * 365.25 / 5)
    pts = seeds(args.particles, rng)
    res, t_its = run_itscube(ds, pts, args.years)
    # parcels' timed run keeps the final positions only: the same output from track()
    # (output_every beyond the run: 730 whole steps of 5 days end 2 days before the end
    # date, which a last short step reaches and which is always kept)
    ends, t_ends = run_itscube(ds, pts, args.years, output_every=10 * steps)
    assert ends.sizes["time"] == 2  # the start and the end
    t_kernel = run_kernel(x, y, u, v, pts, args.years)
    out["itscube"] = {
        "particles": args.particles,
        "seconds_end_to_end": round(t_its, 3),
        "particle_steps_per_s_end_to_end": round(args.particles * steps / t_its),
        "seconds_end_to_end_final_positions": round(t_ends, 3),
        "particle_steps_per_s_end_to_end_final_positions": round(args.particles * steps / t_ends),
        "seconds_kernel": round(t_kernel, 3),
        "particle_steps_per_s": round(args.particles * steps / t_kernel),
    }
    try:
        sub = pts[: args.parcels_particles]
        end_p, t_par = run_parcels(x, y, u, v, sub, args.years)
        ends_i = np.column_stack([res.x.values[: len(sub), -1], res.y.values[: len(sub), -1]])
        ok = np.all(np.isfinite(end_p), axis=1) & np.all(np.isfinite(ends_i), axis=1)
        out["parcels"] = {
            "version": __import__("parcels").__version__,
            "particles": len(sub),
            "seconds": round(t_par, 3),
            "particle_steps_per_s": round(len(sub) * steps / t_par),
            "max_end_point_difference_m": float(np.max(np.hypot(*(end_p[ok] - ends_i[ok]).T))),
            "compared": int(ok.sum()),
        }
        its, par = out["itscube"], out["parcels"]["particle_steps_per_s"]
        out["speedup_particle_steps"] = round(its["particle_steps_per_s"] / par, 1)
        out["speedup_end_to_end_every_position"] = round(
            its["particle_steps_per_s_end_to_end"] / par, 1
        )
        out["speedup_end_to_end_final_positions"] = round(
            its["particle_steps_per_s_end_to_end_final_positions"] / par, 1
        )
    except ImportError as exc:
        out["parcels"] = {"skipped": f"parcels not importable: {exc}"}
    scaling = {}
    n = 100
    while n <= args.max_scaling:
        _, t = run_itscube(ds, seeds(n, rng), 1.0)
        scaling[n] = round(n * 73 / t)
        n *= 10
    out["itscube_scaling_particle_steps_per_s_1yr"] = scaling
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
