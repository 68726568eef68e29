"""The zarr private API itscube relies on, checked against the installed zarr, and kept in
one module (``itscube.io._zarr_private``)."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import numpy as np
import zarr

from itscube.io import _zarr_private as zp

SRC = Path(__file__).resolve().parents[2] / "src" / "itscube"


def test_every_private_name_works_with_the_installed_zarr(tmp_path):
    arr = zarr.open_array(tmp_path / "a.zarr", mode="w", shape=(4, 6), chunks=(2, 3),
                          dtype="i2", fill_value=-1, zarr_format=2)  # fmt: skip
    arr[:2, :3] = 7  # the other chunks are never written
    loop = zp.get_loop()
    assert isinstance(loop, asyncio.AbstractEventLoop) and loop.is_running()
    # writes through the async side of the array, on zarr's loop
    zp.sync(zp.async_array(arr).setitem((slice(2, 4), slice(3, 6)), np.full((2, 3), 5, "i2")))
    assert (arr[2:, 3:] == 5).all()
    # rebuilt with another fill value: never-written chunks read as it
    meta = zp.async_array(arr).metadata
    import dataclasses

    rebuilt = zp.rebuild_async_array(arr, dataclasses.replace(meta, fill_value=-9999),
                                     arr.store)  # fmt: skip
    assert isinstance(rebuilt, zp.AsyncArray)
    got = zp.sync(rebuilt.getitem((slice(None), slice(None))))
    assert got[0, 0] == 7 and got[3, 5] == 5 and got[0, 5] == -9999
    proto = zp.default_buffer_prototype()
    assert isinstance(proto, zp.BufferPrototype)
    assert isinstance(proto.buffer.from_bytes(b"abc"), zp.Buffer)


def test_no_other_module_touches_zarr_private_names():
    private = re.compile(r"zarr\.core|\._async_array|\b_get_loop")
    offenders = [
        str(p.relative_to(SRC))
        for p in SRC.rglob("*.py")
        if p.name != "_zarr_private.py" and private.search(p.read_text())
    ]
    assert offenders == []
