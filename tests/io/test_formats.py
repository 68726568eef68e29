"""Every generation of the archive through the real servers: Zarr v2, Zarr v3 (sharded or
not), Icechunk (native and virtual, local and on S3), real-writer conventions, catalogs."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from zarr.abc.store import OffsetByteRequest, RangeByteRequest, SuffixByteRequest
from zarr.core.buffer import default_buffer_prototype

from itscube import (
    CatalogError,
    CubeFormatError,
    CubeNotFoundError,
    InputError,
    InsufficientSpaceError,
    bbox_area,
    download,
    open_cube,
)
from itscube._datasets import itslive as synthetic
from itscube.io.chunkcache import cached_keys
from itscube.io.stores import open_source, run_sync
from itscube.testing import Faults, StacServer, StoreServer
from tests.helpers import FIELD, one_line_error, run_cli

LAYERS = synthetic.make_layers(40, "2016-01-01", "2019-12-31", seed=21)
EPSG = 3413
# on the real lattice: x = 52.5 (mod 120), y = 67.5 (mod 120)
C_V2 = (-150000.0, -2250000.0)
SHAPE_V2 = (30, 33)
X_V2, Y_V2 = synthetic.tile_coords(C_V2, SHAPE_V2, y_offset=synthetic.LATTICE_OFFSET_Y)
# a v2.2 tile abutting the v2 one on the east, 32 px wide
C_V22 = (float(X_V2[-1] + 120 * 16.5 + 60), C_V2[1])

pytestmark = pytest.mark.slow  # half a minute or more: outside the fast lane


def _make(path, centre, shape, layout, **kw):
    return synthetic.make_subyearly_cube(
        path,
        FIELD,
        centre=centre,
        shape=shape,
        layers=LAYERS,
        seed=3,
        noise=False,
        layout=layout,
        y_offset=synthetic.LATTICE_OFFSET_Y,
        **kw,
    )


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    root = tmp_path_factory.mktemp("formats")
    ds = _make(root / "v2.zarr", C_V2, SHAPE_V2, "v2")
    _make(root / "v22.zarr", C_V2, SHAPE_V2, "v2.2", spatial_chunk=8)
    _make(root / "v22s.zarr", C_V2, SHAPE_V2, "v2.2-sharded", spatial_chunk=8, shard=16)
    east = _make(root / "east.zarr", C_V22, (30, 32), "v2.2", spatial_chunk=8)
    # a v2.2 store with a chunk that was never written (missing_value only, fill 0)
    shutil.copytree(root / "v22.zarr", root / "holes.zarr")
    (root / "holes.zarr" / "vx" / "c" / "0" / "0" / "0").unlink()
    with StoreServer(root) as srv:
        yield root, srv, ds, east


@pytest.fixture
def srv(stores):
    _, server, _, _ = stores
    server.set_faults(Faults())
    server.stats.reset()
    return server


def _area(x0, x1, y0, y1):
    return bbox_area(x0, y0, x1, y1, crs="EPSG:3413")


AREA = _area(X_V2[3] - 10, X_V2[20] + 10, Y_V2[18] - 10, Y_V2[2] + 10)


def _check_equal(res, reference, xs=None):
    ds = open_cube(res.stores[0])
    ref = open_cube(reference).sel(x=ds.x, y=ds.y, mid_date=ds.mid_date.values)
    for v in ("vx", "vy", "v", "v_error", "date_dt"):
        np.testing.assert_array_equal(ds[v].values, ref[v].values, err_msg=v)
    # dates re-encoded from seconds since 1980 to days since 1970 (float64): within 1 us
    diff = ds.acquisition_date_img1.values - ref.acquisition_date_img1.values
    assert np.abs(diff.astype("i8")).max() <= 1000
    np.testing.assert_array_equal(ds.satellite_img1.values, ref.satellite_img1.values)
    return ds


@pytest.mark.parametrize("name", ["v22.zarr", "v22s.zarr"])
def test_zarr_v3_equals_v2_twin(stores, srv, tmp_path, name):
    root = stores[0]
    cube = open_source(f"{srv.url}/{name}")
    assert cube.format == "zarr-v3" and cube.time_dim == "time" and cube.kind == "subyearly"
    assert cube["vx"].missing == -32767, "missing_value alone marks missing data"
    res = download(
        AREA, start="2017-01-01", end="2018-12-31", urls=[f"{srv.url}/{name}"], out=tmp_path
    )
    ds = _check_equal(res, root / "v2.zarr")
    assert "mid_date" in ds.dims, "sub-yearly output keeps one time name whatever the source"
    assert ds.sizes["mid_date"] > 5


def test_sharded_reads_inner_chunks_by_range(stores, srv, tmp_path):
    root = stores[0]
    area = _area(X_V2[1] - 10, X_V2[1] + 10, Y_V2[1] - 10, Y_V2[1] + 10)  # one pixel
    download(area, urls=[f"{srv.url}/v22s.zarr"], out=tmp_path, variables=["vx"])
    shard_files = [p for p in (root / "v22s.zarr" / "vx" / "c").rglob("*") if p.is_file()]
    read = {k: b for k, b in srv.stats.paths.items() if k.startswith("v22s.zarr/vx/c/")}
    assert len(read) == 1, "one shard touched"
    shard = root / next(iter(read))
    assert shard in shard_files
    # the inner chunk and the shard index, not the whole shard (16 x 16 px = 4 inner chunks)
    assert read[next(iter(read))] < 0.5 * shard.stat().st_size


def test_bytes_close_to_intersecting_chunks(stores, srv, tmp_path):
    root = stores[0]
    res = download(AREA, urls=[f"{srv.url}/v22.zarr"], out=tmp_path, variables=["vx", "vy"])
    cube = open_source(root / "v22.zarr")
    ids = set()
    x, y = cube.read_many(["x", "y"]).values()
    xi = np.nonzero((x > X_V2[3] - 70) & (x < X_V2[20] + 70))[0]
    yi = np.nonzero((y > Y_V2[18] - 70) & (y < Y_V2[2] + 70))[0]
    ids = cube["vx"].chunk_ids([np.arange(len(LAYERS.img1)), yi, xi])
    need = 0
    for v in ("vx", "vy"):
        for c in ids:
            need += (root / "v22.zarr" / v / "c" / "/".join(map(str, c))).stat().st_size
    got = sum(
        b for k, b in srv.stats.paths.items() if k.split("/")[1] in ("vx", "vy") and "/c/" in k
    )
    assert need <= got <= 1.05 * need
    assert res.chunks >= 2 * len(ids)


def test_never_written_chunk_reads_missing(stores, srv, tmp_path):
    res = download(AREA, urls=[f"{srv.url}/holes.zarr"], out=tmp_path, variables=["vx", "vy"])
    ds = open_cube(res.stores[0], require=["vx"])
    ref = open_cube(stores[0] / "v2.zarr").sel(x=ds.x, y=ds.y)
    # chunk (all dates, 0:8, 0:8) is absent: NaN there, never zero velocity
    x8, y8 = X_V2[:8], Y_V2[:8]
    hole = ds.vx.sel(x=ds.x[np.isin(ds.x, x8)], y=ds.y[np.isin(ds.y, y8)])
    assert hole.size > 0 and bool(hole.isnull().all())
    other = ds.vx.where(~(ds.x.isin(x8) & ds.y.isin(y8)))
    np.testing.assert_array_equal(
        other.notnull().values, ref.vx.where(other.notnull()).notnull().values
    )
    assert float(np.abs(ds.vy).min()) > 0


def test_date_dt_decoded_as_timedelta_is_days(stores, srv, tmp_path):
    import xarray as xr

    from itscube.io.cube import normalise_cube

    raw = xr.open_zarr(stores[0] / "v22.zarr", decode_timedelta=True)
    assert np.issubdtype(raw.date_dt.dtype, np.timedelta64), "units 'days' decode to timedelta"
    for ds in (
        normalise_cube(raw.rename(time="mid_date")),
        open_cube(f"{srv.url}/v22.zarr"),
        open_cube(download(AREA, urls=[f"{srv.url}/v22.zarr"], out=tmp_path).stores[0]),
    ):
        assert ds.date_dt.dtype == np.float32 and "mid_date" in ds.dims
        np.testing.assert_allclose(np.sort(ds.date_dt.values), np.sort(LAYERS.dt_days), rtol=1e-6)
    # the filter reads date_dt in days whatever the store's encoding
    res = download(
        AREA,
        urls=[f"{srv.url}/v22.zarr"],
        out=tmp_path / "f",
        filters=__import__("itscube").Filters(max_dt_days=100),
    )
    dt = open_cube(res.stores[0]).date_dt.values
    assert 0 < len(dt) < len(LAYERS.dt_days) and dt.max() <= 100


def test_mosaic_of_v2_and_v22_tiles(stores, srv, tmp_path):
    _root, _, _, east = stores
    xe = east.x.values
    area = _area(X_V2[-6], xe[5], Y_V2[20], Y_V2[4])
    res = download(
        area,
        urls=[f"{srv.url}/v2.zarr", f"{srv.url}/east.zarr"],
        out=tmp_path,
        start="2016-01-01",
        end="2017-12-31",
        variables=["vx", "vy", "acquisition_date_img1", "acquisition_date_img2"],
    )
    assert len(res.stores) == 1
    ds = open_cube(res.stores[0])
    assert np.all(np.diff(ds.x.values) == 120.0) and ds.x.min() < X_V2[-1] < ds.x.max()
    assert np.all(np.mod(ds.x.values, 120) == 52.5) and np.all(np.mod(ds.y.values, 120) == 67.5)
    assert float(ds.x.max()) >= xe[5] - 1
    east_layers = 0
    for k in range(ds.sizes["mid_date"]):
        X, Y = np.meshgrid(ds.x.values, ds.y.values)
        ex, _ = synthetic.mean_velocity(
            FIELD,
            X,
            Y,
            float(synthetic.decimal_year(ds.acquisition_date_img1.values[k : k + 1])[0]),
            float(synthetic.decimal_year(ds.acquisition_date_img2.values[k : k + 1])[0]),
        )
        ok = ds.vx.values[k] == ds.vx.values[k]
        east_layers += bool(ok[:, -3:].any())
        np.testing.assert_allclose(ds.vx.values[k][ok], ex[ok], atol=0.51)
    assert east_layers > ds.sizes["mid_date"] / 2, "the v2.2 tile fills the east columns"
    prov = json.loads(res.provenance.read_text())
    assert [s["format"] for s in prov["sources"]] == ["zarr-v2", "zarr-v3"]


def test_optional_variables_skipped_explicit_ones_fail(stores, srv, tmp_path):
    root = stores[0]
    lean = root / "lean.zarr"
    if not lean.exists():
        shutil.copytree(root / "v22.zarr", lean)
        shutil.rmtree(lean / "sensor_img2")
        meta = json.loads((lean / "zarr.json").read_text())
        meta["consolidated_metadata"]["metadata"].pop("sensor_img2")
        (lean / "zarr.json").write_text(json.dumps(meta))
    urls = [f"{srv.url}/v2.zarr", f"{srv.url}/lean.zarr"]
    res = download(AREA, urls=urls, out=tmp_path)
    assert any("sensor_img2" in n and "lean.zarr" in n for n in res.notes)
    prov = json.loads(res.provenance.read_text())
    assert any("sensor_img2" in n for n in prov["notes"])
    with pytest.raises(InputError, match=r"sensor_img2 for .*lean\.zarr \(one of the 2 cubes"):
        download(AREA, urls=urls, out=tmp_path / "x", variables=["vx", "sensor_img2"])
    assert not (tmp_path / "x").exists() or not any((tmp_path / "x").rglob("*.zarr"))


def test_faults_on_sharded_v3(stores, srv, tmp_path):
    srv.set_faults(Faults(error_rate=0.2, drop_rate=0.1, seed=5, only_suffix="/c/"))
    res = download(AREA, urls=[f"{srv.url}/v22s.zarr"], out=tmp_path, workers=4)
    assert srv.stats.errors_injected > 0 and srv.stats.drops_injected > 0
    srv.set_faults(Faults())
    _check_equal(res, stores[0] / "v2.zarr")


def test_server_ignoring_range_still_reads_right(stores, srv, tmp_path):
    """A server that answers ranged requests 200 with the whole shard (python -m
    http.server, some proxies): the ranges are cut from the answers, the values are right."""
    srv.set_faults(Faults(ignore_range=True))
    res = download(AREA, urls=[f"{srv.url}/v22s.zarr"], out=tmp_path, workers=4)
    assert res.chunks_fetched > 0
    _check_equal(res, stores[0] / "v2.zarr")
    cube = open_source(f"{srv.url}/v22s.zarr")
    key = next(k for k in srv.stats.paths if k.startswith("v22s.zarr/vx/c/"))
    whole = (stores[0] / key).read_bytes()
    proto = default_buffer_prototype()
    inner = key.removeprefix("v22s.zarr/")
    for rng, want in (
        (RangeByteRequest(3, 40), whole[3:40]),
        (SuffixByteRequest(20), whole[-20:]),
        (OffsetByteRequest(7), whole[7:]),
    ):
        got = run_sync(cube.store._get_with_retries(inner, proto, rng))
        assert got.to_bytes() == want, rng


def test_not_a_store(stores, srv, tmp_path):
    with pytest.raises(CubeNotFoundError, match="no Zarr v2, Zarr v3 or Icechunk store"):
        open_source(f"{srv.url}/nothing.zarr")
    r = run_cli("info", f"{srv.url}/nothing.zarr")
    one_line_error(r, match="no Zarr v2, Zarr v3 or Icechunk store")


def test_disk_space_checked_first(stores, srv, tmp_path, monkeypatch):
    import importlib

    dl = importlib.import_module("itscube.io.download.run")

    monkeypatch.setattr(dl, "_free_bytes", lambda path: 1000)
    with pytest.raises(InsufficientSpaceError, match=r"not enough disk space.*GB"):
        download(AREA, urls=[f"{srv.url}/v22.zarr"], out=tmp_path)
    assert not any(tmp_path.iterdir()), "no debris"
    assert srv.stats.paths and not any("/vx/c/" in k for k in srv.stats.paths), "nothing fetched"


def test_blocks_bound_memory_whatever_the_size():
    """Block layout for huge requests stays within the budget (plan level, no data)."""
    from itscube.io.download.plan import BLOCK_BYTES, VarSpec, _choose_blocks

    specs = [
        VarSpec(v, ("mid_date", "y", "x"), np.dtype("i2"), -32767, {}, "tiled")
        for v in ("vx", "vy", "v", "v_error")
    ]

    class _Cube(dict):
        pass

    class _Arr:
        def __init__(self, chunks):
            self.chunks = chunks

    class _Part:
        def __init__(self, chunks):
            self.cube = _Cube({s.name: _Arr(chunks) for s in specs})

    for chunks, nt in (((20000, 10, 10), 25000), ((20000, 8, 8), 2500), ((1, 512, 512), 30000)):
        for n in (250, 833, 2000):
            block, out = _choose_blocks([_Part(chunks)], specs, nt, n, n)
            bt, by, bx = block
            size = bt * by * bx * 8
            assert size <= 1.3 * BLOCK_BYTES or (by, bx) == chunks[1:], (chunks, n, block)
            assert bt % out[0] == 0 or bt == nt
            assert by == out[1] and bx == out[2]


# ------------------------------------------------------------------ Icechunk


@pytest.fixture(scope="module")
def local_icechunk(stores, tmp_path_factory):
    import icechunk

    root = tmp_path_factory.mktemp("ice")
    ds = stores[2]
    synthetic.write_icechunk_subyearly(
        ds, icechunk.local_filesystem_storage(str(root / "n.icechunk"))
    )
    gran = root / "granules"
    gran.mkdir()
    prefix = f"file://{gran}/"
    synthetic.write_icechunk_subyearly(
        ds,
        icechunk.local_filesystem_storage(str(root / "v.icechunk")),
        virtual=prefix,
        granule_store=icechunk.local_filesystem_store(str(gran)),
        put=lambda name, data: (gran / name).write_bytes(data),
    )
    synthetic.write_icechunk_subyearly(
        ds,
        icechunk.local_filesystem_storage(str(root / "nocontainer.icechunk")),
        virtual=prefix,
        granule_store=icechunk.local_filesystem_store(str(gran)),
        put=lambda name, data: None,
        declare_container=False,
    )
    return root


@pytest.mark.parametrize("name", ["n.icechunk", "v.icechunk"])
def test_local_icechunk(stores, local_icechunk, tmp_path, name):
    url = str(local_icechunk / name)
    cube = open_source(url)
    assert cube.format == "icechunk" and cube.snapshot
    if name.startswith("v"):
        assert cube["vx"].chunks[0] == 1, "virtual arrays: one layer per chunk"
    res = download(AREA, urls=[url], out=tmp_path, start="2017-01-01", end="2018-12-31")
    ds = _check_equal(res, stores[0] / "v2.zarr")
    prov = json.loads(res.provenance.read_text())
    assert prov["sources"][0]["format"] == "icechunk"
    assert prov["sources"][0]["snapshot"] == cube.snapshot
    assert "icechunk" in prov["versions"]
    assert ds.sizes["mid_date"] > 5
    lazy = open_cube(url)
    assert "mid_date" in lazy.dims and lazy.vx.chunks is not None


def test_icechunk_without_container(stores, local_icechunk, tmp_path):
    url = str(local_icechunk / "nocontainer.icechunk")
    with pytest.raises(CubeFormatError, match="declares no virtual chunk container"):
        download(AREA, urls=[url], out=tmp_path, variables=["vx"])
    folder = next(tmp_path.iterdir())
    assert not list(folder.glob("*.zarr")) and not (folder / "provenance.json").exists()
    r = run_cli(
        "download",
        "--bbox",
        *AREA.geometry.bounds,
        "--crs",
        "EPSG:3413",
        "--url",
        url,
        "--variables",
        "vx",
        "--out",
        tmp_path / "cli",
        "--no-progress",
        "--all-dates",
    )
    one_line_error(r, match="declares no virtual chunk container")


@pytest.mark.s3
def test_icechunk_on_s3_native_and_virtual(stores, s3_server, tmp_path):
    import boto3
    import icechunk

    ds = stores[2]
    client = boto3.client(
        "s3",
        endpoint_url=s3_server,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )

    def storage(prefix):
        return icechunk.s3_storage(
            bucket="its-live-data",
            prefix=prefix,
            region="us-east-1",
            endpoint_url=s3_server,
            allow_http=True,
            access_key_id="testing",
            secret_access_key="testing",
            force_path_style=True,
        )

    def put(name, data):
        client.put_object(
            Bucket="its-live-data", Key=f"granules/{name}", Body=data, ACL="public-read"
        )

    synthetic.write_icechunk_subyearly(ds, storage("datacubes/spatial/v2.2/n.icechunk"))
    synthetic.write_icechunk_subyearly(
        ds,
        storage("datacubes/spatial/v2.2/v.icechunk"),
        virtual="s3://its-live-data/granules/",
        granule_store=icechunk.s3_store(
            region="us-east-1",
            endpoint_url=s3_server,
            allow_http=True,
            s3_compatible=True,
            force_path_style=True,
        ),
        put=put,
    )
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket="its-live-data", Prefix="datacubes/spatial/"):
        for obj in page.get("Contents", []):
            client.put_object_acl(Bucket="its-live-data", Key=obj["Key"], ACL="public-read")
    for name in ("n", "v"):
        url = f"s3://its-live-data/datacubes/spatial/v2.2/{name}.icechunk"
        res = download(AREA, urls=[url], out=tmp_path / name, start="2017-01-01", end="2018-12-31")
        _check_equal(res, stores[0] / "v2.zarr")


# ------------------------------------------------------------------ catalogs and STAC


def _chunk_aligned_catalog(path, srv_url, local_icechunk):
    feats = []
    for name, centre, shape, zarr_ok, ice in (
        ("v22.zarr", C_V2, SHAPE_V2, 0, str(local_icechunk / "n.icechunk")),
        ("east.zarr", C_V22, (30, 32), 1, None),
    ):
        f = synthetic.catalog_feature(
            f"{srv_url}/{name}", EPSG, centre, shape, y_offset=synthetic.LATTICE_OFFSET_Y
        )
        p = f["properties"]
        p.pop("composite_zarr_url", None)
        p.update(
            cube_id=name.split(".")[0],
            datacube_exist=zarr_ok,
            icechunk_url=ice or "",
            icechunk_filename=(ice or "").rsplit("/", 1)[-1],
            icechunk_exist=int(bool(ice)),
        )
        feats.append(f)
    return synthetic.write_catalog(path, feats)


def test_chunk_aligned_catalog(stores, srv, local_icechunk, tmp_path):
    from itscube import find_cubes, load_catalog

    cat = load_catalog(_chunk_aligned_catalog(tmp_path / "cat.json", srv.url, local_icechunk))
    hits = find_cubes(AREA, cat)
    assert len(hits) == 1 and hits[0].url().endswith("n.icechunk"), "no Zarr: the repository"
    assert hits[0].cube_id == "v22"
    res = download(AREA, catalog=cat, out=tmp_path, start="2017-01-01", end="2017-12-31")
    _check_equal(res, stores[0] / "v2.zarr")
    r = run_cli(
        "find",
        "--bbox",
        *AREA.geometry.bounds,
        "--crs",
        "EPSG:3413",
        "--catalog",
        tmp_path / "cat.json",
        "--json",
    )
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)[0]["cube_id"] == "v22"


def test_unknown_catalog_format(tmp_path):
    from itscube import load_catalog

    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {"type": "Feature", "geometry": None, "properties": {"name": "x", "href": "y"}}
                ],
            }
        )
    )
    with pytest.raises(CatalogError, match="unknown catalog format"):
        load_catalog(bad)
    r = run_cli("find", "--point", "-49.7", "69.17", "--catalog", bad)
    one_line_error(r, match="unknown catalog format")
    items = tmp_path / "items.json"
    items.write_text(json.dumps({"type": "Feature", "properties": {}}))
    r = run_cli("find", "--point", "-49.7", "69.17", "--catalog", items)
    one_line_error(r, match="not an ITS_LIVE cube catalog")


@pytest.fixture(scope="module")
def stac_api(stores):
    """A small STAC API (/, /collections/itslive-cubes, /search) on 127.0.0.1."""
    _root, srv, _, _ = stores
    items = []
    for name, centre, shape in (("v2", C_V2, SHAPE_V2), ("east", C_V22, (30, 32))):
        f = synthetic.catalog_feature(
            f"{srv.url}/{name}.zarr", EPSG, centre, shape, y_offset=synthetic.LATTICE_OFFSET_Y
        )
        items.append(
            {
                "type": "Feature",
                "stac_version": "1.0.0",
                "id": name,
                "geometry": f["geometry"],
                "bbox": list(_bounds(f["geometry"])),
                "properties": {"datetime": "2024-01-01T00:00:00Z", "proj:code": f"EPSG:{EPSG}"},
                "links": [],
                "assets": {
                    "zarr": {"href": f"{srv.url}/{name}.zarr", "type": "application/vnd+zarr"}
                },
                "collection": "itslive-cubes",
            }
        )
    with StacServer(items) as api:
        yield api.url, api.searches


def _bounds(geom):
    import shapely.geometry as sg

    return sg.shape(geom).bounds


def test_stac_finder(stores, srv, stac_api, tmp_path):
    from itscube.io.catalog import find_cubes_stac

    url, searches = stac_api
    hits = find_cubes_stac(AREA, url)
    assert [h.cube_id for h in hits] == ["v2"]
    assert searches[-1]["collections"] == ["itslive-cubes"]
    res = download(AREA, stac=url, out=tmp_path, start="2017-01-01", end="2017-12-31")
    _check_equal(res, stores[0] / "v2.zarr")
    assert json.loads(res.provenance.read_text())["catalog"] == f"stac:{url}"
    r = run_cli(
        "find", "--bbox", *AREA.geometry.bounds, "--crs", "EPSG:3413", "--stac", url, "--json"
    )
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)[0]["cube_id"] == "v2"
    r = run_cli("find", "--point", "0", "0", "--stac", "http://127.0.0.1:9/")
    one_line_error(r, match="STAC API http://127.0.0.1:9/ cannot be searched")


# ------------------------------------------------------------------ interruptions


@pytest.mark.slow
def test_killed_sharded_download_resumes_to_identical_store(stores, srv, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    args = [
        sys.executable,
        "-m",
        "itscube.cli",
        "download",
        "--bbox",
        *map(str, AREA.geometry.bounds),
        "--crs",
        "EPSG:3413",
        "--url",
        f"{srv.url}/v22s.zarr",
        "--workers",
        "2",
        "--no-progress",
        "--all-dates",
        "--variables",
        "vx,vy,date_dt",
    ]
    ref = subprocess.run(
        [*args, "--out", str(tmp_path / "ref")], capture_output=True, text=True, timeout=120
    )
    assert ref.returncode == 0, ref.stderr
    srv.set_faults(Faults(latency=0.1))
    proc = subprocess.Popen(
        [*args, "--out", str(tmp_path / "run")],
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.time() + 60
    while time.time() < deadline:
        if sum("@" in k for k in cached_keys(tmp_path / "run")) >= 4:  # shard byte ranges
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    folder = next((tmp_path / "run").iterdir())
    assert not (folder / "provenance.json").exists() and not list(folder.glob("*.zarr"))
    srv.set_faults(Faults())
    again = subprocess.run(
        [*args, "--out", str(tmp_path / "run")], capture_output=True, text=True, timeout=120
    )
    assert again.returncode == 0, again.stderr
    prov = json.loads((folder / "provenance.json").read_text())
    assert (
        prov["transfer"]["chunks_fetched_this_run"]
        < json.loads((next((tmp_path / "ref").iterdir()) / "provenance.json").read_text())[
            "transfer"
        ]["chunks_fetched_this_run"]
    )
    ref_store = next(next((tmp_path / "ref").iterdir()).glob("*.zarr"))
    run_store = next(folder.glob("*.zarr"))
    for p in ref_store.rglob("*"):
        if p.is_file() and p.name not in (".zattrs", ".zmetadata"):
            assert (run_store / p.relative_to(ref_store)).read_bytes() == p.read_bytes(), p


def test_icechunk_lost_storage_resumes(stores, local_icechunk, tmp_path, monkeypatch):
    """Icechunk reads fail mid-way (a lost server); the re-run resumes from the cache and
    gives the same store as an uninterrupted download."""
    from itscube.errors import DownloadError
    from itscube.io.stores import CachingStore

    url = str(local_icechunk / "v.icechunk")
    ref = download(AREA, urls=[url], out=tmp_path / "ref", variables=["vx", "vy"])
    calls = {"n": 0}
    real = CachingStore._get_with_retries

    async def flaky(self, key, prototype, byte_range):
        calls["n"] += 1
        if calls["n"] > 30:
            raise DownloadError("storage gone")
        return await real(self, key, prototype, byte_range)

    monkeypatch.setattr(CachingStore, "_get_with_retries", flaky)
    with pytest.raises(DownloadError, match="storage gone"):
        download(AREA, urls=[url], out=tmp_path / "run", variables=["vx", "vy"], workers=1)
    monkeypatch.setattr(CachingStore, "_get_with_retries", real)
    res = download(AREA, urls=[url], out=tmp_path / "run", variables=["vx", "vy"])
    assert 0 < res.chunks_fetched < ref.chunks_fetched
    a, b = open_cube(ref.stores[0]), open_cube(res.stores[0])
    for v in ("vx", "vy"):
        np.testing.assert_array_equal(a[v].values, b[v].values)


@pytest.mark.slow
def test_real_tile_sizes_833_834_512_mosaic(tmp_path):
    """Full-size tiles on the shared lattice: v2 833 px, its 834 px neighbour (one column of
    overlap) and a v2.2 512 px tile below, mosaicked into one store."""
    few = synthetic.make_layers(3, "2018-01-01", "2018-12-31", seed=2)
    a_c = (-150000.0, -2250000.0)
    tiles = [
        ("a.zarr", a_c, (833, 833), "v2", 10),
        ("b.zarr", (a_c[0] + 100000.0, a_c[1]), (834, 834), "v2", 10),
        ("c.zarr", (a_c[0] + 40000.0, a_c[1] - 50000.0 - 30750.0), (512, 512), "v2.2", 8),
    ]
    made = {}
    for name, centre, shape, layout, chunk in tiles:
        ds = synthetic.make_subyearly_cube(
            tmp_path / name,
            FIELD,
            centre=centre,
            shape=shape,
            layers=few,
            seed=1,
            noise=False,
            gap_share=0.0,
            layout="none",
            y_offset=synthetic.LATTICE_OFFSET_Y,
        )
        # the velocity components only: 7,000 chunk files per variable at full size
        extra = [v for v in ds.data_vars if ds[v].ndim == 3 and v not in ("vx", "vy")]
        made[name] = ds.drop_vars(extra)
        synthetic.write_subyearly(made[name], tmp_path / name, layout=layout, spatial_chunk=chunk)
    xa, ya = made["a.zarr"].x.values, made["a.zarr"].y.values
    xb = made["b.zarr"].x.values
    assert len(xa) == 833 and len(xb) == 834 and made["c.zarr"].sizes["x"] == 512
    area = _area(xa[-4], xb[3], ya[-1] - 4 * 120, ya[-1] + 4 * 120)
    with StoreServer(tmp_path) as server:
        urls = [f"{server.url}/{n}" for n, *_ in tiles]
        res = download(area, urls=urls, out=tmp_path / "out", variables=["vx", "vy"])
    ds = open_cube(res.stores[0], require=["vx"])
    assert len(res.stores) == 1
    assert np.all(np.diff(ds.x.values) == 120.0) and np.all(np.diff(ds.y.values) == -120.0)
    assert np.all(np.mod(ds.x.values, 120) == 52.5) and np.all(np.mod(ds.y.values, 120) == 67.5)
    X, Y = np.meshgrid(ds.x.values, ds.y.values)
    for k in range(ds.sizes["mid_date"]):
        t1 = float(synthetic.decimal_year(few.img1[k : k + 1])[0])
        t2 = float(synthetic.decimal_year(few.img2[k : k + 1])[0])
        order = np.argsort(few.mid_date)[k]
        t1 = float(synthetic.decimal_year(few.img1[order : order + 1])[0])
        t2 = float(synthetic.decimal_year(few.img2[order : order + 1])[0])
        ex, _ = synthetic.mean_velocity(FIELD, X, Y, t1, t2)
        vx = ds.vx.values[k]
        ok = ~np.isnan(vx)
        np.testing.assert_allclose(vx[ok], ex[ok], atol=0.51)
    # every tile contributed: columns east of A from B, rows south of A from C
    east = ds.x.values > xa[-1]
    south = ds.y.values < ya[-1] - 120
    assert np.isfinite(ds.vx.values[:, :, east]).any()
    assert np.isfinite(ds.vx.values[:, south, :][:, :, ~east]).any()
    prov = json.loads(res.provenance.read_text())
    assert len(prov["sources"]) == 3


def test_values_read_straight_into_blocks_are_those_the_output_keeps():
    """A cube's chunks are decoded straight into a block only where the output keeps its
    values as stored: ``keeps_values`` holds exactly where ``to_output`` hands them on."""
    from itscube.io.download.encode import VarSpec, keeps_values, to_output
    from itscube.io.stores.arrays import SourceArray

    def src(dtype, missing, units):
        return SourceArray(
            "v", ("mid_date", "y", "x"), (4, 2, 2), (4, 2, 2), np.dtype(dtype),
            {"units": units}, missing, array=None,
        )  # fmt: skip

    def spec(dtype, missing, units):
        return VarSpec("v", ("mid_date", "y", "x"), np.dtype(dtype), missing, {"units": units},
                       "tiled")  # fmt: skip

    cases = [
        (src("i2", -32767, "m/y"), spec("i2", -32767, "m/y"), True),
        (src("f4", np.nan, "m/y"), spec("f4", np.nan, "m/y"), True),
        (src("i2", -32767, "m/y"), spec("i2", -9999, "m/y"), False),  # another marker
        (src("f4", np.nan, "m/y"), spec("i2", -32767, "m/y"), False),  # another dtype
        (src("f8", np.nan, "days"), spec("f8", np.nan, "hours"), False),  # rescaled
        (
            src("f8", np.nan, "days since 1970-01-01"),
            spec("f8", np.nan, "days since 2000-01-01"),
            False,
        ),
        (
            src("f8", np.nan, "days since 1970-01-01"),
            spec("f8", np.nan, "days since 1970-01-01"),
            True,
        ),
    ]
    for s, o, expected in cases:
        values = np.arange(16, dtype=s.dtype).reshape(4, 2, 2)
        assert keeps_values(s, o) is expected, (s.dtype, o.dtype, s.units, o.attrs)
        assert (to_output(values, s, o) is values) is expected
