"""Benchmark: itscube's subset download vs plain xarray, for every store generation.

Both approaches read the same variables for the same bbox and dates from the same local HTTP
server (which serves requests concurrently and honours byte ranges, as S3 does) in the same
run, with a fixed latency added to every request. Cases: ITS_LIVE v2 (Zarr v2), v2.2 (Zarr v3)
unsharded and sharded, annual composites, and an Icechunk repository with virtual chunks (read
locally, against ``xr.open_zarr(session.store)``). Reported per case:

* wall-time ratio (plain xarray / itscube),
* bytes transferred / bytes of the chunks that intersect the request (the minimum that the
  store's chunking allows: intersecting chunks of the requested variables, or for sharded
  arrays the intersecting inner chunks plus the shard indexes, plus the coordinates),
* whether both give the same values.

Run: ``python benchmarks/bench_download.py [--latency 0.05] [--layers 2000]``
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import xarray as xr

from itscube import bbox_area, open_cube
from itscube._datasets.itslive import (
    OutletGlacier,
    make_annual_cube,
    make_subyearly_cube,
    write_icechunk_subyearly,
    write_subyearly,
)
from itscube.io import download
from itscube.io.stores import open_source
from itscube.testing.server import Faults, StoreServer

CENTRE = (-150000.0, -2250000.0)
VARS = ["vx", "vy", "v", "v_error"]


def _chunk_file(store: Path, name: str, idx, fmt: str) -> Path:
    if fmt == "zarr-v2":
        return store / name / ".".join(map(str, idx))
    return store / name / "c" / "/".join(map(str, idx))


def _minimum_bytes(store: Path, names: list[str], sel: dict) -> int:
    """Bytes of the chunks of ``names`` intersecting the selection, plus the coordinates."""
    import zarr

    cube = open_source(store)
    total = 0
    for name in [*names, "x", "y", cube.time_dim]:
        arr = cube[name]
        z = zarr.open_array(store / name, mode="r")
        shards = getattr(z, "shards", None)
        ids = arr.chunk_ids(
            [sel.get(d, np.arange(n)) for d, n in zip(arr.dims, arr.shape, strict=True)]
        )
        if shards is None:
            total += sum(
                _chunk_file(store, name, c, cube.format).stat().st_size
                for c in ids
                if _chunk_file(store, name, c, cube.format).exists()
            )
            continue
        per = [s // c for s, c in zip(shards, arr.chunks, strict=True)]
        by_shard: dict[tuple, list] = {}
        for c in ids:
            by_shard.setdefault(tuple(i // p for i, p in zip(c, per, strict=False)), []).append(
                tuple(i % p for i, p in zip(c, per, strict=False))
            )
        n_inner = int(np.prod(per))
        for shard, inner in by_shard.items():
            data = _chunk_file(store, name, shard, cube.format).read_bytes()
            index = np.frombuffer(data[-(16 * n_inner + 4) : -4], "<u8").reshape(*per, 2)
            total += 16 * n_inner + 4 + sum(int(index[i][1]) for i in inner)
    return total


def _selection(store: Path, area, start, end):
    cube = open_source(store)
    small = cube.read_many(["x", "y", cube.time_dim])
    from itscube.io.download import decode_times

    t = decode_times(cube[cube.time_dim], small[cube.time_dim])
    xmin, ymin, xmax, ymax = area.in_crs(3413).bounds
    x, y = small["x"], small["y"]
    xi = np.nonzero((x + 60 > xmin) & (x - 60 <= xmax))[0]
    yi = np.nonzero((y + 60 > ymin) & (y - 60 <= ymax))[0]
    ti = np.nonzero(
        (t >= np.datetime64(start)) & (t < np.datetime64(end) + np.timedelta64(1, "D"))
    )[0]
    return cube.time_dim, xi, yi, ti


def _plain_xarray(ds, tdim, xi, yi, ti):
    ds = ds[VARS].isel(x=xi, y=yi).isel({tdim: ti}).load()
    return ds.sortby(tdim).vx.values


def _compare(label, ours_s, plain_s, b_ours, b_plain, minimum, ours, plain):
    same = np.array_equal(np.nan_to_num(ours, nan=-1), np.nan_to_num(plain, nan=-1))
    return {
        "case": label,
        "itscube_s": round(ours_s, 3),
        "xarray_s": round(plain_s, 3),
        "speedup": round(plain_s / ours_s, 2),
        "itscube_bytes_over_minimum": None if minimum is None else round(b_ours / minimum, 3),
        "xarray_bytes_over_minimum": None if minimum is None else round(b_plain / minimum, 3),
        "minimum_bytes": minimum,
        "same_values": bool(same),
    }


def _run_case(label, store: Path, kind, area, start, end, latency, srv):
    tdim, xi, yi, ti = _selection(store, area, start, end)
    minimum = _minimum_bytes(store, VARS, {tdim: ti, "y": yi, "x": xi})
    url = f"{srv.url}/{store.name}"
    srv.set_faults(Faults(latency=latency))
    srv.stats.reset()
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        res = download(area, start=start, end=end, kind=kind, variables=VARS, urls=[url], out=out)
        t_ours = time.perf_counter() - t0  # reading the local store back is not timed
        ours = open_cube(res.stores[0]).vx.values
    b_ours = srv.stats.bytes_sent
    srv.stats.reset()
    t0 = time.perf_counter()
    ds = xr.open_dataset(url, engine="zarr", consolidated=True, decode_timedelta=False)
    plain = _plain_xarray(ds, tdim, xi, yi, ti)
    t_plain = time.perf_counter() - t0
    b_plain = srv.stats.bytes_sent
    srv.set_faults(Faults())
    return _compare(label, t_ours, t_plain, b_ours, b_plain, minimum, ours, plain)


def _icechunk_case(label, repo: Path, area, start, end):
    from itscube.io.stores import open_icechunk_session

    _, xi, yi, ti = _selection(repo, area, start, end)
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        res = download(area, start=start, end=end, variables=VARS, urls=[str(repo)], out=out)
        t_ours = time.perf_counter() - t0
        ours = open_cube(res.stores[0]).vx.values
        b_ours = res.bytes_fetched
    t0 = time.perf_counter()
    ds = xr.open_zarr(
        open_icechunk_session(str(repo)).store, consolidated=False, decode_timedelta=False
    )
    plain = _plain_xarray(ds, "time", xi, yi, ti)
    t_plain = time.perf_counter() - t0
    return _compare(label, t_ours, t_plain, b_ours, b_ours, None, ours, plain)


def main() -> None:
    import icechunk

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--latency", type=float, default=0.05, help="seconds added per request")
    ap.add_argument("--layers", type=int, default=2000, help="layers of the sub-yearly cube")
    ap.add_argument("--size", type=int, default=120, help="cube width/height in pixels")
    args = ap.parse_args()
    field = OutletGlacier(x_head=CENTRE[0] - 5000, y_c=CENTRE[1], half_width=3000)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        shape = (args.size, args.size)
        ds = make_subyearly_cube(
            root / "v2.zarr", field, centre=CENTRE, shape=shape, n_layers=args.layers, seed=1
        )
        write_subyearly(ds, root / "v22.zarr", layout="v2.2", spatial_chunk=8)
        write_subyearly(ds, root / "v22s.zarr", layout="v2.2-sharded", spatial_chunk=8, shard=32)
        ann = root / "annual.zarr"
        make_annual_cube(ann, field, centre=CENTRE, shape=shape, years=range(2015, 2023))
        small = make_subyearly_cube(
            root / "none",
            field,
            centre=CENTRE,
            shape=shape,
            n_layers=min(args.layers, 300),
            seed=1,
            layout="none",
        )
        gran = root / "granules"
        gran.mkdir()
        write_icechunk_subyearly(
            small,
            icechunk.local_filesystem_storage(str(root / "virtual.icechunk")),
            virtual=f"file://{gran}/",
            granule_store=icechunk.local_filesystem_store(str(gran)),
            put=lambda name, data: (gran / name).write_bytes(data),
        )
        area = bbox_area(
            CENTRE[0] - 2400, CENTRE[1] - 2400, CENTRE[0] + 2400, CENTRE[1] + 2400, crs="EPSG:3413"
        )
        rows = []
        n = args.size
        with StoreServer(root) as srv:
            # warm-up: imports, HTTP sessions and thread pools of both approaches
            _run_case("warm-up", ann, "annual", area, "2016-01-01", "2016-12-31", 0.0, srv)
            for name, label in (
                ("v2.zarr", "v2 (Zarr v2, 10x10 chunks)"),
                ("v22.zarr", "v2.2 (Zarr v3, 8x8 chunks)"),
                ("v22s.zarr", "v2.2 sharded (32x32 shards of 8x8)"),
            ):
                rows.append(
                    _run_case(
                        f"sub-yearly {label} {n}x{n}x{args.layers}, 40x40 px, 2017-2020",
                        root / name,
                        "subyearly",
                        area,
                        "2017-01-01",
                        "2020-12-31",
                        args.latency,
                        srv,
                    )
                )
            rows.append(
                _run_case(
                    f"annual {n}x{n}x8, 40x40 px, 2016-2021",
                    ann,
                    "annual",
                    area,
                    "2016-01-01",
                    "2021-12-31",
                    args.latency,
                    srv,
                )
            )
        rows.append(
            _icechunk_case(
                f"Icechunk virtual {n}x{n}x{len(small.mid_date)} (local), 40x40 px, all dates",
                root / "virtual.icechunk",
                area,
                "2015-01-01",
                "2022-12-31",
            )
        )
    print(f"latency per request: {args.latency * 1000:.0f} ms (HTTP cases)")
    for r in rows:
        print(json.dumps(r))


if __name__ == "__main__":
    main()
