"""Shared fixtures: synthetic ITS_LIVE cubes served by real local servers (HTTP and S3)."""

from __future__ import annotations

import dataclasses
import os
import shutil
import threading
from pathlib import Path

# One numba cache for the whole run (in-process kernels, xdist workers and the CLI
# subprocesses): the user's kernel cache, fixed before the session fixture below
# points ITSCUBE_CACHE_DIR at a temporary folder. Set before numba is imported.
os.environ.setdefault(
    "NUMBA_CACHE_DIR",
    str(Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "itscube" / "numba"),
)

import pytest

from itscube._datasets import itslive as synthetic
from itscube.testing.server import Faults, StoreServer
from tests.helpers import CENTRE_A, CENTRE_B, CENTRE_UTM, EPSG, FIELD, SHAPE, UTM_EPSG


@dataclasses.dataclass
class Cubes:
    root: Path
    layers: synthetic.Layers
    a: object  # datasets as written (encoded)
    b: object
    annual: object

    @property
    def a_path(self) -> Path:
        return self.root / "A.zarr"


LONG_MODULES = {
    "test_readme.py": 280,
    "test_notebooks.py": 145,
    "test_formats.py": 145,
    "test_cluster.py": 145,
    "test_demo.py": 60,
    "test_cluster_faults.py": 60,
    "test_reproject.py": 55,
    "test_flux_errors.py": 45,
    "test_benchmarks.py": 45,
    "test_download.py": 40,
    "test_strain_cli.py": 35,
    "test_track_cli.py": 35,
    "test_cli.py": 35,
}
"""Modules of half a minute or more, with their seconds on one CI core (``--durations=0``
summed per file). They are collected first, longest first, and ``--no-loadscope-reorder``
keeps that order: on several workers (pytest-xdist, one module per worker at a time) the
longest start at once instead of one of them running alone at the end (CI: 845 s -> ...)."""


def pytest_collection_modifyitems(config, items):
    items.sort(key=lambda item: -LONG_MODULES.get(item.path.name, 0))  # stable


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    """Keep catalog caches and the sample away from the user's home."""
    cache = tmp_path_factory.mktemp("itscube-cache")
    old = os.environ.get("ITSCUBE_CACHE_DIR")
    os.environ["ITSCUBE_CACHE_DIR"] = str(cache)
    yield cache
    if old is None:
        os.environ.pop("ITSCUBE_CACHE_DIR", None)
    else:
        os.environ["ITSCUBE_CACHE_DIR"] = old


@pytest.fixture(autouse=True)
def _fast_retries():
    """Short back-off in tests; every setting a test changes is restored after it."""
    from itscube import get_options, set_options

    saved = get_options()
    with set_options(backoff=0.01):
        yield
    set_options(**saved)


@pytest.fixture(scope="session")
def cubes(tmp_path_factory) -> Cubes:
    root = tmp_path_factory.mktemp("cubes")
    layers = synthetic.make_layers(120, "2015-01-01", "2022-12-31", seed=11)
    a = synthetic.make_subyearly_cube(
        root / "A.zarr", FIELD, centre=CENTRE_A, shape=SHAPE, layers=layers, seed=1, noise=False
    )
    b = synthetic.make_subyearly_cube(
        root / "B.zarr", FIELD, centre=CENTRE_B, shape=SHAPE, layers=layers, seed=2, noise=False
    )
    annual = synthetic.make_annual_cube(
        root / "A_annual.zarr", FIELD, centre=CENTRE_A, shape=SHAPE, seed=1, noise=False
    )
    synthetic.make_subyearly_cube(
        root / "UTM.zarr",
        FIELD,
        epsg=UTM_EPSG,
        centre=CENTRE_UTM,
        shape=(20, 20),
        n_layers=30,
        seed=5,
    )
    # a store without consolidated metadata: reads as empty over http unless detected
    shutil.copytree(root / "A.zarr", root / "unconsolidated.zarr")
    (root / "unconsolidated.zarr" / ".zmetadata").unlink()
    return Cubes(root, layers, a, b, annual)


@pytest.fixture(scope="session")
def http_server(cubes):
    with StoreServer(cubes.root) as srv:
        yield srv


@pytest.fixture
def server(http_server):
    """The session HTTP server with faults cleared and counters reset for this test."""
    http_server.set_faults(Faults())
    http_server.stats.reset()
    yield http_server
    http_server.set_faults(Faults())


@pytest.fixture(scope="session")
def catalog_file(cubes, http_server, tmp_path_factory) -> Path:
    url = http_server.url
    feats = [
        synthetic.catalog_feature(
            f"{url}/A.zarr",
            EPSG,
            CENTRE_A,
            SHAPE,
            composite_zarr_url=f"{url}/A_annual.zarr",
            granule_count=120,
        ),
        synthetic.catalog_feature(f"{url}/B.zarr", EPSG, CENTRE_B, SHAPE, new_style=False),
        synthetic.catalog_feature(f"{url}/UTM.zarr", UTM_EPSG, CENTRE_UTM, (20, 20)),
    ]
    return synthetic.write_catalog(tmp_path_factory.mktemp("catalog") / "catalog_v02.json", feats)


@pytest.fixture(scope="session")
def s3_server(cubes):
    """A moto S3 server on 127.0.0.1 holding the cubes in a public-read bucket."""
    moto_server = pytest.importorskip("moto.server")
    boto3 = pytest.importorskip("boto3")
    from werkzeug.serving import make_server

    class Quiet(moto_server.MotoRequestHandler):  # moto's header handling, no log
        def log_request(self, *args, **kwargs):
            pass

    app = moto_server.DomainDispatcherApplication(moto_server.create_backend_app)

    def logged(environ, start_response):  # moto's application, each request noted
        S3_REQUESTS.append((environ["REQUEST_METHOD"], environ["PATH_INFO"]))
        return app(environ, start_response)

    srv = make_server("127.0.0.1", 0, logged, threaded=True, request_handler=Quiet)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    endpoint = f"http://127.0.0.1:{srv.server_port}"
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )
    client.create_bucket(Bucket="its-live-data", ACL="public-read")
    for name in ("A.zarr", "A_annual.zarr", "unconsolidated.zarr"):
        for path in (cubes.root / name).rglob("*"):
            if path.is_file():
                key = f"datacubes/{path.relative_to(cubes.root).as_posix()}"
                client.put_object(
                    Bucket="its-live-data", Key=key, Body=path.read_bytes(), ACL="public-read"
                )
    old = os.environ.get("ITSCUBE_S3_ENDPOINT")
    os.environ["ITSCUBE_S3_ENDPOINT"] = endpoint
    yield endpoint
    if old is None:
        os.environ.pop("ITSCUBE_S3_ENDPOINT", None)
    else:
        os.environ["ITSCUBE_S3_ENDPOINT"] = old
    srv.shutdown()


S3_REQUESTS: list[tuple[str, str]] = []
"""(method, path) of every request :func:`s3_server` answered."""


@pytest.fixture
def s3_requests(s3_server) -> list[tuple[str, str]]:
    """The requests the S3 server answers from now on: (method, path)."""
    S3_REQUESTS.clear()
    return S3_REQUESTS
