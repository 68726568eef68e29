"""Benchmark: itscube strain rates, all baselines measured in the same run.

(a) Per-step ``gradient`` strain (all 12 components + 4 errors) on an ``N x N x T`` float32
    cube read chunk by chunk from a Zarr store on disk, against
      - a plain numpy read+write pass: the same chunk reads, then writing the same number
        of output maps (np.copyto; no arithmetic) -- the memory-traffic floor;
      - the same floor with each chunk's outputs newly allocated and then copied to the
        sink, as a result is (the first touch of fresh memory is part of writing it);
      - the same pass writing only the two input maps back (read+write of the same data);
    plus the kernel alone: bytes moved per output byte and GB/s against memcpy.
      - a naive per-layer ``np.gradient`` loop computing the same 12 components (k = 1,
        no errors; measured on a subset of layers, reported per layer).
(b) ``log`` method vs glacier-strain-tools ``logarithmic`` (Alley et al. 2018) on the
    same smooth field: agreement of exx/eyy/exy where both are defined, and speed.
(c) Peak memory (RSS) of ``itscube strain --per-step`` streaming a cube 4x larger than
    the chunk-memory budget it was given, measured in a child process.

Run: ``python benchmarks/bench_strain.py [--size 833] [--layers 500] [--skip-memory]``
(needs ``pip install glacier-strain-tools`` for (b); it is skipped otherwise).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import xarray as xr
import zarr

from itscube import strain_rates
from itscube._kernels.strain import gradient_strain
from itscube.strain import COMPONENTS, ERROR_COMPONENTS

DX = 120.0
CHUNK = 20


def smooth_field(n: int, t: int = 1, seed: int = 0):
    """A smooth glacier-like field (m/yr) on a descending-y grid, with per-layer variation."""
    x = -150000.0 + DX * np.arange(n)
    y = -2250000.0 - DX * np.arange(n)
    X, Y = np.meshgrid((x - x[0]) / (n * DX), (y - y[0]) / (n * DX))
    rng = np.random.default_rng(seed)
    amp = 1.0 + 0.1 * rng.standard_normal(t).astype("f4")
    u = 200 + 400 * X + 80 * np.sin(2 * np.pi * Y) * np.cos(np.pi * X)
    v = -30 + 60 * np.cos(2 * np.pi * X) * Y
    return x, y, u.astype("f4"), v.astype("f4"), amp


def write_cube(path: Path, n: int, t: int) -> None:
    x, y, u, v, amp = smooth_field(n, t)
    root = zarr.open_group(path, mode="w", zarr_format=2)
    for name, base in (("vx", u), ("vy", v)):
        arr = root.create_array(
            name,
            shape=(t, n, n),
            chunks=(CHUNK, n, n),
            dtype="f4",
            compressors=None,
            attributes={"_ARRAY_DIMENSIONS": ["mid_date", "y", "x"]},
        )
        for i in range(0, t, CHUNK):
            arr[i : i + CHUNK] = base[None] * amp[i : i + CHUNK, None, None]
    for name, vals in (("x", x), ("y", y)):
        root.create_array(name, data=vals, attributes={"_ARRAY_DIMENSIONS": [name]})
    times = np.datetime64("2015-01-01") + np.arange(t) * np.timedelta64(3, "D")
    root.create_array(
        "mid_date",
        data=(times - np.datetime64("1970-01-01")).astype("i8"),
        attributes={"_ARRAY_DIMENSIONS": ["mid_date"], "units": "days since 1970-01-01"},
    )
    zarr.consolidate_metadata(path)


def chunks(path: Path):
    g = zarr.open_group(path, mode="r")
    vx, vy = g["vx"], g["vy"]
    for i in range(0, vx.shape[0], CHUNK):
        yield vx[i : i + CHUNK], vy[i : i + CHUNK]


def bench_a(path: Path, n: int, t: int, naive_layers: int) -> dict:
    g = zarr.open_group(path, mode="r")
    x, y = g["x"][:], g["y"][:]
    n_out = len(COMPONENTS) + len(ERROR_COMPONENTS)
    sink = np.empty((n_out, CHUNK, n, n), "f4")
    sigma = np.float32(5.0)

    def floor_pass(n_maps):
        t0 = time.perf_counter()
        for u, v in chunks(path):
            for i in range(n_maps):
                np.copyto(sink[i, : len(u)], u if i % 2 == 0 else v)
        return time.perf_counter() - t0

    def fresh_pass(n_maps):  # the same, each chunk's outputs newly allocated (as results are)
        t0 = time.perf_counter()
        for u, v in chunks(path):
            fresh = np.empty((n_maps, *u.shape), "f4")
            for i in range(n_maps):
                np.copyto(fresh[i], u if i % 2 == 0 else v)
            np.copyto(sink[:n_maps, : len(u)], fresh)
        return time.perf_counter() - t0

    def itscube_pass():
        t0 = time.perf_counter()
        for u, v in chunks(path):
            ds = xr.Dataset(
                {
                    "vx": (("mid_date", "y", "x"), u),
                    "vy": (("mid_date", "y", "x"), v),
                    "vx_error": ("mid_date", np.full(len(u), sigma)),
                    "vy_error": ("mid_date", np.full(len(u), sigma)),
                },
                coords={"x": x, "y": y},
            )
            res = strain_rates(ds, 1)
            for i, name in enumerate(COMPONENTS + ERROR_COMPONENTS):
                np.copyto(sink[i, : len(u)], res[name].values)
        return time.perf_counter() - t0

    strain_rates(
        xr.Dataset(
            {
                "vx": (("y", "x"), np.zeros((5, 5), "f4")),
                "vy": (("y", "x"), np.zeros((5, 5), "f4")),
            },
            coords={"x": x[:5], "y": y[:5]},
        ),
        1,
    )  # JIT warm-up
    floor_pass(2)  # warm the page cache for everybody
    t_floor = min(floor_pass(n_out) for _ in range(2))
    t_copy = min(floor_pass(2) for _ in range(2))
    t_fresh = min(fresh_pass(n_out) for _ in range(2))
    t_its = min(itscube_pass() for _ in range(2))

    traffic = kernel_traffic(path, x, y, n_out)

    # naive loop vs itscube on the same subset, no errors (the naive loop has none)
    u, v = next(chunks(path))
    u, v = u[:naive_layers], v[:naive_layers]
    t0 = time.perf_counter()
    naive = naive_loop(u, v, x, y)
    t_naive = time.perf_counter() - t0
    ds = xr.Dataset(
        {"vx": (("mid_date", "y", "x"), u), "vy": (("mid_date", "y", "x"), v)},
        coords={"x": x, "y": y},
    )
    t0 = time.perf_counter()
    fast = strain_rates(ds, 1, errors=False)
    fast = {name: fast[name].values for name in COMPONENTS}
    t_fast = time.perf_counter() - t0
    inner = (slice(None), slice(1, -1), slice(1, -1))
    agree = max(
        float(
            np.nanmax(np.abs(naive[c][inner] - fast[c][inner]))
            / (np.nanmax(np.abs(naive[c][inner])) + 1e-30)
        )
        for c in COMPONENTS
        if c != "e1_angle"
    )
    gb = 2 * n * n * t * 4 / 1e9
    return {
        "cube": f"{n} x {n} x {t} float32 ({gb:.2f} GB of vx+vy)",
        "itscube_s": round(t_its, 2),
        "floor_read_write_16_maps_s": round(t_floor, 2),
        "read_write_same_data_s": round(t_copy, 2),
        "floor_fresh_outputs_16_maps_s": round(t_fresh, 2),
        "ratio_vs_floor_16_maps": round(t_its / t_floor, 2),
        "ratio_vs_floor_fresh_outputs": round(t_its / t_fresh, 2),
        "ratio_vs_read_write_same_data": round(t_its / t_copy, 2),
        **traffic,
        "naive_layers": naive_layers,
        "naive_s_per_layer": round(t_naive / naive_layers, 4),
        "itscube_s_per_layer_no_errors": round(t_fast / naive_layers, 4),
        "speedup_vs_naive": round(t_naive / t_fast, 1),
        "max_rel_difference_vs_naive": agree,
    }


def kernel_traffic(path: Path, x, y, n_out: int) -> dict:
    """The kernel alone on one chunk into a preallocated output: its memory traffic per
    output byte (one pass: each input read once, each output written once) and the rate
    it reaches against memcpy of the same number of bytes."""
    u, v = next(chunks(path))
    su = np.full((len(u), 1, 1), 5.0, "f4")
    out = np.empty((len(u), n_out, *u.shape[1:]), "f4")
    gradient_strain(u, v, su, su, x, y, 1, True, out, 5.0, 1.0)
    t_kernel = min(_timed(gradient_strain, u, v, su, su, x, y, 1, True, out, 5.0, 1.0)
                   for _ in range(3))  # fmt: skip
    src = np.concatenate([u.ravel(), v.ravel()] * (n_out // 2 + 1))[: out.size]
    t_memcpy = min(_timed(np.copyto, out.reshape(-1), src) for _ in range(3))
    moved = u.nbytes + v.nbytes + out.nbytes
    return {
        "kernel_bytes_moved_per_output_byte": round(moved / out.nbytes, 3),
        "kernel_GB_per_s": round(moved / t_kernel / 1e9, 1),
        "memcpy_GB_per_s": round(2 * out.nbytes / t_memcpy / 1e9, 1),
    }


def _timed(fn, *args) -> float:
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0


def naive_loop(u, v, x, y) -> dict:
    """What one would write by hand: per layer, np.gradient with coordinates, then numpy."""
    out = {c: np.empty(u.shape, "f4") for c in COMPONENTS}
    for i in range(len(u)):
        dudy, dudx = np.gradient(u[i].astype("f8"), y, x)
        dvdy, dvdx = np.gradient(v[i].astype("f8"), y, x)
        exx, eyy, exy = dudx, dvdy, 0.5 * (dudy + dvdx)
        theta = np.arctan2(v[i], u[i])
        c, s = np.cos(theta), np.sin(theta)
        rad = np.sqrt(0.25 * (exx - eyy) ** 2 + exy**2)
        vals = {
            "exx": exx,
            "eyy": eyy,
            "exy": exy,
            "rotation": 0.5 * (dvdx - dudy),
            "dilatation": exx + eyy,
            "effective": np.sqrt(exx**2 + eyy**2 + exx * eyy + exy**2),
            "e1": 0.5 * (exx + eyy) + rad,
            "e2": 0.5 * (exx + eyy) - rad,
            "e1_angle": np.degrees(0.5 * np.arctan2(2 * exy, exx - eyy)),
            "longitudinal": exx * c**2 + 2 * exy * s * c + eyy * s**2,
            "transverse": exx * s**2 - 2 * exy * s * c + eyy * c**2,
            "shear": (eyy - exx) * s * c + exy * (c**2 - s**2),
        }
        for name, val in vals.items():
            out[name][i] = val
    return out


def bench_b(n: int, k: int) -> dict:
    try:
        from strain_tools.strain import logarithmic
    except ImportError:
        return {"skipped": "glacier-strain-tools is not installed"}
    x, y, u, v, _ = smooth_field(n)
    ds = xr.Dataset({"vx": (("y", "x"), u), "vy": (("y", "x"), v)}, coords={"x": x, "y": y})
    strain_rates(ds.isel(x=slice(0, 10), y=slice(0, 10)), 1, "log")  # JIT warm-up
    logarithmic(u[:12, :12].astype("f8"), v[:12, :12].astype("f8"), DX, DX, ydir=1)
    t0 = time.perf_counter()
    ours = strain_rates(ds, k, "log", errors=False)
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    gxx, gyy, gxy = logarithmic(u.astype("f8"), v.astype("f8"), DX, k * DX, ydir=1)
    t_gst = time.perf_counter() - t0
    res = {
        "grid": f"{n} x {n}",
        "upscale": k,
        "itscube_s": round(t_ours, 3),
        "glacier_strain_tools_s": round(t_gst, 3),
        "speedup": round(t_gst / t_ours, 1),
    }
    for name, theirs in (("exx", gxx), ("eyy", gyy), ("exy", gxy)):
        mine = ours[name].values
        both = np.isfinite(mine) & np.isfinite(theirs)
        scale = np.nanpercentile(np.abs(theirs[both]), 95)
        rel = np.abs(mine[both] - theirs[both]) / scale
        res[f"{name}_pixels_compared"] = int(both.sum())
        res[f"{name}_max_rel_diff"] = float(rel.max())
        res[f"{name}_p99_rel_diff"] = float(np.percentile(rel, 99))
    return res


MEMORY_CHILD = """
import json, os, sys, threading, time
budget = int(sys.argv[2])
from itscube.products.strain import run_strain

page = os.sysconf("SC_PAGE_SIZE")


def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * page / 1024**2


peak = [0.0]
done = threading.Event()


def sample():
    while not done.is_set():
        peak[0] = max(peak[0], rss())
        time.sleep(0.01)


base = rss()
threading.Thread(target=sample, daemon=True).start()
t0 = time.perf_counter()
run_strain(sys.argv[1], upscale=[2], out=sys.argv[3], per_step=True, figures=False,
           progress=False, budget=budget)
done.set()
print(json.dumps({"rss_before_mb": round(base), "peak_rss_mb": round(peak[0]),
                  "seconds": round(time.perf_counter() - t0, 1)}))
"""


def bench_c(tmp: Path, budget_mb: int) -> dict:
    n_arrays = 4 + len(COMPONENTS) + len(ERROR_COMPONENTS)
    n = 300
    # a cube whose per-step work (inputs + outputs, float32) is 4x the budget
    t = int(4 * budget_mb * 1024**2 / (n * n * 4 * n_arrays)) + 1
    path = tmp / "mem.zarr"
    write_cube(path, n, t)
    import zarr as _z

    g = _z.open_group(path, mode="a")
    g.attrs["projection"] = "3413"
    m = g.create_array(
        "mapping", shape=(), dtype="i4", attributes={"spatial_epsg": 3413, "_ARRAY_DIMENSIONS": []}
    )
    m[...] = 0
    _z.consolidate_metadata(path)
    out = subprocess.run(
        [sys.executable, "-c", MEMORY_CHILD, str(path), str(budget_mb * 1024**2), str(tmp / "out")],
        capture_output=True,
        text=True,
        check=True,
    )
    res = json.loads(out.stdout.strip().splitlines()[-1])
    work_mb = n * n * 4 * n_arrays * t / 1024**2
    res.update(
        cube=f"{n} x {n} x {t}",
        per_step_work_mb=round(work_mb),
        chunk_budget_mb=budget_mb,
        work_over_budget=round(work_mb / budget_mb, 2),
        peak_growth_mb=res["peak_rss_mb"] - res["rss_before_mb"],
    )
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=833)
    ap.add_argument("--layers", type=int, default=500)
    ap.add_argument("--naive-layers", type=int, default=10)
    ap.add_argument("--log-size", type=int, default=300)
    ap.add_argument("--log-upscale", type=int, default=2)
    ap.add_argument("--budget-mb", type=int, default=256)
    ap.add_argument("--skip-memory", action="store_true")
    args = ap.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        write_cube(tmp / "cube.zarr", args.size, args.layers)
        print(f"wrote the benchmark cube in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        results["a_per_step_gradient"] = bench_a(
            tmp / "cube.zarr", args.size, args.layers, args.naive_layers
        )
        print(json.dumps(results, indent=2), file=sys.stderr)
        results["b_log_vs_glacier_strain_tools"] = bench_b(args.log_size, args.log_upscale)
        print(json.dumps(results, indent=2), file=sys.stderr)
        if not args.skip_memory:
            results["c_peak_memory"] = bench_c(tmp, args.budget_mb)
    results["max_rss_of_this_process_mb"] = (
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    )
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
