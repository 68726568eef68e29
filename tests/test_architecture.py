"""The shape of the package: layers that only point down, ``__all__`` everywhere, short
functions, no command-line wording below the CLI, a cheap ``import itscube``."""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import code_shape  # noqa: E402

SRC = ROOT / "src" / "itscube"


def test_import_contracts_hold():
    """cli -> products -> domain -> kernels / io, and test tooling off the data path
    (the contracts are in pyproject.toml, checked by import-linter)."""
    from importlinter.cli import lint_imports

    old = os.getcwd()
    os.chdir(ROOT)
    try:
        assert lint_imports(no_cache=True, no_logo=True) == 0
    finally:
        os.chdir(old)


def _lint(root: Path) -> subprocess.CompletedProcess:
    """import-linter's contracts of pyproject.toml run on the package under ``root``."""
    code = (
        "import sys; from importlinter.cli import lint_imports; "
        "sys.exit(lint_imports(config_filename='pyproject.toml', no_cache=True, no_logo=True))"
    )
    env = {**os.environ, "PYTHONPATH": str(root / "src")}
    return subprocess.run(
        [sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True
    )


def test_the_contracts_catch_an_upward_import(tmp_path):
    """The contracts are not vacuous: a copy of the package whose io imports a product
    breaks the layers contract."""
    shutil.copytree(SRC, tmp_path / "src" / "itscube", ignore=shutil.ignore_patterns("data"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    assert _lint(tmp_path).returncode == 0
    files = tmp_path / "src" / "itscube" / "io" / "files.py"
    files.write_text(files.read_text() + "\nfrom itscube.products import strain  # noqa\n")
    broken = _lint(tmp_path)
    assert broken.returncode != 0 and "BROKEN" in broken.stdout


def test_every_module_states_its_public_names():
    missing, _ = code_shape.report()
    assert missing == []


def test_no_long_functions():
    _, long = code_shape.report()
    assert long == [], f"functions over {code_shape.MAX_LINES} lines (docstring excluded)"


FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]+")


def test_no_command_line_wording_below_the_cli():
    """Errors raised by the library name Python parameters (the CLI maps them to flags)."""
    found = []
    for path in SRC.rglob("*.py"):
        if "cli" in path.parts or "testing" in path.parts or "_datasets" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Raise) and node.exc is not None:
                for sub in ast.walk(node.exc):
                    if isinstance(sub, ast.Constant) and isinstance(sub.value, str):
                        found += [f"{path.name}: {m}" for m in FLAG.findall(sub.value)]
    assert found == []


def test_the_cli_shows_flags_for_python_parameter_names():
    from itscube.cli import PARAM_FLAGS, flagged
    from itscube.errors import InputError

    exc = InputError(
        "min_dt_days 100 is above max_dt_days 10", params=("min_dt_days", "max_dt_days")
    )
    assert flagged(exc, {}) == "--min-dt-days 100 is above --max-dt-days 10"
    exc = InputError("sensors L10 is not a platform", params="sensors")
    assert flagged(exc, PARAM_FLAGS) == "--sensor L10 is not a platform"
    # only the named parameters change: other words stay as they are
    exc = InputError("start 2020 is after end 2019; the start of it", params="end")
    assert flagged(exc, {}) == "start 2020 is after --end 2019; the start of it"


@pytest.mark.parametrize(
    "module",
    ["itscube._kernels.strain", "itscube._kernels.flux", "itscube._kernels.advect"],
)
def test_kernels_need_no_xarray(module):
    """Kernels are pure array code: importing one loads neither xarray nor itscube's I/O."""
    code = (
        f"import sys, importlib; importlib.import_module({module!r}); "
        "print(sorted(m for m in ('xarray', 'itscube.io', 'zarr', 'fsspec') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def _layout_paths() -> list[str]:
    """Paths named in the README's layout table, ``{a,b}`` patterns expanded."""
    text = (ROOT / "README.md").read_text()
    table = text[text.index("| layer | modules | what it does |") :]
    table = table[: table.index("\n\n")]
    paths = []
    for cell in re.findall(r"`(itscube/[^`]+)`", table):
        todo = [cell]
        while todo:
            p = todo.pop()
            m = re.search(r"\{([^{}]+)\}", p)
            if m is None:
                paths.append(p)
            else:
                todo += [p[: m.start()] + alt + p[m.end() :] for alt in m.group(1).split(",")]
    return paths


def test_readme_layout_table_names_every_module():
    named = _layout_paths()
    folders = tuple(p for p in named if p.endswith("/"))
    missing = [
        str(rel)
        for p in sorted(SRC.rglob("*.py"))
        if p.name not in ("__init__.py", "__main__.py", "_version.py")
        and not str(rel := Path("itscube") / p.relative_to(SRC)).startswith(folders)
        and str(rel) not in named
    ]
    assert not missing, f"modules missing from the README's layout table: {missing}"
    stale = [p for p in named if not (SRC.parent / p).exists()]
    assert not stale, f"the README's layout table names modules that do not exist: {stale}"
