"""Output folders: validate ``--out`` up front, stage every product under a temporary name
and rename it when complete, write JSON atomically."""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from itscube.errors import InputError, OutputExistsError
from itscube.window import date_bounds

__all__ = [
    "check_out_dir",
    "date_label",
    "product_folder",
    "staged_folder",
    "write_json",
]


def date_label(value, fallback: np.datetime64 | None = None, *, end: bool = False) -> str:
    """``YYYYMMDD`` of a user date, or of ``fallback`` (e.g. the first layer) if none given.

    With ``end`` the label is the last day the inclusive end covers: ``2018`` is
    ``20181231`` and ``2018-08`` is ``20180831``.

    >>> date_label("2018", end=True), date_label("2018-08", end=True), date_label("2018")
    ('20181231', '20180831', '20180101')
    """
    if value is None:
        return str(np.asarray(fallback, "datetime64[D]")).replace("-", "")
    if end:
        _, t1 = date_bounds(None, value)
        return f"{t1 - _dt.timedelta(microseconds=1):%Y%m%d}"
    return f"{date_bounds(value, None)[0]:%Y%m%d}"


def check_out_dir(out: str | os.PathLike) -> Path:
    """``out`` as a folder that can be created and written, else a one-line :class:`InputError`
    naming the path and the problem (checked before any work)."""
    p = Path(out)
    if p.exists() and not p.is_dir():
        raise InputError(
            f"out {p} is a file; give a folder (it is created if missing)", params="out"
        )
    existing = next((q for q in (p, *p.parents) if q.exists()), Path("."))
    if not existing.is_dir():
        raise InputError(
            f"out {p}: {existing} is a file, so no folder can be made there", params="out"
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(
            f"out {p}: {existing} is not writable; choose another folder", params="out"
        )
    return p


def product_folder(
    out: str | os.PathLike, product: str, upscale: int | None, sdate: str, edate: str
) -> Path:
    """``OUT/<product>/<upscale>_<sdate>_<edate>`` (no upscale part when ``None``)."""
    name = f"{sdate}_{edate}" if upscale is None else f"{upscale}_{sdate}_{edate}"
    return Path(out) / product / name


@contextlib.contextmanager
def staged_folder(folder: Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling folder; rename it to ``folder`` only on success.

    Raises
    ------
    OutputExistsError
        ``folder`` exists and ``overwrite`` is false.
    """
    folder = Path(folder)
    if folder.exists() and not overwrite:
        raise OutputExistsError(
            f"{folder} already exists; pass overwrite to replace it or choose another out",
            params=("overwrite", "out"),
        )
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.parent / f".{folder.name}.partial-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if folder.exists():
        shutil.rmtree(folder)
    tmp.rename(folder)


def write_json(obj, path: Path) -> Path:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=_json_default) + "\n")
    tmp.replace(path)
    return path


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    return str(o)
