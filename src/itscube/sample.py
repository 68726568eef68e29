"""The offline sample bundled with itscube: a synthetic outlet glacier in the ITS_LIVE v2 schema.

``itscube/data/sample.zip`` (a few MB) holds

* ``ITS_LIVE_vel_EPSG3413_G0120_X-150000_Y-2250000.zarr``: a sub-yearly (image-pair) cube,
  :data:`SAMPLE_LAYERS` layers with unsorted ``mid_date``, Landsat 8/9 and Sentinel-1/2 pairs of
  5 to 544 days, per-layer errors of 0.1 source pixel over the pair separation (+2 m/yr),
  Gaussian noise of that size, int16 storage and rectangular cloud gaps;
* ``ITS_LIVE_velocity_EPSG3413_120m_X-150000_Y-2250000.zarr``: its annual composites;
* ``catalog_v02.json``: a catalog in the layout of the official one, whose ``zarr_url`` and
  ``composite_zarr_url`` are relative to the catalog (so the sample works wherever it is served);
* ``Example_Qdiv/Thickness.tif`` and ``Example_Qdiv/Boundaries.csv``: the flux-divergence
  templates (thickness from :func:`itscube._datasets.glacier_thickness`, boundary polygon around
  the lower trunk);
* ``SAMPLE.json``: how it was made.

The data are synthetic, never real ITS_LIVE measurements: velocities are the analytic field
:data:`SAMPLE_FIELD` (:class:`itscube._datasets.OutletGlacier`) sampled at each layer's centre
date, so every product can be checked against known values. :func:`build_sample` regenerates
everything deterministically and ``python -m itscube.sample BUNDLE.zip`` rewrites the bundle;
the tests check that the bundle equals a fresh build.

:func:`ensure_sample` unpacks the bundle into the cache folder once; :func:`serve_sample` serves
it over HTTP on 127.0.0.1 like the ITS_LIVE bucket, catalog included.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import shutil
import sys
import zipfile
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import shapely.geometry

from itscube._datasets import itslive as synthetic
from itscube.io.catalog import cache_dir

if TYPE_CHECKING:
    from itscube.testing import StacServer

__all__ = [
    "BUCKET_ANNUAL",
    "BUCKET_CUBES",
    "BUCKET_URL",
    "BUNDLE_DATE",
    "CATALOG_NAME",
    "SAMPLE_CENTRE",
    "SAMPLE_EPSG",
    "SAMPLE_FIELD",
    "SAMPLE_LAYERS",
    "SAMPLE_PORT",
    "SAMPLE_SCENES",
    "SAMPLE_SEED",
    "SAMPLE_SHAPE",
    "SAMPLE_VERSION",
    "SAMPLE_YEARS",
    "BucketMirror",
    "Sample",
    "SampleServer",
    "build_sample",
    "bundle_path",
    "ensure_sample",
    "serve_bucket",
    "serve_sample",
    "write_bucket",
    "write_bundle",
    "write_qdiv_templates",
    "write_scenes",
]

SAMPLE_VERSION = 3
SAMPLE_EPSG = 3413
SAMPLE_CENTRE = (-150000.0, -2250000.0)
SAMPLE_SHAPE = (80, 80)
SAMPLE_LAYERS = 240
SAMPLE_YEARS = (2015, 2022)
SAMPLE_SEED = 2024
SAMPLE_FIELD = synthetic.OutletGlacier(
    x_head=SAMPLE_CENTRE[0] - 6000.0,
    y_c=SAMPLE_CENTRE[1],
    half_width=3000.0,
    u_head=300.0,
    grad=0.04,
    converge=0.01,
    head_ramp=3000.0,
)
"""Analytic velocity field of the sample glacier (m/yr); see
:class:`itscube._datasets.OutletGlacier`. Downstream of ``x_head + head_ramp`` the centre-line
speed is ``factor(t) * (u_head + grad * (x - x_head))``."""

CATALOG_NAME = "catalog_v02.json"
SAMPLE_PORT = 8735
"""Port the sample server tries first on 127.0.0.1 (any free port otherwise)."""
BUNDLE_DATE = (2025, 1, 1, 0, 0, 0)


def bundle_path() -> Path:
    """Path of the bundled ``sample.zip`` inside the installed package."""
    return Path(str(resources.files("itscube") / "data" / "sample.zip"))


@dataclasses.dataclass(frozen=True)
class Sample:
    """Paths of the (unpacked) sample data."""

    root: Path

    @property
    def subyearly(self) -> Path:
        """Sub-yearly (image-pair) cube."""
        return self.root / synthetic.subyearly_name(SAMPLE_EPSG, SAMPLE_CENTRE)

    @property
    def annual(self) -> Path:
        """Annual composite cube."""
        return self.root / synthetic.annual_name(SAMPLE_EPSG, SAMPLE_CENTRE)

    @property
    def catalog(self) -> Path:
        """Catalog with cube URLs relative to itself."""
        return self.root / CATALOG_NAME

    @property
    def thickness(self) -> Path:
        """Ice-thickness GeoTIFF template (m, EPSG:3413)."""
        return self.root / "Example_Qdiv" / "Thickness.tif"

    @property
    def boundary(self) -> Path:
        """Boundary-polygon CSV template (x, y in EPSG:3413 metres)."""
        return self.root / "Example_Qdiv" / "Boundaries.csv"

    @property
    def scenes(self) -> Path:
        """Folder of the synthetic Sentinel-2-like scenes and their STAC items (``items.json``,
        hrefs relative to the sample root)."""
        return self.root / "scenes"

    def scene_items(self, root_url: str) -> list[dict]:
        """The scenes' STAC items with hrefs under ``root_url`` (where the sample is served)."""
        items = json.loads((self.scenes / "items.json").read_text())
        for item in items:
            for asset in item["assets"].values():
                asset["href"] = f"{root_url.rstrip('/')}/{asset['href']}"
        return items

    @property
    def info(self) -> dict:
        """Contents of ``SAMPLE.json``."""
        return json.loads((self.root / "SAMPLE.json").read_text())


def build_sample(root: str | Path) -> Sample:
    """Generate the whole sample into ``root`` (deterministic; overwrites)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    sample = Sample(root)
    start, end = f"{SAMPLE_YEARS[0]}-01-01", f"{SAMPLE_YEARS[1]}-12-31"
    common: dict[str, Any] = dict(
        epsg=SAMPLE_EPSG, centre=SAMPLE_CENTRE, shape=SAMPLE_SHAPE, seed=SAMPLE_SEED
    )
    synthetic.make_subyearly_cube(
        sample.subyearly,
        SAMPLE_FIELD,
        n_layers=SAMPLE_LAYERS,
        start=start,
        end=end,
        gap_share=0.5,
        gap_size=0.9,
        **common,
    )
    synthetic.make_annual_cube(
        sample.annual,
        SAMPLE_FIELD,
        years=range(SAMPLE_YEARS[0], SAMPLE_YEARS[1] + 1),
        **common,
    )
    feature = synthetic.catalog_feature(
        sample.subyearly.name,
        SAMPLE_EPSG,
        SAMPLE_CENTRE,
        SAMPLE_SHAPE,
        composite_zarr_url=sample.annual.name,
        granule_count=SAMPLE_LAYERS,
        region="SAMPLE",
    )
    synthetic.write_catalog(sample.catalog, [feature])
    write_qdiv_templates(root / "Example_Qdiv")
    write_scenes(sample.scenes)
    info = {
        "synthetic": True,
        "description": "Synthetic outlet glacier in the ITS_LIVE v2 datacube schema, made by "
        "itscube.sample.build_sample; NOT real ITS_LIVE data.",
        "version": SAMPLE_VERSION,
        "field": {"class": "itscube._datasets.OutletGlacier", **dataclasses.asdict(SAMPLE_FIELD)},
        "epsg": SAMPLE_EPSG,
        "centre": SAMPLE_CENTRE,
        "shape": SAMPLE_SHAPE,
        "layers": SAMPLE_LAYERS,
        "years": SAMPLE_YEARS,
        "seed": SAMPLE_SEED,
    }
    (root / "SAMPLE.json").write_text(json.dumps(info, indent=1) + "\n")
    return sample


def write_bundle(path: str | Path) -> Path:
    """Build the sample and pack it into a deterministic zip at ``path``."""
    import tempfile

    path = Path(path)
    with tempfile.TemporaryDirectory() as tmp:
        root = build_sample(Path(tmp) / "sample").root
        part = path.with_name(path.name + ".part")
        with zipfile.ZipFile(part, "w") as zf:
            for f in sorted(p for p in root.rglob("*") if p.is_file()):
                info = zipfile.ZipInfo(f.relative_to(root).as_posix(), BUNDLE_DATE)
                info.external_attr = 0o644 << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(info, f.read_bytes(), compresslevel=9)
        part.replace(path)
    return path


def ensure_sample(root: str | Path | None = None, bundle: str | Path | None = None) -> Sample:
    """Unpack the bundled sample into ``root`` unless it is already there.

    Parameters
    ----------
    root : destination folder (default: ``<itscube cache>/sample-v<version>-<hash>``).
    bundle : the zip to unpack (default: the one shipped in the package, :func:`bundle_path`).

    Returns
    -------
    Sample
        Paths of the unpacked data. The folder is complete when it exists (unpacked under a
        temporary name, then renamed).
    """
    bundle = Path(bundle) if bundle is not None else bundle_path()
    if not bundle.is_file():
        raise FileNotFoundError(
            f"the sample bundle {bundle} is missing; reinstall itscube or rebuild it with "
            "`python -m itscube.sample BUNDLE.zip`"
        )
    if root is None:
        digest = hashlib.sha256(bundle.read_bytes()).hexdigest()[:12]
        root = cache_dir() / f"sample-v{SAMPLE_VERSION}-{digest}"
    root = Path(root)
    if (root / "SAMPLE.json").is_file():
        return Sample(root)
    tmp = root.with_name(root.name + ".part")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    with zipfile.ZipFile(bundle) as zf:
        zf.extractall(tmp)
    if root.exists():
        shutil.rmtree(root)
    tmp.replace(root)
    return Sample(root)


class SampleServer:
    """The sample served over HTTP on 127.0.0.1 like the ITS_LIVE bucket.

    ``url`` is the served folder, ``catalog_url`` its catalog (pass it as ``catalog=`` to
    :func:`itscube.download` or :func:`itscube.load_catalog`). Stop it with :meth:`close`, or
    use :func:`serve_sample` as a context manager.
    """

    def __init__(self, sample: Sample | None = None):
        from itscube.testing.server import StoreServer

        self.sample = sample or ensure_sample()
        # a fixed port when free keeps cube URLs (and so download identities) stable across runs
        self._server = StoreServer(self.sample.root, port=SAMPLE_PORT).start()
        self._stac: StacServer | None = None

    @property
    def url(self) -> str:
        return self._server.url

    @property
    def catalog_url(self) -> str:
        return f"{self.url}/{CATALOG_NAME}"

    @property
    def stac_url(self) -> str:
        """A STAC API (collection ``sentinel-2-l2a``) listing the sample's scenes."""
        if self._stac is None:
            from itscube.testing import StacServer

            self._stac = StacServer(self.sample.scene_items(self.url)).start()
        return self._stac.url

    @property
    def subyearly_url(self) -> str:
        return f"{self.url}/{self.sample.subyearly.name}"

    @property
    def annual_url(self) -> str:
        return f"{self.url}/{self.sample.annual.name}"

    def close(self) -> None:
        """Stop serving."""
        if self._stac is not None:
            self._stac.stop()
        self._server.stop()

    def __repr__(self) -> str:
        return f"SampleServer(catalog_url={self.catalog_url!r})"


@contextlib.contextmanager
def serve_sample(sample: Sample | None = None) -> Iterator[SampleServer]:
    """Serve the sample on 127.0.0.1 (a free port) like the ITS_LIVE bucket, while in the block.

    Examples
    --------
    >>> import itscube
    >>> with serve_sample() as srv:
    ...     area = itscube.point_area(*SAMPLE_CENTRE, crs="EPSG:3413")
    ...     cubes = itscube.find_cubes(area, srv.catalog_url)
    >>> [c.epsg for c in cubes]
    [3413]
    """
    server = SampleServer(sample)
    try:
        yield server
    finally:
        server.close()


BUCKET_URL = "https://its-live-data.s3.amazonaws.com"
"""The ITS_LIVE bucket over HTTPS (what :func:`serve_bucket` stands in for)."""
BUCKET_CUBES = "datacubes/v2-updated-october2024/N60W040"
"""Where the real cube of the sample's tile lives in the bucket."""
BUCKET_ANNUAL = "composites/annual/v2/N60W040"


def write_bucket(folder: str | Path, sample: Sample | None = None) -> Path:
    """Lay the sample out as the ITS_LIVE bucket holds the real cubes of its tile: the
    catalog at ``datacubes/catalog_v02.json`` (listing ``http://`` cube URLs, as the real
    one does), the image-pair cube under :data:`BUCKET_CUBES`, the annual cube where the
    annual composites live. Served as a mirror (:func:`serve_bucket`), it lets code written
    for real data, official URLs included, run offline on the sample."""
    sample = sample or ensure_sample()
    folder = Path(folder)
    cubes = folder / BUCKET_CUBES
    annual = folder / BUCKET_ANNUAL
    for src, dst in ((sample.subyearly, cubes), (sample.annual, annual), (sample.scenes, folder)):
        if not (dst / src.name).exists():
            dst.mkdir(parents=True, exist_ok=True)
            shutil.copytree(src, dst / src.name)
    http = BUCKET_URL.replace("https://", "http://")
    feature = synthetic.catalog_feature(
        f"{http}/{BUCKET_CUBES}/{sample.subyearly.name}",
        SAMPLE_EPSG,
        SAMPLE_CENTRE,
        SAMPLE_SHAPE,
        granule_count=SAMPLE_LAYERS,
        region="N60W040",
    )
    synthetic.write_catalog(folder / "datacubes" / CATALOG_NAME, [feature])
    return folder


@dataclasses.dataclass
class BucketMirror:
    """The sample served as the ITS_LIVE bucket and STAC API (see :func:`serve_bucket`)."""

    bucket_url: str
    stac_url: str

    @property
    def mirrors(self) -> str:
        """The value of ``ITSCUBE_MIRRORS`` that sends the official URLs here (the bucket,
        the ITS_LIVE STAC API, and Earth Search for the images)."""
        from itscube.io.catalog import DEFAULT_STAC_URL
        from itscube.io.imagery import EARTH_SEARCH

        return (
            f"{BUCKET_URL}={self.bucket_url};{DEFAULT_STAC_URL}={self.stac_url};"
            f"{EARTH_SEARCH}={self.stac_url}"
        )


@contextlib.contextmanager
def serve_bucket(folder: str | Path | None = None) -> Iterator[BucketMirror]:
    """Serve :func:`write_bucket` (and a STAC API listing its cube) on 127.0.0.1.

    With ``ITSCUBE_MIRRORS`` set to :attr:`BucketMirror.mirrors`, the official catalog, cube
    and STAC URLs are read from here: the README's real-data examples run offline.

    Examples
    --------
    >>> import os, itscube
    >>> with serve_bucket() as bucket:
    ...     os.environ["ITSCUBE_MIRRORS"] = bucket.mirrors
    ...     area = itscube.bbox_area(-48.9, 69.37, -48.72, 69.43)
    ...     found = itscube.find_cubes(area, itscube.load_catalog(cache=False))
    ...     del os.environ["ITSCUBE_MIRRORS"]
    >>> [c.zarr_url.rsplit("/", 1)[-1] for c in found]
    ['ITS_LIVE_vel_EPSG3413_G0120_X-150000_Y-2250000.zarr']
    """
    import tempfile

    from itscube.io.catalog import STAC_COLLECTION
    from itscube.testing import StacServer, StoreServer

    with contextlib.ExitStack() as stack:
        if folder is None:
            folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="itscube-bucket-"))
        root = write_bucket(folder)
        store = stack.enter_context(StoreServer(root))
        doc = json.loads((root / "datacubes" / CATALOG_NAME).read_text())
        items = []
        for i, f in enumerate(doc["features"]):
            href = f["properties"]["zarr_url"].replace("http://", "https://")
            items.append(
                {
                    "type": "Feature",
                    "stac_version": "1.0.0",
                    "id": f"cube-{i}",
                    "collection": STAC_COLLECTION,
                    "geometry": f["geometry"],
                    "bbox": list(shapely.geometry.shape(f["geometry"]).bounds),
                    "properties": {
                        "datetime": "2024-10-01T00:00:00Z",
                        "proj:code": f"EPSG:{f['properties']['epsg']}",
                    },
                    "links": [],
                    "assets": {"zarr": {"href": href, "type": "application/vnd+zarr"}},
                }
            )
        scenes = Sample(root).scene_items(store.url)
        stac = stack.enter_context(StacServer(items + scenes))
        yield BucketMirror(store.url, stac.url)


SAMPLE_SCENES = (
    ("S2A_SAMPLE_20180320", "2018-03-20T14:30:00", 0.6),
    ("S2A_SAMPLE_20180415", "2018-04-15T14:30:00", 0.0),
)
"""The sample's optical scenes: (id, time, cloud share). The cloudy one is closer to the
demo's start date (2018-01-01); the clear one is what a background should show."""


def write_scenes(folder: str | Path) -> Path:
    """Synthetic Sentinel-2-like scenes of the sample glacier (UTM 22N, 20 m) and
    ``items.json``, their STAC items with hrefs relative to the sample root."""
    from itscube._datasets.scenes import write_scene

    folder = Path(folder)
    cx, cy = SAMPLE_CENTRE
    half = 120.0 * SAMPLE_SHAPE[1] / 2
    bounds = (cx - half, cy - half, cx + half, cy + half)
    items = [
        write_scene(folder, sid, t, SAMPLE_FIELD, bounds, cloud=c, href_root="scenes", seed=k)
        for k, (sid, t, c) in enumerate(SAMPLE_SCENES)
    ]
    (folder / "items.json").write_text(json.dumps(items, indent=1) + "\n")
    return folder


def write_qdiv_templates(folder: str | Path) -> tuple[Path, Path]:
    """The ``Example_Qdiv`` templates for the sample cube: ``Thickness.tif`` (240 m grid,
    EPSG:3413, from :func:`itscube._datasets.glacier_thickness`) and ``Boundaries.csv``
    (a polygon around the lower trunk, x/y in EPSG:3413 metres)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    cx, cy = SAMPLE_CENTRE
    x = cx - 7000 + 240.0 * np.arange(59) + 120
    y = cy + 7000 - 240.0 * np.arange(59) - 120
    X, Y = np.meshgrid(x, y)
    tif = synthetic.write_geotiff(
        folder / "Thickness.tif",
        x,
        y,
        synthetic.glacier_thickness(SAMPLE_FIELD, X, Y),
        SAMPLE_EPSG,
    )
    pts = [
        (cx - 3000, cy - 2200),
        (cx + 1000, cy - 2500),
        (cx + 4000, cy - 2000),
        (cx + 4200, cy + 1800),
        (cx + 500, cy + 2400),
        (cx - 2800, cy + 2100),
    ]
    csv = folder / "Boundaries.csv"
    csv.write_text("x,y\n" + "".join(f"{px:.1f},{py:.1f}\n" for px, py in pts))
    return tif, csv


if __name__ == "__main__":  # pragma: no cover - maintenance entry point
    if len(sys.argv) != 2:
        sys.exit("usage: python -m itscube.sample BUNDLE.zip")
    out = write_bundle(sys.argv[1])
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB)")
