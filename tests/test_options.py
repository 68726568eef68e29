"""Settings (itscube.set_options): read at call time, scoped by ``with``, checked."""

from __future__ import annotations

import pytest

import itscube
from itscube.errors import InputError
from itscube.io import remote


def test_settings_change_the_behaviour_and_are_restored():
    before = itscube.get_options()
    with itscube.set_options(retries=2, backoff=0.0):
        with pytest.raises(itscube.errors.DownloadError, match="after 2 attempts"):
            remote.next_delay(2, TimeoutError("slow"), "a chunk")
        assert remote.next_delay(1, TimeoutError(), "a chunk") == 0.0
    assert itscube.get_options() == before
    with pytest.raises(itscube.errors.DownloadError, match=f"after {before['retries']} attempts"):
        remote.next_delay(before["retries"], TimeoutError("slow"), "a chunk")


def test_concurrency_is_the_downloads_default(cubes, catalog_file, tmp_path, monkeypatch):
    from itscube.io.download import plan as dl

    seen = []
    real = dl.open_source
    monkeypatch.setattr(
        dl, "open_source", lambda *a, **k: seen.append(k["workers"]) or real(*a, **k)
    )
    area = itscube.bbox_area(-152000, -2250700, -150000, -2249300, crs="EPSG:3413")
    with itscube.set_options(concurrency=3):
        itscube.download(area, start="2018-01-01", end="2018-03-31", catalog=str(catalog_file),
                         out=tmp_path)  # fmt: skip
    assert seen and set(seen) == {3}


@pytest.mark.parametrize(
    ("settings", "match"),
    [({"retry": 3}, "unknown setting 'retry'"), ({"retries": 0}, "retries must be"),
     ({"backoff": -1}, "backoff must be"), ({"concurrency": 0}, "concurrency must be")],
)  # fmt: skip
def test_bad_settings_are_refused(settings, match):
    with pytest.raises(InputError, match=match):
        itscube.set_options(**settings)
