"""Subset downloads through the real HTTP path: values, chunks, mosaics, faults, resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import zarr

from itscube import (
    DownloadError,
    EmptySelectionError,
    Filters,
    InputError,
    OutputExistsError,
    bbox_area,
    download,
    open_cube,
)
from itscube.io.chunkcache import cached_keys
from itscube.io.stores import CachingStore
from itscube.testing.server import Faults
from tests.helpers import CENTRE_A, CENTRE_B, analytic

X0, Y0 = CENTRE_A
# a box inside A only, spanning several 10 x 10 chunks
AREA_A = bbox_area(X0 - 2000, Y0 - 700, X0, Y0 + 700, crs="EPSG:3413")


def _assert_equal_to_source(ds, source_path, start, end):
    src = open_cube(source_path, start=start, end=end).sel(x=ds.x, y=ds.y)
    assert list(ds.mid_date.values) == list(src.mid_date.values)
    for v in ("vx", "vy", "v", "v_error", "vx_error", "date_dt", "acquisition_date_img1"):
        np.testing.assert_array_equal(ds[v].values, src[v].values, err_msg=v)
    np.testing.assert_array_equal(ds.satellite_img1.values, src.satellite_img1.values)


def test_subset_equals_source(cubes, server, catalog_file, tmp_path):
    res = download(
        AREA_A, start="2017-01-01", end="2019-12-31", catalog=str(catalog_file), out=tmp_path
    )
    assert res.folder.name == "subyearly_bbox_-152000_-2250700_-150000_-2249300_20170101_20191231"
    ds = open_cube(res.stores[0])
    # every pixel whose 120 m cell overlaps the box, and no other
    x, y = cubes.a.x.values, cubes.a.y.values
    np.testing.assert_array_equal(ds.x.values, x[(x + 60 > X0 - 2000) & (x - 60 <= X0)])
    np.testing.assert_array_equal(ds.y.values, y[(y + 60 > Y0 - 700) & (y - 60 <= Y0 + 700)])
    t = ds.indexes["mid_date"]
    assert t.is_monotonic_increasing
    assert t.min() >= pd.Timestamp("2017-01-01") and t.max() < pd.Timestamp("2020-01-01")
    mid = cubes.layers.mid_date
    assert (
        len(t) == ((mid >= np.datetime64("2017-01-01")) & (mid < np.datetime64("2020-01-01"))).sum()
    )
    assert ds.rio.crs.to_epsg() == 3413
    _assert_equal_to_source(ds, cubes.a_path, "2017-01-01", "2019-12-31")
    # the source's mid_date numbers are kept bit for bit (same encoding), not re-encoded
    src_raw = zarr.open_group(str(cubes.a_path), mode="r")["mid_date"][:]
    out_raw = zarr.open_group(str(res.stores[0]), mode="r")["mid_date"][:]
    assert np.isin(out_raw, src_raw).all() and len(np.unique(out_raw)) == len(out_raw)
    prov = json.loads(res.provenance.read_text())
    assert prov["complete"] and prov["sources"][0]["url"].endswith("/A.zarr")
    assert prov["query"]["start"] == "2017-01-01"
    assert prov["sources"][0]["catalog_entry"]["epsg"] == 3413
    assert not (res.folder / ".partial").exists()
    # the same command again finds the finished download and fetches nothing
    server.stats.reset()
    again = download(
        AREA_A, start="2017-01-01", end="2019-12-31", catalog=str(catalog_file), out=tmp_path
    )
    assert again.already_complete and server.stats.requests <= 2  # catalog-free: only metadata


def test_only_intersecting_chunks_are_read(cubes, server, catalog_file, tmp_path):
    res = download(
        AREA_A,
        start="2017-01-01",
        end="2019-12-31",
        catalog=str(catalog_file),
        out=tmp_path,
        variables=["vx", "vy"],
    )
    x = cubes.a.x.values
    y = cubes.a.y.values
    ix = np.nonzero((x + 60 > X0 - 2000) & (x - 60 <= X0))[0] // 10
    iy = np.nonzero((y + 60 > Y0 - 700) & (y - 60 <= Y0 + 700))[0] // 10
    expected = {f"0.{j}.{i}" for j in set(iy) for i in set(ix)}
    for var in ("vx", "vy"):
        read = {
            p.split("/")[-1]
            for p in server.stats.paths
            if p.startswith(f"A.zarr/{var}/") and not p.endswith((".zarray", ".zattrs"))
        }
        assert read == expected, var
    assert not any(p.startswith("A.zarr/v/") or p.startswith("B.zarr") for p in server.stats.paths)
    assert res.chunks == 2 * len(expected) + 1  # + the time coordinate


def test_filters(cubes, server, catalog_file, tmp_path):
    f = Filters(min_dt_days=10, max_dt_days=200, sensors=("S2", "L9"), min_valid_percent=50)
    res = download(AREA_A, catalog=str(catalog_file), out=tmp_path, filters=f)
    ds = open_cube(res.stores[0])
    assert len(ds.mid_date) > 0
    assert float(ds.date_dt.min()) >= 10 and float(ds.date_dt.max()) <= 200
    labels = set(
        np.char.add(ds.mission_img1.values.astype(str), ds.satellite_img1.values.astype(str))
    )
    assert labels <= {"S2A", "S2B", "L9"}
    assert float(ds.roi_valid_percentage.min()) >= 50
    lay = cubes.layers
    sat = np.char.add(lay.mission.astype(str), lay.satellite.astype(str))
    expect = (lay.dt_days >= 10) & (lay.dt_days <= 200) & np.isin(sat, ["S2A", "S2B", "L9"])
    roi = open_cube(cubes.a_path).roi_valid_percentage.values
    assert len(ds.mid_date) == (expect[np.argsort(lay.mid_date)] & (roi >= 50)).sum()


def test_mosaic_across_tiles(cubes, server, catalog_file, tmp_path):
    area = bbox_area(X0 - 1000, Y0 - 500, CENTRE_B[0] + 1000, Y0 + 500, crs="EPSG:3413")
    res = download(
        area,
        start="2016-01-01",
        end="2017-12-31",
        catalog=str(catalog_file),
        out=tmp_path,
        variables=["vx", "vy", "date_center"],
    )
    assert len(res.stores) == 1
    ds = open_cube(res.stores[0])
    dx = np.diff(ds.x.values)
    assert np.all(dx == 120.0), "regular grid: no duplicated or missing columns at the seam"
    assert ds.x.min() < cubes.b.x.min() and ds.x.max() > cubes.a.x.max()
    # noise-free field: every valid pixel equals the analytic field on both sides of the seam
    for k in range(0, ds.sizes["mid_date"], 7):
        ex, _ey = analytic(ds.x.values, ds.y.values, ds.date_center.values[k])
        vx = ds.vx.values[k]
        ok = ~np.isnan(vx)
        np.testing.assert_allclose(vx[ok], ex[ok], atol=0.5)
    # columns only B covers come from B; overlap takes A where A is valid, B in A's gaps
    a = open_cube(cubes.a_path, start="2016-01-01", end="2017-12-31").reindex_like(ds)
    b = open_cube(cubes.root / "B.zarr", start="2016-01-01", end="2017-12-31").reindex_like(ds)
    expected = a.vx.where(a.vx.notnull(), b.vx)
    np.testing.assert_array_equal(ds.vx.values, expected.values)
    assert (b.vx.notnull() & a.vx.isnull() & ds.vx.notnull()).any(), "B filled some A gaps"
    prov = json.loads(res.provenance.read_text())
    assert len(prov["sources"]) == 2


def test_explicit_urls_and_lonlat_area(cubes, server, tmp_path):
    res = download(bbox_area(*AREA_A.lonlat().bounds), out=tmp_path, urls=[f"{server.url}/A.zarr"])
    assert res.stores[0].name == "subyearly_EPSG3413.zarr"
    assert json.loads(res.provenance.read_text())["catalog"] is None


def test_mixed_projections_get_one_store_each(cubes, server, tmp_path):
    import shapely.geometry as sg

    from itscube.geometry import LONLAT, Area, transform_geometry

    utm = open_cube(f"{server.url}/UTM.zarr")
    ux, uy = float(utm.x.mean()), float(utm.y.mean())
    u_box = transform_geometry(sg.box(ux - 300, uy - 300, ux + 300, uy + 300), utm.rio.crs, LONLAT)
    area = Area(AREA_A.lonlat().union(u_box), LONLAT, "two_regions")
    res = download(area, out=tmp_path, urls=[f"{server.url}/A.zarr", f"{server.url}/UTM.zarr"])
    assert sorted(s.name for s in res.stores) == [
        "subyearly_EPSG32622.zarr",
        "subyearly_EPSG3413.zarr",
    ]
    prov = json.loads(res.provenance.read_text())
    assert set(prov["projections"]) == {"3413", "32622"}
    crs = {open_cube(p).rio.crs.to_epsg() for p in res.stores}
    assert crs == {3413, 32622}


def test_annual_download(cubes, server, catalog_file, tmp_path):
    res = download(
        AREA_A,
        kind="annual",
        start="2017-01-01",
        end="2020-12-31",
        catalog=str(catalog_file),
        out=tmp_path,
    )
    ds = open_cube(res.stores[0])
    assert list(ds.indexes["time"].year) == [2017, 2018, 2019, 2020]
    src = open_cube(cubes.root / "A_annual.zarr", start="2017-01-01", end="2020-12-31").sel(
        x=ds.x, y=ds.y
    )
    for v in ("vx", "vy", "v", "vx_error", "count"):
        np.testing.assert_array_equal(ds[v].values, src[v].values, err_msg=v)
    # annual chunks are whole tiles per year: exactly one chunk per year and variable
    per_var = [
        p
        for p in server.stats.paths
        if p.startswith("A_annual.zarr/vx/")
        and "." in p.split("/")[-1]
        and not p.endswith((".zarray", ".zattrs"))
    ]
    assert len(per_var) == 4


def test_bad_inputs(cubes, server, catalog_file, tmp_path):
    with pytest.raises(InputError, match="start 2020-01-01 is after end"):
        download(
            AREA_A, start="2020-01-01", end="2019-01-01", catalog=str(catalog_file), out=tmp_path
        )
    with pytest.raises(EmptySelectionError, match="no layers"):
        download(
            AREA_A, start="1990-01-01", end="1990-12-31", catalog=str(catalog_file), out=tmp_path
        )
    with pytest.raises(InputError, match="unknown variable"):
        download(AREA_A, variables=["vx", "speed"], catalog=str(catalog_file), out=tmp_path)
    with pytest.raises(InputError, match="not an ISO date"):
        download(AREA_A, start="yesterday-ish", catalog=str(catalog_file), out=tmp_path)
    with pytest.raises(InputError, match="sub-yearly"):
        download(AREA_A, kind="annual", filters=Filters(max_dt_days=30), catalog=str(catalog_file))


def test_different_download_in_same_folder(cubes, server, catalog_file, tmp_path):
    download(
        AREA_A,
        start="2017-01-01",
        end="2017-12-31",
        catalog=str(catalog_file),
        out=tmp_path,
        variables=["vx", "vy"],
    )
    with pytest.raises(OutputExistsError):
        download(
            AREA_A,
            start="2017-01-01",
            end="2017-12-31",
            catalog=str(catalog_file),
            out=tmp_path,
            variables=["vx"],
        )
    res = download(
        AREA_A,
        start="2017-01-01",
        end="2017-12-31",
        catalog=str(catalog_file),
        out=tmp_path,
        variables=["vx"],
        overwrite=True,
    )
    assert set(open_cube(res.stores[0], require=["vx"]).data_vars) == {"vx"}


# ------------------------------------------------------------------ faults and resume


def test_retries_survive_errors_and_dropped_connections(cubes, server, catalog_file, tmp_path):
    server.set_faults(
        Faults(error_rate=0.25, drop_rate=0.2, latency=0.005, seed=3, only_suffix=".")
    )
    res = download(
        AREA_A,
        start="2016-01-01",
        end="2020-12-31",
        catalog=str(catalog_file),
        out=tmp_path,
        workers=8,
    )
    assert server.stats.errors_injected > 0 and server.stats.drops_injected > 0
    server.set_faults(Faults())
    ds = open_cube(res.stores[0])
    _assert_equal_to_source(ds, cubes.a_path, "2016-01-01", "2020-12-31")


def test_persistent_failure_is_bounded_and_clear(cubes, server, catalog_file, tmp_path):
    server.set_faults(Faults(error_rate=1.0, only_suffix="/vx/"))
    t = time.perf_counter()
    with pytest.raises(DownloadError, match=r"giving up on .*attempts"):
        download(AREA_A, catalog=str(catalog_file), out=tmp_path, workers=4)
    assert time.perf_counter() - t < 30
    folder = next(tmp_path.iterdir())
    assert not (folder / "provenance.json").exists()
    assert not list(folder.glob("*.zarr")), "an incomplete store must not look complete"


def _data_keys(folder) -> list[str]:
    return [k for k in cached_keys(folder) if k.split("/")[0] in ("vx", "vy", "v")]


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "itscube.cli", *args]


@pytest.mark.slow
def test_killed_download_resumes_to_identical_store(cubes, server, catalog_file, tmp_path):
    args = [
        "download",
        "--bbox",
        str(X0 - 2400),
        str(Y0 - 1200),
        str(X0),
        str(Y0 + 1200),
        "--crs",
        "EPSG:3413",
        "--catalog",
        str(catalog_file),
        "--workers",
        "2",
        "--no-progress",
        "--all-dates",
        "--variables",
        "vx,vy,v,v_error,date_dt",
    ]
    # reference: an uninterrupted run
    ref = subprocess.run(
        _cli(*args, "--out", str(tmp_path / "ref")), capture_output=True, text=True, timeout=120
    )
    assert ref.returncode == 0, ref.stderr
    server.set_faults(Faults(latency=0.15))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        _cli(*args, "--out", str(tmp_path / "run")),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    cache = tmp_path / "run"
    deadline = time.time() + 60
    while time.time() < deadline:
        if len(_data_keys(cache)) >= 6:  # a few data chunks are in the resume cache
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    folder = next((tmp_path / "run").iterdir())
    assert not (folder / "provenance.json").exists()
    assert not list(folder.glob("*.zarr"))
    assert len(_data_keys(folder / ".partial")) >= 6
    server.set_faults(Faults())
    server.stats.reset()
    again = subprocess.run(
        _cli(*args, "--out", str(tmp_path / "run")), capture_output=True, text=True, timeout=120
    )
    assert again.returncode == 0, again.stderr
    prov = json.loads((folder / "provenance.json").read_text())
    assert prov["transfer"]["chunks_fetched_this_run"] < prov["transfer"]["chunks_needed"]
    ref_ds = open_cube(next((tmp_path / "ref").iterdir()))
    run_ds = open_cube(folder)
    for v in ("vx", "vy", "v", "v_error", "date_dt"):
        np.testing.assert_array_equal(run_ds[v].values, ref_ds[v].values)
    np.testing.assert_array_equal(run_ds.mid_date.values, ref_ds.mid_date.values)
    # byte-identical chunk files
    ref_store = next(next((tmp_path / "ref").iterdir()).glob("*.zarr"))
    run_store = next(folder.glob("*.zarr"))
    for p in ref_store.rglob("*"):
        if p.is_file() and p.name != ".zattrs" and not p.name.startswith(".zmetadata"):
            assert (run_store / p.relative_to(ref_store)).read_bytes() == p.read_bytes(), p


def test_lost_server_leaves_resumable_state(cubes, server, catalog_file, tmp_path, monkeypatch):
    """A server lost mid-download keeps the chunks already fetched; the re-run fetches the
    rest and gives the same store."""
    from itscube.errors import DownloadError
    from itscube.io.stores import CachingStore

    calls = {"n": 0}
    real = CachingStore._get_with_retries

    async def flaky(self, key, prototype, byte_range):
        if key.startswith(("vx/", "vy/")):  # the server goes after a few data chunks
            calls["n"] += 1
            if calls["n"] >= 4:
                raise DownloadError("server gone")
        return await real(self, key, prototype, byte_range)

    monkeypatch.setattr(CachingStore, "_get_with_retries", flaky)
    with pytest.raises(DownloadError, match="server gone"):
        download(AREA_A, catalog=str(catalog_file), out=tmp_path, workers=1)
    folder = next(tmp_path.iterdir())
    assert not (folder / "provenance.json").exists() and not list(folder.glob("*.zarr"))
    monkeypatch.setattr(CachingStore, "_get_with_retries", real)
    res = download(AREA_A, catalog=str(catalog_file), out=tmp_path, workers=4)
    assert 0 < res.chunks_fetched < res.chunks
    _assert_equal_to_source(open_cube(res.stores[0]), cubes.a_path, None, None)


def test_changed_source_invalidates_cache(tmp_path):
    from zarr.core.buffer import default_buffer_prototype
    from zarr.core.sync import sync
    from zarr.storage import MemoryStore

    proto = default_buffer_prototype()
    mem = MemoryStore()
    sync(mem.set("vx/0.0.0", proto.buffer.from_bytes(b"abc")))
    store = CachingStore(mem, "mem")
    store.use_cache(tmp_path / "c", "one")
    assert sync(store.get("vx/0.0.0", proto)).to_bytes() == b"abc"
    store.close_cache()
    assert cached_keys(tmp_path / "c") == ["vx/0.0.0"]
    sync(mem.set("vx/0.0.0", proto.buffer.from_bytes(b"new")))
    assert sync(store.get("vx/0.0.0", proto)).to_bytes() == b"abc", "served from the cache"
    assert store.stats.requests == 1 and store.stats.cache_hits == 1
    fresh = CachingStore(mem, "mem")
    fresh.use_cache(tmp_path / "c", "two")  # the source changed: the cache is emptied
    assert sync(fresh.get("vx/0.0.0", proto)).to_bytes() == b"new"
    assert sync(fresh.get("absent", proto)) is None
    fresh.close_cache()
    assert sorted(cached_keys(tmp_path / "c")) == ["absent", "vx/0.0.0"]
    again = CachingStore(mem, "mem")
    again.use_cache(tmp_path / "c", "two")
    assert sync(again.get("absent", proto)) is None and again.stats.cache_hits == 1


def test_progress_output(cubes, server, catalog_file, tmp_path):
    from io import StringIO

    from rich.console import Console

    from itscube.progress import RichProgress

    buf = StringIO()
    download(
        AREA_A,
        catalog=str(catalog_file),
        out=tmp_path,
        progress=RichProgress(Console(file=buf, force_terminal=True, width=120)),
    )
    text = buf.getvalue()
    assert "blocks" in text and "MB fetched" in text and "ETA" in text


@pytest.mark.parametrize(
    ("kw", "python", "match"),
    [
        ({"sensors": ("L10",)}, "^sensors L10 is not", "--sensor L10 is not a platform"),
        (
            {"min_valid_percent": 150},
            "^min_valid_percent 150 is not",
            "--min-valid 150 is not a percentage",
        ),
        (
            {"min_dt_days": 100, "max_dt_days": 10},
            "^min_dt_days 100 is above max_dt_days 10",
            "--min-dt-days 100 is above --max-dt-days 10",
        ),
        ({"max_error": 0}, "^max_error 0 must be > 0", "--max-error 0 must be > 0"),
    ],
)
def test_filter_mistakes_caught_up_front(kw, python, match, catalog_file, server, tmp_path):
    """Python errors name the Python parameter; the CLI shows the same error with its flag."""
    with pytest.raises(InputError, match=python):
        Filters(**kw)
    flags = {
        "sensors": ["--sensor", "L10"],
        "min_valid_percent": ["--min-valid", "150"],
        "min_dt_days": ["--min-dt-days", "100", "--max-dt-days", "10"],
        "max_error": None,
    }[next(iter(kw))]
    if flags:
        from tests.helpers import one_line_error, point_download_args, run_cli

        r = run_cli(
            "download",
            *point_download_args(catalog_file),
            "--out",
            tmp_path,
            *flags,
        )
        one_line_error(r, match=match)
        assert not any(tmp_path.iterdir()), "no debris"


def test_output_folders_name_the_inclusive_dates_they_hold(tmp_path):

    from itscube.geometry import point_area
    from itscube.io.download import output_folder
    from itscube.window import date_window

    area = point_area(-49.7, 69.17)

    def name(start, end):
        t0, t1 = date_window(start, end)
        return output_folder(tmp_path, "subyearly", area, t0, t1, start, end).name

    assert name("2018", "2018").endswith("_20180101_20181231")
    assert name("2018-03", "2018-08").endswith("_20180301_20180831")
    assert name(None, None).endswith("_all-dates")
    assert name(None, "2019-06-30").endswith("_to_20190630")
    assert name("2019-06-01", None).endswith("_20190601_onward")


@pytest.mark.slow
def test_killed_reprojected_download_resumes_to_identical_store(cubes, server, catalog_file,
                                                                  tmp_path):  # fmt: skip
    """kill -9 while the cubes are fetched for --out-crs: the re-run fetches only the rest
    and writes the same bytes as an uninterrupted run."""
    args = ["download", "--bbox", str(X0 - 2400), str(Y0 - 1200), str(X0), str(Y0 + 1200),
            "--crs", "EPSG:3413", "--catalog", str(catalog_file), "--workers", "2",
            "--no-progress", "--all-dates", "--variables", "vx,vy,v,v_error",
            "--out-crs", "EPSG:32622"]  # fmt: skip
    ref = subprocess.run(_cli(*args, "--out", str(tmp_path / "ref")), capture_output=True,
                         text=True, timeout=120)  # fmt: skip
    assert ref.returncode == 0, ref.stderr
    server.set_faults(Faults(latency=0.15))
    proc = subprocess.Popen(_cli(*args, "--out", str(tmp_path / "run")),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    deadline = time.time() + 60
    while time.time() < deadline and len(_data_keys(tmp_path / "run")) < 6:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    folder = next((tmp_path / "run").iterdir())
    assert folder.name.endswith("_EPSG32622") and not list(folder.glob("*.zarr"))
    server.set_faults(Faults())
    server.stats.reset()
    again = subprocess.run(_cli(*args, "--out", str(tmp_path / "run")), capture_output=True,
                           text=True, timeout=120)  # fmt: skip
    assert again.returncode == 0, again.stderr
    prov = json.loads((folder / "provenance.json").read_text())
    assert prov["transfer"]["chunks_fetched_this_run"] < prov["transfer"]["chunks_needed"]
    ref_store = next(next((tmp_path / "ref").iterdir()).glob("*.zarr"))
    run_store = next(folder.glob("*.zarr"))
    assert ref_store.name == run_store.name == "subyearly_EPSG32622.zarr"
    files = [p for p in ref_store.rglob("*") if p.is_file()]
    assert len(files) > 5
    for p in files:
        assert (run_store / p.relative_to(ref_store)).read_bytes() == p.read_bytes(), p
