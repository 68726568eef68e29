"""Source arrays and cubes: each array's layout, codecs and *missing marker* (CF
``_FillValue``/``missing_value`` or a null Zarr fill, found once), reads of orthogonal
selections (Zarr v2 chunks directly, sharded v3 inner chunks prefetched by byte range),
and the decoding of raw values."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
import zarr
from zarr.abc.store import RangeByteRequest, SuffixByteRequest

from itscube.errors import CubeFormatError
from itscube.grid import epsg_of
from itscube.io import cf
from itscube.io._zarr_private import (
    AsyncArray,
    rebuild_async_array,
    sync,
)
from itscube.io.chunkread import V2Layout, orthogonal_index, read_orthogonal, v2_layout
from itscube.io.stores.caching import CachingStore

__all__ = [
    "IMAGE_PAIR_VARIABLES",
    "SourceArray",
    "SourceCube",
    "decode_values",
    "missing_mask",
]

IMAGE_PAIR_VARIABLES = ("date_dt", "acquisition_date_img1", "acquisition_date_img2")
"""Per-layer variables that mark an image-pair (sub-yearly) cube whatever its time name."""


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return value


@dataclasses.dataclass
class SourceArray:
    """One array of a source cube.

    Attributes
    ----------
    name, dims, shape, chunks : as stored (``chunks`` is the read granularity: the inner
        chunk of a sharded array).
    dtype : numpy dtype of the stored (encoded) values; strings are ``object``/``U``.
    attrs : CF attributes, without ``_FillValue`` and ``missing_value``.
    missing : the encoded value that marks missing data (``_FillValue``, else
        ``missing_value``, else a non-null Zarr fill value), or None.
    """

    name: str
    dims: tuple[str, ...]
    shape: tuple[int, ...]
    chunks: tuple[int, ...]
    dtype: np.dtype
    attrs: dict
    missing: Any
    array: AsyncArray
    store: CachingStore | None = None
    shards: tuple[int, ...] | None = None
    direct: V2Layout | None = None
    """Set for plain numeric Zarr v2 arrays: chunks are read by :mod:`itscube.io.chunkread`."""

    @property
    def is_string(self) -> bool:
        return self.dtype.kind in "OUST"

    @property
    def units(self) -> str:
        return str(self.attrs.get("units", ""))

    def chunk_ids(self, sel: Sequence[np.ndarray]) -> set[tuple[int, ...]]:
        """Chunks (read granularity) touched by an orthogonal selection of indices."""
        per_dim = [
            np.unique(np.asarray(s, np.int64) // c) for s, c in zip(sel, self.chunks, strict=True)
        ]
        if any(len(p) == 0 for p in per_dim):
            return set()
        grids = np.meshgrid(*per_dim, indexing="ij") if per_dim else []
        return set(zip(*(g.ravel().tolist() for g in grids), strict=False)) if per_dim else {()}

    async def read(self, sel: Sequence[np.ndarray | slice] | None = None) -> np.ndarray:
        """Encoded values of an orthogonal selection (whole array when ``sel`` is None)."""
        if not self.shape:
            return _plain_strings(np.asarray(await self.array.getitem(())))
        sel = tuple(slice(None) for _ in self.shape) if sel is None else tuple(sel)
        if self.shards is not None and self.store is not None:
            await self._prefetch_inner_chunks(sel)
        if any(isinstance(s, np.ndarray) and s.size == 0 for s in sel):
            shape = [
                (s.size if isinstance(s, np.ndarray) else len(range(*s.indices(n))))
                for s, n in zip(sel, self.shape, strict=False)
            ]
            return np.empty(shape, dtype=self.dtype)
        if self.direct is not None and self.store is not None:
            return await read_orthogonal(self.direct, self.store.get_bytes, sel)
        # Index arrays whose range spans no other chunk are read as a range (zarr's fast
        # basic indexing, the same chunks) and picked from in memory.
        ranged: list[slice | np.ndarray] = []
        picks: list[np.ndarray | None] = []
        for s, c in zip(sel, self.chunks, strict=True):
            if (
                isinstance(s, np.ndarray)
                and s.size
                and (
                    s.max() // c == s.min() // c
                    or (len(np.unique(s // c)) == s.max() // c - s.min() // c + 1)
                )
                and (s.max() - s.min() + 1) <= 4 * s.size + c
            ):
                lo = int(s.min())
                ranged.append(slice(lo, int(s.max()) + 1))
                picks.append(s - lo)
            else:
                ranged.append(s)
                picks.append(None)
        which: Any = tuple(ranged)
        if any(isinstance(r, np.ndarray) for r in ranged):
            out = np.asarray(await self.array.get_orthogonal_selection(which))
        else:
            out = np.asarray(await self.array.getitem(which))
        for axis, pick in enumerate(picks):
            if pick is not None and not (
                len(pick) == out.shape[axis] and np.array_equal(pick, np.arange(len(pick)))
            ):
                out = np.take(out, pick, axis=axis)
        return _plain_strings(out)

    async def read_into(
        self, sel: Sequence[np.ndarray], out: np.ndarray, at: Sequence[np.ndarray]
    ) -> None:
        """Write the encoded values of the orthogonal selection ``sel`` into ``out`` at the
        outer product of the positions ``at`` (one 1-D array per axis, as long as the
        selection along it): chunks of plain Zarr v2 arrays are decoded straight there."""
        if self.direct is not None and self.store is not None and out.dtype == self.dtype:
            await read_orthogonal(self.direct, self.store.get_bytes, sel, out=out, at=at)
        else:
            out[orthogonal_index(*at)] = await self.read(sel)

    async def _prefetch_inner_chunks(self, sel: Sequence[np.ndarray | slice]) -> None:
        """Fetch the shard indexes, then every needed inner chunk, all concurrently (byte
        ranges, never whole shards), ahead of zarr's one-at-a-time reads."""
        assert self.shards is not None, "only sharded arrays prefetch inner chunks"
        per = tuple(s // c for s, c in zip(self.shards, self.chunks, strict=True))
        layout = _shard_index_layout(self.array, int(np.prod(per)))
        if layout is None:
            return
        index_size, at_end = layout
        idx = [
            np.arange(n)[s] if isinstance(s, slice) else np.asarray(s)
            for s, n in zip(sel, self.shape, strict=True)
        ]
        by_shard: dict[tuple[int, ...], list[tuple[int, ...]]] = {}
        for c in self.chunk_ids(idx):
            shard = tuple(i // p for i, p in zip(c, per, strict=True))
            by_shard.setdefault(shard, []).append(tuple(i % p for i, p in zip(c, per, strict=True)))
        if not by_shard or all(len(v) == int(np.prod(per)) for v in by_shard.values()):
            return  # whole shards: zarr reads each in one request
        keys = {sh: self.array.metadata.encode_chunk_key(sh) for sh in by_shard}
        rng = SuffixByteRequest(index_size) if at_end else RangeByteRequest(0, index_size)
        path = self.array.store_path.path
        assert self.store is not None
        shard_keys = [f"{path}/{keys[sh]}" if path else keys[sh] for sh in by_shard]
        indexes = await self.store.prefetch([(k, rng) for k in shard_keys])
        wanted = []
        n = int(np.prod(per))
        for key, raw, inner in zip(shard_keys, indexes, by_shard.values(), strict=True):
            if raw is None:
                continue
            table = np.frombuffer(raw[: 16 * n], "<u8").reshape(*per, 2)
            for c in inner:
                off, length = (int(v) for v in table[c])
                if off != 2**64 - 1:
                    wanted.append((key, RangeByteRequest(off, off + length)))
        await self.store.prefetch(wanted)


def _shard_index_layout(arr: AsyncArray, n_inner: int) -> tuple[int, bool] | None:
    """(index size in bytes, index at the end?) of a sharded array with zarr's default index
    encoding (little-endian uint64 pairs, optionally crc32c); None for anything else."""
    from zarr.codecs import BytesCodec, Crc32cCodec, ShardingCodec

    codecs = getattr(arr.metadata, "codecs", ())
    shard = next((c for c in codecs if isinstance(c, ShardingCodec)), None)
    if shard is None:
        return None
    extra = 0
    for c in shard.index_codecs:
        if isinstance(c, Crc32cCodec):
            extra += 4
        elif not (
            isinstance(c, BytesCodec)
            and str(getattr(c.endian, "value", c.endian)) in ("little", "None")
        ):
            return None
    at_end = str(getattr(shard.index_location, "value", shard.index_location)) == "end"
    return 16 * n_inner + extra, at_end


def _plain_strings(values: np.ndarray) -> np.ndarray:
    """Variable-length strings (numpy StringDType, Zarr v3) as fixed-width text."""
    if values.dtype.kind == "T":
        return values.astype(object).astype(str)
    return values


def _array_meta(name: str, arr: zarr.Array, store: CachingStore) -> SourceArray:
    meta = arr.metadata
    attrs = dict(arr.attrs)
    named: Any = attrs.pop("_ARRAY_DIMENSIONS", None) or getattr(meta, "dimension_names", None)
    dims = tuple(named or ())
    if len(dims) != len(arr.shape):
        raise CubeFormatError(f"{store.label}: array {name!r} has no dimension names")
    zfill = _plain(meta.fill_value)
    cf_fill = attrs.pop("_FillValue", None)
    cf_missing = attrs.pop("missing_value", None)
    np_dtype = np.dtype(object) if _is_string_dtype(arr) else np.dtype(arr.dtype)
    if np_dtype.kind in "OUST":
        missing = None
    else:
        marker = cf_fill if cf_fill is not None else cf_missing
        if marker is None and zfill is not None and meta.zarr_format == 2:
            marker = zfill
        missing = None if marker is None else _decode_marker(marker, np_dtype)
    if np_dtype.kind == "f" and missing is not None and np.isnan(missing):
        missing = np.nan
    # chunks that were never written must read as the CF missing marker, not Zarr's default
    if missing is not None and not _same_value(zfill, missing):
        meta = dataclasses.replace(meta, fill_value=missing)
    if cf_missing is not None:
        attrs["missing_value"] = cf_missing
    async_arr = rebuild_async_array(arr, meta, store)
    shards = getattr(arr, "shards", None)
    return SourceArray(
        name,
        dims,
        tuple(arr.shape),
        tuple(arr.chunks),
        np_dtype,
        attrs,
        missing,
        async_arr,
        store,
        None if shards is None else tuple(shards),
        v2_layout(async_arr) if shards is None else None,
    )


def _decode_marker(marker: Any, dtype: np.dtype) -> Any:
    """A CF fill attribute as a scalar of ``dtype`` (xarray writes float fills of Zarr v3
    arrays base64-encoded)."""
    if isinstance(marker, str) and dtype.kind in "iuf":
        if marker in ("NaN", "Infinity", "-Infinity"):
            return np.array(float(marker.replace("Infinity", "inf")), dtype)[()]
        raw = base64.b64decode(marker)
        for width in (dtype.itemsize, 8, 4, 2, 1):
            if len(raw) == width:
                kind = dtype.kind if width == dtype.itemsize else "f"
                return np.frombuffer(raw, dtype=f"<{kind}{width}")[0].astype(dtype)
        raise CubeFormatError(f"cannot read the fill value {marker!r}")
    return np.array(marker).astype(dtype)[()]


def _same_value(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    try:
        fa, fb = float(a), float(b)
    except (TypeError, ValueError):
        return a == b
    return fa == fb or (np.isnan(fa) and np.isnan(fb))


def _is_string_dtype(arr: zarr.Array) -> bool:
    try:
        kind = np.dtype(arr.dtype).kind
    except TypeError:
        return True
    return kind in "OUST"


class SourceCube:
    """An ITS_LIVE cube opened for chunk-level reading (see :func:`open_source`).

    Attributes
    ----------
    url : normalised URL or path.
    format : one of :data:`FORMATS`.
    attrs : global attributes.
    arrays : arrays by name.
    fingerprint : changes when the store's content changes (metadata hash, or the Icechunk
        snapshot id).
    store : the :class:`CachingStore` all chunk reads go through.
    """

    def __init__(
        self,
        url: str,
        fmt: str,
        group: zarr.Group,
        store: CachingStore,
        fingerprint: str,
        metadata_bytes: int = 0,
        snapshot: str | None = None,
    ) -> None:
        self.url = url
        self.format = fmt
        self.attrs = dict(group.attrs)
        self.store = store
        self.fingerprint = fingerprint
        self.metadata_bytes = metadata_bytes
        self.snapshot = snapshot
        self.arrays: dict[str, SourceArray] = {}
        self._small: dict[str, np.ndarray] = {}
        for name, arr in group.arrays():
            self.arrays[name] = _array_meta(name, arr, store)
        if not self.arrays:
            raise CubeFormatError(f"{url}: the store holds no arrays")

    def __contains__(self, name: str) -> bool:
        return name in self.arrays

    def __getitem__(self, name: str) -> SourceArray:
        try:
            return self.arrays[name]
        except KeyError:
            raise CubeFormatError(f"{self.url}: no variable {name!r}") from None

    @property
    def name(self) -> str:
        return self.url.rstrip("/").rsplit("/", 1)[-1]

    @property
    def time_dim(self) -> str:
        """The stored time dimension: ``mid_date`` (v2 image pairs) or ``time``."""
        for d in ("mid_date", "time"):
            if d in self.arrays and self.arrays[d].dims == (d,):
                return d
        raise CubeFormatError(f"{self.url}: no time dimension (mid_date or time)")

    @property
    def kind(self) -> str:
        """``"subyearly"`` (image pairs) or ``"annual"`` (composites)."""
        if "mid_date" in self.arrays or any(v in self.arrays for v in IMAGE_PAIR_VARIABLES):
            return "subyearly"
        return "annual"

    @property
    def epsg(self) -> int:
        """EPSG code from ``mapping.spatial_epsg`` or the global ``projection`` attribute."""
        gm = self.arrays["mapping"].attrs if "mapping" in self.arrays else {}
        epsg = epsg_of(gm.get("spatial_epsg"), gm.get("crs_wkt"), self.attrs.get("projection"))
        if epsg is not None:
            return epsg
        raise CubeFormatError(
            f"{self.url}: no projection (mapping.spatial_epsg or 'projection' attribute)"
        )

    def read_many(self, names: Sequence[str]) -> dict[str, np.ndarray]:
        """Whole (small) arrays, read concurrently: coordinates and per-layer metadata.

        Arrays read once are kept (they are small), so later calls cost nothing.
        """
        todo = [n for n in dict.fromkeys(names) if n not in self._small]

        async def go():
            return await asyncio.gather(*(self[n].read() for n in todo))

        if todo:
            self._small.update(zip(todo, sync(go()), strict=True))
        return {n: self._small[n] for n in names}


def decode_values(arr: SourceArray, raw: np.ndarray) -> np.ndarray:
    """CF-decode stored values: missing markers to NaN (NaT), scale and offset, times to
    ``datetime64[ns]`` (rounded to the microsecond), time spans to float days; text stays
    text."""
    if arr.is_string:
        return np.asarray(raw).astype(str)
    raw = np.asarray(raw)
    units = str(arr.attrs.get("units", ""))
    if " since " in units:
        return cf.decode_times(raw, units, arr.attrs.get("calendar"), arr.missing)
    if arr.name == "date_dt" and units.lower().startswith("second"):
        days = cf.timedelta_days(raw, units, arr.missing)
        return days if days is not None else raw.astype("f8") / 86400.0
    days = cf.timedelta_days(raw, units, arr.missing)
    if days is not None:
        return days
    if raw.dtype.kind not in "iuf":
        return raw
    values = raw.astype("f8")
    if arr.missing is not None:
        values[missing_mask(raw, arr.missing)] = np.nan
    scale, offset = arr.attrs.get("scale_factor"), arr.attrs.get("add_offset")
    if scale is not None:
        values *= float(scale)
    if offset is not None:
        values += float(offset)
    return values


def missing_mask(values: np.ndarray, missing: Any) -> np.ndarray:
    """Where encoded ``values`` are missing: NaN, or equal to the ``missing`` marker."""
    mask = np.isnan(values) if values.dtype.kind == "f" else np.zeros(values.shape, bool)
    if missing is not None and not (isinstance(missing, float) and np.isnan(missing)):
        mask |= values == missing
    return mask
