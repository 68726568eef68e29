"""Direct Zarr v2 chunk reads against zarr's own reads of the same arrays (the outside
reference): orders, filters, compressors, chunks never written, unsorted and repeated
indices, slices."""

from __future__ import annotations

import asyncio

import numcodecs
import numpy as np
import pytest
import zarr

from itscube.io.chunkread import read_orthogonal, v2_layout


def _array(tmp_path, order, filters, compressor, dtype):
    root = zarr.open_group(tmp_path / "g.zarr", mode="w", zarr_format=2)
    arr = root.create_array(
        "a",
        shape=(7, 23, 19),
        chunks=(4, 5, 6),
        dtype=dtype,
        order=order,
        filters=filters,
        compressors=compressor,
        fill_value=-9,
    )
    rng = np.random.default_rng(0)
    data = rng.integers(-1000, 1000, arr.shape).astype(dtype)
    arr[:, :10, :] = data[:, :10, :]  # rows 10.. never written: chunks absent
    return tmp_path / "g.zarr", arr


def _reader(root):
    async def get(key):
        path = root / key
        return np.frombuffer(path.read_bytes(), "u1") if path.exists() else None

    return get


@pytest.mark.parametrize(
    ("order", "filters", "compressor", "dtype"),
    [
        ("C", None, numcodecs.Blosc(cname="zlib", clevel=2, shuffle=1), "i2"),
        ("F", None, numcodecs.Zlib(level=1), "f4"),
        ("C", [numcodecs.Delta(dtype="i4")], None, "i4"),
        ("C", None, None, "f8"),
    ],
)
def test_direct_reads_equal_zarr_reads(tmp_path, order, filters, compressor, dtype):
    root, arr = _array(tmp_path, order, filters, compressor, dtype)
    layout = v2_layout(arr._async_array)
    assert layout is not None and layout.prefix == "a/"
    selections = [
        (slice(None), slice(None), slice(None)),
        (slice(1, 6), slice(3, 17), slice(5, 13)),
        (np.array([6, 0, 3, 3]), np.arange(2, 21, 3), slice(0, 19, 1)),
        (np.array([2]), np.array([22, 9, 10]), np.array([18, 0])),
    ]
    for sel in selections:
        got = asyncio.run(read_orthogonal(layout, _reader(root), sel))
        want = arr.get_orthogonal_selection(sel)
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
    whole = asyncio.run(read_orthogonal(layout, _reader(root), selections[0]))
    assert (whole[:, 10:] == -9).all(), "chunks never written read as the fill value"
    # straight into a larger array, at scattered and reversed positions (a block of a
    # download); the cells not named keep what they held
    rng = np.random.default_rng(0)
    for sel in selections[1:]:
        want = arr.get_orthogonal_selection(sel)
        big = np.full(tuple(n + 7 for n in want.shape), 99, dtype=want.dtype)
        at = [rng.permutation(m)[:n] for n, m in zip(want.shape, big.shape, strict=True)]
        expect = big.copy()
        expect[np.ix_(*at)] = want
        got = asyncio.run(read_orthogonal(layout, _reader(root), sel, out=big, at=at))
        assert got is big
        np.testing.assert_array_equal(big, expect)
    with pytest.raises(ValueError, match="at: one array of positions per axis"):
        asyncio.run(read_orthogonal(layout, _reader(root), sel, out=big, at=at[:2]))


def test_only_plain_numeric_v2_arrays_are_read_directly(tmp_path):
    v3 = zarr.open_group(tmp_path / "v3.zarr", mode="w", zarr_format=3)
    a3 = v3.create_array("a", shape=(4,), chunks=(2,), dtype="f4")
    v2 = zarr.open_group(tmp_path / "v2.zarr", mode="w", zarr_format=2)
    s2 = v2.create_array("s", shape=(4,), chunks=(2,), dtype=str)
    n2 = v2.create_array("n", shape=(4,), chunks=(2,), dtype="f4")
    assert v2_layout(a3._async_array) is None
    assert v2_layout(s2._async_array) is None
    assert v2_layout(n2._async_array) is not None
