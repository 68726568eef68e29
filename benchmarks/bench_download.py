"""Benchmark: itscube's subset download vs plain xarray, over a local HTTP server with latency.

Both approaches read the same variables for the same bbox and dates from the same server in
the same run. Reported:

* wall-time ratio (plain xarray / itscube),
* bytes transferred / bytes of the chunk objects that intersect the request (the minimum that
  the store's chunking allows: data chunks of the requested variables plus the x, y and time
  coordinates).

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

from itscube import bbox_area, download
from itscube.serve import Faults, StoreServer
from itscube.synthetic import OutletGlacier, make_annual_cube, make_subyearly_cube

CENTRE = (-150000.0, -2250000.0)
VARS = ["vx", "vy", "v", "v_error"]


def _minimum_bytes(store: Path, names: list[str], tdim: str, xi, yi, ti) -> int:
    """Bytes of the chunk objects of ``names`` that intersect the selection, plus coordinates."""
    total = 0
    for coord in ("x", "y", tdim):
        total += sum(p.stat().st_size for p in (store / coord).glob("[0-9]*"))
    for name in names:
        meta = json.loads((store / name / ".zarray").read_text())
        dims = json.loads((store / name / ".zattrs").read_text())["_ARRAY_DIMENSIONS"]
        sel = {tdim: ti, "y": yi, "x": xi}
        ids = [
            np.unique(np.asarray(sel[d]) // c) for d, c in zip(dims, meta["chunks"], strict=True)
        ]
        for combo in np.array(np.meshgrid(*ids, indexing="ij")).reshape(len(ids), -1).T:
            p = store / name / ".".join(map(str, combo))
            if p.exists():
                total += p.stat().st_size
    return total


def _run_case(label: str, root: Path, store: Path, kind: str, area, start, end, latency, srv):
    tdim = "mid_date" if kind == "subyearly" else "time"
    xmin, ymin, xmax, ymax = area.in_crs(3413).bounds
    raw = xr.open_zarr(store, decode_timedelta=False)
    x, y, t = raw.x.values, raw.y.values, raw[tdim].values
    xi = np.nonzero((x + 60 > xmin) & (x - 60 <= xmax))[0]
    yi = np.nonzero((y + 60 > ymin) & (y - 60 <= ymax))[0]
    tmask = (t >= np.datetime64(start)) & (t < np.datetime64(end) + np.timedelta64(1, "D"))
    minimum = _minimum_bytes(store, VARS, tdim, xi, yi, np.nonzero(tmask)[0])
    url = f"{srv.url}/{store.name}"
    srv.set_faults(Faults(latency=latency))

    srv.stats.reset()
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        res = download(area, start=start, end=end, kind=kind, variables=VARS, urls=[url], out=out)
        t_ours = (
            time.perf_counter() - t0
        )  # the local store is written; reading it back is not timed
        ours = open_cube_values(res.stores[0])
    b_ours = srv.stats.bytes_sent

    srv.stats.reset()
    t0 = time.perf_counter()
    ds = xr.open_dataset(url, engine="zarr", consolidated=True, decode_timedelta=False)
    ds = ds[VARS].isel(x=xi, y=yi)
    ds = ds.isel({tdim: np.nonzero(tmask)[0]}).load()
    t_plain = time.perf_counter() - t0
    b_plain = srv.stats.bytes_sent
    plain = ds.sortby(tdim).vx.values
    same = np.array_equal(np.nan_to_num(ours, nan=-1), np.nan_to_num(plain, nan=-1))
    srv.set_faults(Faults())
    return {
        "case": label,
        "itscube_s": round(t_ours, 3),
        "xarray_s": round(t_plain, 3),
        "speedup": round(t_plain / t_ours, 2),
        "itscube_bytes_over_minimum": round(b_ours / minimum, 3),
        "xarray_bytes_over_minimum": round(b_plain / minimum, 3),
        "minimum_bytes": minimum,
        "same_values": bool(same),
    }


def open_cube_values(store: Path) -> np.ndarray:
    from itscube import open_cube

    return open_cube(store).vx.values


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--latency", type=float, default=0.05, help="seconds added per request")
    ap.add_argument("--layers", type=int, default=2000, help="layers of the sub-yearly cube")
    ap.add_argument("--size", type=int, default=120, help="cube width/height in pixels")
    args = ap.parse_args()
    field = OutletGlacier(x_head=CENTRE[0] - 5000, y_c=CENTRE[1], half_width=3000)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        sub = root / "sub.zarr"
        ann = root / "annual.zarr"
        make_subyearly_cube(
            sub, field, centre=CENTRE, shape=(args.size, args.size), n_layers=args.layers, seed=1
        )
        make_annual_cube(
            ann, field, centre=CENTRE, shape=(args.size, args.size), years=range(2015, 2023)
        )
        area = bbox_area(
            CENTRE[0] - 2400, CENTRE[1] - 2400, CENTRE[0] + 2400, CENTRE[1] + 2400, crs="EPSG:3413"
        )
        rows = []
        with StoreServer(root) as srv:
            # warm-up: imports, HTTP sessions and thread pools of both approaches
            _run_case("warm-up", root, ann, "annual", area, "2016-01-01", "2016-12-31", 0.0, srv)
            rows.append(
                _run_case(
                    f"sub-yearly {args.size}x{args.size}x{args.layers}, 40x40 px, 2017-2020",
                    root,
                    sub,
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
                    f"annual {args.size}x{args.size}x8, 40x40 px, 2016-2021",
                    root,
                    ann,
                    "annual",
                    area,
                    "2016-01-01",
                    "2021-12-31",
                    args.latency,
                    srv,
                )
            )
    print(f"latency per request: {args.latency * 1000:.0f} ms")
    for r in rows:
        print(json.dumps(r))


if __name__ == "__main__":
    main()
