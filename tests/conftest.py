"""Shared fixtures: synthetic ITS_LIVE cubes served by real local servers (HTTP and S3)."""

from __future__ import annotations

import dataclasses
import os
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from itscube._datasets import itslive as synthetic
from itscube.cli import app
from itscube.testing.server import Faults, StoreServer

EPSG = 3413
CENTRE_A = (-150000.0, -2250000.0)
SHAPE = (40, 40)
# B overlaps A by 10 columns: its tile centre is 30 pixels further east
CENTRE_B = (CENTRE_A[0] + 30 * 120.0, CENTRE_A[1])
UTM_EPSG = 32622
CENTRE_UTM = (500000.0, 7700000.0)

FIELD = synthetic.LinearField(
    u0=150.0,
    v0=-40.0,
    a=0.004,
    b=0.001,
    c=-0.002,
    d=0.003,
    x0=CENTRE_A[0],
    y0=CENTRE_A[1],
    accel=10.0,
)
"""Analytic field of the test cubes (m/yr; strain rates in 1/yr)."""


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


LONG_MODULES = (
    "test_readme.py",
    "test_notebooks.py",
    "test_demo.py",
    "test_browser.py",
    "test_cluster.py",
)
"""Modules of a minute or more: collected first, so that on several workers (pytest-xdist,
a module per worker) they start at once instead of running alone at the end."""


def pytest_collection_modifyitems(config, items):
    items.sort(key=lambda item: 0 if item.path.name in LONG_MODULES else 1)  # stable


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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def s3_server(cubes):
    """A moto S3 server on 127.0.0.1 holding the cubes in a public-read bucket."""
    moto_server = pytest.importorskip("moto.server")
    boto3 = pytest.importorskip("boto3")
    port = _free_port()
    srv = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    srv.start()
    endpoint = f"http://127.0.0.1:{port}"
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
    srv.stop()


def analytic(x, y, date) -> tuple[np.ndarray, np.ndarray]:
    """The test field at pixel centres and a datetime64 (m/yr)."""
    X, Y = np.meshgrid(x, y)
    t = float(synthetic.decimal_year(np.array([date]))[0])
    return FIELD(X, Y, t)


_runner = CliRunner()


def run_cli(*args):
    """Invoke the itscube CLI in-process."""
    return _runner.invoke(app, [str(a) for a in args])


def one_line_error(result, code=2, match=""):
    """The CLI failed with ``code`` and a single ``error: ...`` line, no traceback."""
    assert result.exit_code == code, result.output
    lines = [
        line
        for line in result.output.strip().splitlines()
        if line.strip() and not line.startswith("plan:")  # the download's plan, printed first
    ]
    text = " ".join(lines)
    assert "Traceback" not in result.output
    assert text.startswith("error:"), result.output
    assert match in text


def point_download_args(catalog_file, start="2018-01-01", end="2018-12-31") -> list:
    """CLI arguments of a download of the centre of cube A through the test catalog."""
    return [
        "--point",
        CENTRE_A[0],
        CENTRE_A[1],
        "--crs",
        "EPSG:3413",
        "--start",
        start,
        "--end",
        end,
        "--catalog",
        catalog_file,
    ]
