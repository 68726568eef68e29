"""The command line: one-line errors, non-zero exits, and the main commands end to end."""

from __future__ import annotations

import json
import re

import pytest

from itscube import _typing as _t
from tests.helpers import CENTRE_A, one_line_error, point_download_args, run_cli

X0, Y0 = CENTRE_A
run = run_cli
_one_line_error = one_line_error


def test_help_and_version():
    assert run("--help").exit_code == 0
    r = run("--version")
    assert r.exit_code == 0 and "itscube" in r.output


def test_find_table_and_json(catalog_file):
    r = run("find", "--point", X0 - 1500, Y0, "--crs", "EPSG:3413", "--catalog", catalog_file)
    assert r.exit_code == 0, r.output
    assert "A.zarr" in r.output and "3413" in r.output
    r = run(
        "find",
        "--bbox",
        X0,
        Y0 - 100,
        X0 + 5000,
        Y0 + 100,
        "--crs",
        "EPSG:3413",
        "--catalog",
        catalog_file,
        "--json",
    )
    assert r.exit_code == 0, r.output
    names = sorted(d["name"] for d in json.loads(r.output))
    assert names == ["A.zarr", "B.zarr"]


def test_download_and_info(catalog_file, server, tmp_path):
    bbox = [X0 - 1000, Y0 - 500, X0, Y0 + 500]
    args = ["download", "--bbox", *bbox, "--crs", "EPSG:3413", "--start", "2018-01-01"]
    args += ["--end", "2018-12-31", "--catalog", catalog_file, "--out", tmp_path]
    args += ["--no-progress", "--sensor", "S2,L8"]
    r = run(*args)
    assert r.exit_code == 0, r.output
    assert "download complete" in r.output
    requests = next(line for line in r.output.splitlines() if "requests" in line)
    assert "resume cache" not in requests and " sent" in requests  # no claim of a resume
    folder = next(tmp_path.iterdir())
    r = run("info", folder)
    assert r.exit_code == 0, r.output
    assert "EPSG:3413" in r.output and "mid_date" in r.output
    r = run(*args)  # the same command again: nothing to do
    assert r.exit_code == 0 and "already complete" in r.output


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["--point", 10, 45], "no ITS_LIVE cube covers"),
        (["--bbox", 10, 5, 3, 4], "W < E"),
        (
            [
                "--point",
                X0,
                Y0,
                "--crs",
                "EPSG:3413",
                "--start",
                "2020-01-01",
                "--end",
                "2019-01-01",
            ],
            "after --end",
        ),
        (
            [
                "--point",
                X0,
                Y0,
                "--crs",
                "EPSG:3413",
                "--start",
                "1980-01-01",
                "--end",
                "1980-02-01",
            ],
            "no layers",
        ),
        (["--point", X0, Y0, "--crs", "EPSG:3413", "--variables", "vx,nope"], "unknown variable"),
        (["--point", X0, Y0, "--crs", "EPSG:3413", "--kind", "monthly"], "--kind must be one of"),
        (["--point", X0, Y0, "--bbox", 0, 0, 1, 1], "exactly one of"),
        (["--polygon", "missing.geojson"], "file not found"),
    ],
)
def test_download_bad_inputs(args, match, catalog_file, server, tmp_path):
    r = run(
        "download",
        *args,
        "--catalog",
        catalog_file,
        "--out",
        tmp_path,
        "--no-progress",
        *([] if "--start" in args else ["--all-dates"]),
    )
    _one_line_error(r, match=match)


def test_unreachable_catalog(tmp_path):
    r = run("find", "--point", -49, 69, "--catalog", "http://127.0.0.1:9/catalog.json")
    _one_line_error(r, match="unreachable")


def test_info_bad_cube(tmp_path):
    _one_line_error(run("info", tmp_path / "none.zarr"), match="no such file")


def test_download_needs_dates_or_all_dates(catalog_file, server, tmp_path):
    bbox = [X0 - 1000, Y0 - 500, X0, Y0 + 500]
    base = [
        "download",
        "--bbox",
        *bbox,
        "--crs",
        "EPSG:3413",
        "--catalog",
        catalog_file,
        "--no-progress",
        "--variables",
        "vx",
    ]
    _one_line_error(run(*base, "--out", tmp_path / "a"), match="--all-dates")
    _one_line_error(
        run(*base, "--start", "2018-01-01", "--out", tmp_path / "b"), match="give --start and --end"
    )
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    r = run(*base, "--all-dates", "--out", tmp_path / "c")
    assert r.exit_code == 0, r.output
    plan = next(line for line in r.output.splitlines() if line.startswith("plan:"))
    assert "120 layers" in plan and "GB decoded" in plan
    assert next((tmp_path / "c").iterdir()).name.endswith("_all-dates")


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["download", "--point", "0", "0", "--workers", "0"], "Invalid value for '--workers'"),
        (["find", "--point", "0", "0", "stray"], "unexpected extra argument"),
        (["strain", "--no-such-option"], "No such option: --no-such-option"),
        (["nonsense"], "No such command 'nonsense'"),
    ],
)
def test_command_line_mistakes_are_one_line(args, match):
    r = run(*args)
    _one_line_error(r, match=match)
    assert "╭" not in r.output and "Usage:" not in r.output


@pytest.mark.parametrize("command", ["download", "strain", "qdiv", "track"])
def test_out_that_is_a_file_is_one_line(command, cubes, catalog_file, server, tmp_path):
    f = tmp_path / "afile"
    f.write_text("x")
    args = {
        "download": point_download_args(catalog_file),
        "strain": [cubes.a_path],
        "qdiv": [cubes.a_path, "--thickness", f, "--boundary", f],
        "track": [
            cubes.a_path,
            "--point",
            X0,
            Y0,
            "--crs",
            "EPSG:3413",
            "--start",
            "2018-01-01",
            "--end",
            "2018-12-31",
        ],
    }[command]
    for out in (f, f / "sub"):
        r = run(command, *args, "--out", out)
        _one_line_error(r, match=f"--out {out}")


def test_import_and_help_are_quick():
    """``import itscube`` loads no heavy library; the API resolves on first use; the
    download module needs neither xarray nor pandas (a second of every download's start)."""
    import subprocess
    import sys

    code = (
        "import sys, itscube; heavy = [m for m in ('numba', 'zarr', 'dask', 'xarray', "
        "'rioxarray') if m in sys.modules]; print(heavy); "
        "import importlib; importlib.import_module('itscube.io.download'); "
        "import itscube.cli.app; "
        "print([m for m in ('xarray', 'pandas', 'pyarrow', 'dask') if m in sys.modules]); "
        "print(callable(itscube.download), callable(itscube.track), itscube.sample.__name__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split("\n")[:3] == ["[]", "[]", "True True itscube.sample"]


def test_find_prints_whole_urls_at_80_columns(catalog_file):
    r = run(
        "find",
        "--bbox",
        X0 - 1000,
        Y0 - 500,
        X0,
        Y0 + 500,
        "--crs",
        "EPSG:3413",
        "--catalog",
        catalog_file,
    )
    assert r.exit_code == 0, r.output
    urls = [line for line in r.output.splitlines() if line.startswith("http")]
    assert urls and all(u.endswith(".zarr") for u in urls), r.output


@pytest.mark.parametrize("command", ["find", "download", "info", "strain", "qdiv", "track", "demo"])
def test_help_reads_as_a_user_reads_it(command):
    r = run(command, "--help")
    assert r.exit_code == 0, r.output
    for python_type in ("<bool>", "<list[str]>", "<float,float>", "<float>", "<int>"):
        assert python_type not in r.output, (command, python_type)


@pytest.mark.parametrize(
    ("command", "option", "choices"),
    [
        ("download", "--kind", _t.KINDS),
        ("series", "--kind", _t.KINDS_OR_BOTH),
        ("series", "--interp", _t.INTERPOLATIONS),
        ("strain", "--method", _t.STRAIN_METHODS),
        ("track", "--method", _t.ADVECTION_METHODS),
        ("qdiv", "--scheme", _t.SCHEMES),
        ("strain", "--estimator", _t.ESTIMATORS),
        ("track", "--period", (*_t.PERIOD_NAMES, "FREQ")),
    ],
)
def test_help_lists_the_choices_of_the_library(command, option, choices):
    """Choice options show their values, taken from the Literal types the library checks."""
    out = " ".join(run(command, "--help").output.split())
    assert re.search(rf"{option}(, --[\w-]+)? \[{re.escape('|'.join(choices))}\]", out), out


def test_help_names_the_values_of_pair_and_tuple_options():
    out = " ".join(run("series", "--help").output.split())
    assert "--profile X0 Y0 X1 Y1 " in out and "--point LON LAT " in out
    assert "NUMBER" not in out.split("--profile", 1)[1].split("--", 1)[0]


def test_help_and_version_import_nothing_heavy():
    """Help, version and argument errors stay fast: no numpy, matplotlib or xarray
    (benchmarks/bench_cli_startup.py measures the time)."""
    import subprocess
    import sys

    probe = (
        "import sys\n"
        "from itscube.cli import main\n"
        "for args in (['--help'], ['--version'], ['track', '--help'], ['strain', '--nope']):\n"
        "    sys.argv = ['itscube', *args]\n"
        "    try:\n"
        "        main()\n"
        "    except SystemExit:\n"
        "        pass\n"
        "heavy = ('numpy', 'matplotlib', 'xarray', 'pandas', 'dask', 'zarr', 'scipy')\n"
        "print('HEAVY', [m for m in heavy if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert "HEAVY []" in out.stdout, out.stdout[-500:]
    assert "CUBE <str>" not in out.stdout and "Usage: itscube track" in out.stdout


def test_a_command_line_loads_only_the_command_it_runs():
    """The entry point imports the named command's module only (its start is that
    command's imports); help, a mistyped name and ``itscube.cli.app`` get every command."""
    import subprocess
    import sys

    probe = (
        "import sys\n"
        "from itscube.cli import main\n"
        "def loaded():\n"
        "    return sorted(m.rsplit('.', 1)[1] for m in sys.modules\n"
        "                  if m.startswith('itscube.cli.commands.'))\n"
        "for args in (['download', '--help'], ['downlaod'], ['--help']):\n"
        "    sys.argv = ['itscube', *args]\n"
        "    try:\n"
        "        main()\n"
        "    except SystemExit:\n"
        "        pass\n"
        "    print('LOADED', args[0], loaded())\n"
        "import itscube.cli\n"
        "print('APP', type(itscube.cli.app).__name__, len(itscube.cli.app.registered_commands))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith(("LOADED", "APP"))]
    everything = sorted(__import__("itscube.cli.commands", fromlist=["x"]).__all__)
    assert lines[0] == "LOADED download ['download']"
    assert lines[1] == f"LOADED downlaod {everything}"  # a mistyped name: all, for suggestions
    assert "No such command 'downlaod'. Did you mean 'download'?" in out.stderr
    assert lines[3] == f"APP Typer {len(everything)}"


def _sample():
    from itscube.sample import ensure_sample

    return ensure_sample()


@pytest.mark.parametrize(
    ("make_args", "match"),
    [
        (
            lambda s, t: ["series", s.subyearly, "--point", -150000, -2250000, "--out", t],
            "looks like metres, not lon/lat degrees; give --crs",
        ),
        (
            lambda s, t: ["qdiv", s.subyearly, "--thickness", s.thickness, "--boundary",
                          s.boundary, "--boundary-crs", "EPSG:4326", "--out", t],
            "looks like metres, not lon/lat degrees; give --boundary-crs",
        ),
        (
            lambda s, t: ["series", s.subyearly, "--point", -48.8, 69.4, "--regularise",
                          "monthly", "--out", t],
            "--regularise 'monthly' is not a pandas frequency",
        ),
        (
            lambda s, t: ["image", s.subyearly, "--date", "2018-06-01", "--collection", "modis",
                          "--out", t],
            "unknown --collection 'modis'; choose sentinel-2-l2a or landsat-c2-l2",
        ),
        (lambda s, t: ["info", s.boundary], "not a cube (a .csv is neither NetCDF nor Zarr)"),
        (
            lambda s, t: ["track", s.subyearly, "--point", -48.8, 69.4, "--crs", "EPSG:3413",
                          "--start", "2018", "--end", "2018", "--out", t],
            "look like lon/lat degrees, not metres of the cube's EPSG:3413",
        ),
        (
            lambda s, t: ["download", "--bbox", -48.9, 69.3, -48.7, 69.5, "--start", "2018",
                          "--end", "2018", "--catalog", t / "nope.json", "--out", t],
            "nope.json: no such file",
        ),
        (
            lambda s, t: ["image", s.subyearly, "--date", "2018-06-01", "--max-cloud", 200,
                          "--out", t],
            "--max-cloud",
        ),
    ],
)  # fmt: skip
def test_messages_a_new_user_met(make_args, match, tmp_path):
    one_line_error(run(*make_args(_sample(), tmp_path)), match=match)


def test_seeds_csv_without_coordinate_columns_lists_the_accepted_ones(tmp_path):
    seeds = tmp_path / "seeds.csv"
    seeds.write_text("a,b\n1,2\n")
    r = run("track", _sample().subyearly, "--seeds", seeds, "--start", "2018", "--end", "2018",
            "--out", tmp_path)  # fmt: skip
    one_line_error(r, match="needs two coordinate columns, x, y (projected metres) or lon, lat")
    one_line_error(r, match="found a, b (also accepted: easting")


def test_thickness_warnings_are_one_line(tmp_path):
    import rioxarray

    s = _sample()
    km = tmp_path / "km.tif"
    (rioxarray.open_rasterio(s.thickness) / 1000).rio.to_raster(km)
    r = run("qdiv", s.subyearly, "--thickness", km, "--boundary", s.boundary, "--no-figures",
            "--no-progress", "--out", tmp_path)  # fmt: skip
    assert r.exit_code == 0, r.output
    warning = [line for line in r.output.splitlines() if "implausible for metres" in line]
    assert len(warning) == 1 and warning[0].startswith("warning: thickness")
    assert "UserWarning" not in r.output


@pytest.mark.slow
def test_piped_output_has_no_blank_progress_lines(tmp_path):
    """Not a terminal (a pipe, a log file): no progress frames, no source paths on log lines."""
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "itscube.cli", "strain", _sample().subyearly, "--upscale", "2",
           "--start", "2018", "--end", "2018", "--no-figures", "--out", str(tmp_path)]  # fmt: skip
    r = subprocess.run(cmd, capture_output=True, text=True, check=True)
    assert not any(line.strip() == "" for line in r.stderr.splitlines()), r.stderr[:300]
    assert "progress.py" not in r.stderr and "median effective" in r.stdout
