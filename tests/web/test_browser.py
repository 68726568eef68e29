"""The map page in a real browser (Playwright driving Debian's Chromium).

Skipped, with the reason shown, where Chromium or Playwright is missing:
``apt-get install chromium`` and ``pip install playwright`` (``.ci/run`` does both).
"""

from __future__ import annotations

import shutil
from urllib.parse import urlsplit

import numpy as np
import pytest

from itscube.geometry import point_targets
from itscube.sample import ensure_sample, serve_sample
from itscube.series import time_series
from itscube.web import MapServer
from itscube.window import Filters

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
pytestmark = [
    pytest.mark.skipif(CHROMIUM is None, reason="no Chromium: apt-get install chromium (as root)"),
    pytest.mark.slow,
]


@pytest.fixture(scope="module")
def page_server(tmp_path_factory):
    sample = ensure_sample()
    out = tmp_path_factory.mktemp("browser-out")
    with (
        serve_sample(sample) as archive,
        MapServer([str(sample.subyearly)], catalog=archive.catalog_url, out=out) as srv,
    ):
        srv.sample = sample
        yield srv


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture
def page(browser, page_server):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    pg = context.new_page()
    pg.errors, pg.hosts = [], set()
    pg.on("console", lambda m: m.type == "error" and pg.errors.append(m.text))
    pg.on("pageerror", lambda e: pg.errors.append(str(e)))
    pg.on("request", lambda r: pg.hosts.add(urlsplit(r.url).hostname))
    pg.goto(page_server.url)
    pg.wait_for_function("window.itscube && window.itscube.ready === true", timeout=20000)
    yield pg
    context.close()


def test_page_loads_offline_without_errors(page):
    page.wait_for_load_state("networkidle")
    assert page.errors == []
    assert page.hosts <= {"127.0.0.1"}, page.hosts
    assert page.locator("#layers li").count() >= 1
    assert page.locator(".leaflet-tile-loaded").count() > 0, "speed tiles drawn"


def _screen(page, lon, lat):
    return page.evaluate("([lon, lat]) => window.itscube.screen(lon, lat)", [lon, lat])


def test_drawing_a_box_lists_the_cubes_and_the_command(page):
    page.click("#mode-box")
    x0, y0 = _screen(page, -48.9, 69.43)
    x1, y1 = _screen(page, -48.7, 69.37)
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move((x0 + x1) / 2, (y0 + y1) / 2)
    page.mouse.move(x1, y1)
    page.mouse.up()
    page.wait_for_selector("#area-info:not([hidden])")
    page.wait_for_function("document.getElementById('area-command').textContent.length > 0")
    assert "EPSG:3413" in page.inner_text("#area-cubes")
    command = page.inner_text("#area-command")
    assert command.startswith("itscube download --bbox -48.9")
    box = [float(v) for v in command.split("--bbox ")[1].split()[:4]]
    assert box == pytest.approx([-48.9, 69.37, -48.7, 69.43], abs=0.01)
    # a polygon, vertex by vertex, closed on its first vertex: its bounding box is asked for
    page.click("#mode-polygon")
    for lon, lat in ((-48.88, 69.38), (-48.74, 69.39), (-48.80, 69.425)):
        page.mouse.click(*_screen(page, lon, lat))
    page.mouse.click(*_screen(page, -48.88, 69.38))  # back on the first vertex: closed
    page.wait_for_function(
        "+document.getElementById('area-command').textContent.split('--bbox ')[1].split(' ')[0]"
        " > -48.89"
    )
    box = [float(v) for v in page.inner_text("#area-command").split("--bbox ")[1].split()[:4]]
    assert box == pytest.approx([-48.88, 69.38, -48.74, 69.425], abs=0.005)


def test_a_clicked_point_plots_the_libraries_series(page, page_server):
    page.click("#mode-points")
    x, y = _screen(page, -48.8, 69.4)
    page.mouse.click(x, y)
    page.wait_for_function("window.itscube.lastSeries !== null", timeout=30000)
    got = page.evaluate("window.itscube.lastSeries")
    lon, lat = page.evaluate("[window.itscube.points[0].lon, window.itscube.points[0].lat]")
    ref = time_series(point_targets([(lon, lat)]), str(page_server.sample.subyearly),
                      filters=Filters(5, 90))  # fmt: skip
    v = ref["v"].values[0]
    np.testing.assert_allclose(np.asarray(got["v"], float), v[np.isfinite(v)], rtol=1e-6)
    plotted = page.evaluate(
        "window.itscube.plot.data.slice(1, 1 + window.itscube.plot.pairSeries).flat()"
        ".filter(v => v !== null)"
    )
    assert sorted(plotted) == pytest.approx(sorted(got["v"]))
    # annual composites from the archive drawn as steps, equal to the library's
    page.wait_for_function("window.itscube.annual !== null", timeout=30000)
    annual = page.evaluate("window.itscube.annual")
    ref_a = time_series(point_targets([(lon, lat)]), kind="annual",
                        catalog=page_server.catalog)["v"].values[0]  # fmt: skip
    np.testing.assert_allclose(annual["v"], ref_a[np.isfinite(ref_a)], rtol=1e-6)
    labels = page.evaluate("window.itscube.plot.series.map(s => s.label)")
    assert labels[-1] == "annual"
    # colours by sensor: one group per platform of the pairs
    page.select_option("#series-colour", "sensor")
    labels = page.evaluate("window.itscube.plot.series.slice(1).map(s => s.label)")
    assert set(labels) - {"annual"} == set(got["satellite"])
    href = page.get_attribute("#series-csv", "href")
    assert href.startswith("api/series.csv?") and "min_dt=5" in href and "max_dt=90" in href
    assert page.errors == []


def test_download_and_track_from_the_page(page):
    """Draw a box, download, add points, track: both jobs finish and their layers appear."""
    n_layers = page.locator("#layers li").count()
    page.fill("#start", "2018-01-01")
    page.fill("#end", "2018-06-30")
    page.click("#mode-box")
    x0, y0 = _screen(page, -48.85, 69.42)
    x1, y1 = _screen(page, -48.75, 69.38)
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move(x1, y1)
    page.mouse.up()
    page.wait_for_selector("#area-info:not([hidden])")
    page.wait_for_function("!document.getElementById('run-download').disabled")
    page.click("#run-download")
    page.wait_for_selector("#jobs li.job-done", timeout=120000)
    assert "itscube download --bbox" in page.inner_text("#jobs")
    page.wait_for_function(f"document.querySelectorAll('#layers li').length > {n_layers}")
    assert "median speed subyearly" in page.inner_text("#layers")
    page.click("#mode-points")
    for lon in (-48.82, -48.80):
        page.mouse.click(*_screen(page, lon, 69.40))
    page.click("#run-track")
    page.wait_for_function("document.querySelectorAll('#jobs li.job-done').length >= 2",
                           timeout=120000)  # fmt: skip
    assert "itscube track" in page.inner_text("#jobs")
    page.wait_for_function("document.getElementById('layers').innerText.includes('tracks')")
    assert page.errors == [] and page.hosts <= {"127.0.0.1"}
