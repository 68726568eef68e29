"""Benchmark: ``itscube download`` against plain xarray from ``s3://``, whole processes.

The cube of ``bench_download_sizes.py`` (1,000 pairs, chunks (1000, 10, 10)) in a bucket of
a moto S3 server on 127.0.0.1 that answers every request after ``--latency`` seconds (a
WSGI wrapper around moto's application). Both sides read through s3fs, anonymously:

* ``itscube download --url s3://... --bbox ...`` (s3fs's connection pool sized to the
  requests in flight, 64 by default);
* a script doing ``xr.open_dataset("s3://...", engine="zarr")``, ``.isel()``, ``.load()``
  and ``.to_zarr()`` locally (s3fs's defaults: botocore's pool of 10 connections).

Reported: seconds of each, the ratio, and the requests the server saw.

Run: ``python benchmarks/bench_download_s3.py [--latency 0.05] [--sizes 40 120]``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_download_sizes import PLAIN, _make_cube, commands

SERVER = textwrap.dedent(
    """
    import json, sys, threading, time
    from pathlib import Path
    import boto3
    from moto.server import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    class Quiet(MotoRequestHandler):  # moto's header handling, no log lines
        def log_request(self, *args, **kwargs):
            pass

    root, latency = Path(sys.argv[1]), float(sys.argv[2])
    app = DomainDispatcherApplication(create_backend_app)
    count = {}
    lock = threading.Lock()

    def slow(environ, start_response):
        with lock:
            verb = environ["REQUEST_METHOD"]
            count[verb] = count.get(verb, 0) + 1
        time.sleep(latency)
        return app(environ, start_response)

    srv = make_server("127.0.0.1", 0, slow, threaded=True, request_handler=Quiet)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{srv.server_port}"
    s3 = boto3.client("s3", endpoint_url=url, aws_access_key_id="x",
                      aws_secret_access_key="x", region_name="us-east-1")
    s3.create_bucket(Bucket="cubes", ACL="public-read")
    latency_now, latency = latency, 0.0  # upload at full speed
    for path in root.rglob("*"):
        if path.is_file():
            s3.put_object(Bucket="cubes", Key=path.relative_to(root.parent).as_posix(),
                          Body=path.read_bytes(), ACL="public-read")
    latency = latency_now
    print(url, flush=True)
    for line in sys.stdin:
        print(json.dumps(count), flush=True)
        count.clear()
    """
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--latency", type=float, default=0.05)
    ap.add_argument("--layers", type=int, default=1000)
    ap.add_argument("--sizes", type=int, nargs="+", default=[40, 120])
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "itscube-bench")
    args = ap.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    store = _make_cube(args.cache, max(args.sizes) + 10, args.layers)
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(store), str(args.latency)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    endpoint = server.stdout.readline().strip()
    url = f"s3://cubes/{store.name}"
    plain_opts = {"anon": True, "client_kwargs": {"endpoint_url": endpoint}}  # s3fs's defaults
    env = {
        **os.environ,
        "ITSCUBE_S3_ENDPOINT": endpoint,
        "ITSCUBE_S3_ANON": "1",
        "BENCH_STORAGE_OPTIONS": json.dumps(plain_opts),
    }

    def requests() -> dict:
        server.stdin.write("count\n")
        server.stdin.flush()
        return json.loads(server.stdout.readline())

    def timed(cmd: list[str]) -> float:
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, env=env)
        return time.perf_counter() - t0

    try:
        for size in args.sizes:
            with tempfile.TemporaryDirectory() as out:
                ours_cmd, plain_cmd = commands(url, out, size, PLAIN)
                requests()
                ours = timed(ours_cmd)
                n_ours = requests()
                plain = timed(plain_cmd)
                n_plain = requests()
            row = {
                "pixels": f"{size} x {size}",
                "itscube_s": round(ours, 2),
                "xarray_s": round(plain, 2),
                "speedup": round(plain / ours, 2),
                "itscube_requests": n_ours,
                "xarray_requests": n_plain,
                "itscube_mean_in_flight": round(sum(n_ours.values()) * args.latency / ours, 1),
                "xarray_mean_in_flight": round(sum(n_plain.values()) * args.latency / plain, 1),
            }
            print(json.dumps(row), flush=True)
    finally:
        server.terminate()


if __name__ == "__main__":
    main()
