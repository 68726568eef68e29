"""``itscube seasonal`` on the sample: the generator's seasonal amplitude and peak day."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

from itscube.sample import SAMPLE_CENTRE, SAMPLE_FIELD, ensure_sample
from tests.helpers import one_line_error, run_cli


@pytest.mark.slow
def test_seasonal_maps_match_the_generator(tmp_path):
    sample = ensure_sample()
    res = run_cli(
        "seasonal",
        sample.subyearly,
        "--start",
        "2016",
        "--end",
        "2021",
        "--out",
        tmp_path,
        "--no-progress",
    )
    assert res.exit_code == 0, res.output
    folder = tmp_path / "seasonal" / "20160101_20211231"  # --end 2021 covers all of 2021
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["estimator"] == "fit" and summary["source_data"].startswith("synthetic")
    with xr.open_dataset(folder / "seasonal.nc") as s:
        cx, cy = SAMPLE_CENTRE
        core = s.sel(x=slice(cx - 2000, cx + 2000), y=slice(cy + 1000, cy - 1000)).load()
    # speed x (1 + amp cos(2 pi (t - peak))) x (1 + trend (t - t0)): relative amplitude amp,
    # maximum on day 1 + peak x 365.25
    rel = core.v_amp / core.v0
    assert float(rel.median()) == pytest.approx(SAMPLE_FIELD.season_amp, rel=0.05)
    peak = 1 + SAMPLE_FIELD.season_peak * 365.25
    assert float(core.v_phase.median()) == pytest.approx(peak, abs=4.0)
    assert (core.fit_flag == 0).all()
    z = (rel - SAMPLE_FIELD.season_amp) * core.v0 / core.v_amp_error
    assert float(np.abs(z).median()) < 2.0  # errors of the right size, the trend aside
    for name in ("v_amp", "v_phase", "v0", "fit_flag"):
        assert (folder / "geotiff" / f"{name}.tif").is_file()
    assert (folder / "figures" / "seasonal.png").is_file()


def test_seasonal_needs_image_pairs(tmp_path):
    sample = ensure_sample()
    one_line_error(run_cli("seasonal", sample.annual, "--out", tmp_path), match="annual composites")
