"""Fetching and writing blocks: :func:`fetch_block` reads a block from every source cube
that covers it and mosaics them; :class:`StagedStore` writes blocks under a temporary
name, marks each done (the resume points), and moves the finished store into place."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from itscube._version import __version__
from itscube.geometry import footprint_rings, polygon_wkt
from itscube.grid import PIXEL_M, spacing
from itscube.io._zarr_private import async_array
from itscube.io.chunkread import orthogonal_index
from itscube.io.download.encode import VarSpec, _place, keeps_values, to_output
from itscube.io.download.plan import IN_FLIGHT_BYTES, OUTPUT_COMPRESSOR, Block, StorePlan, _spec_for
from itscube.io.location import Location

__all__ = [
    "StagedStore",
    "fetch_block",
]


async def fetch_block(plan: StorePlan, block: Block) -> dict[str, np.ndarray]:
    """Read and mosaic one output block of every tiled variable.

    Each cube that covers the block is read for exactly the selected pixels and layers
    inside it (zarr fetches the chunks that intersect them, through the cube's caching
    store); cubes earlier in ``plan.parts`` win where tiles overlap, later ones fill their
    gaps. Returns the encoded block of each tiled variable. Values the output keeps as
    stored are decoded straight into the block (no intermediate array per read).
    """
    out = {s.name: s.filled(block.shape) for s in plan.tiled}
    jobs: list[tuple[Any, VarSpec, tuple | None, Any]] = []  # (part, spec, where, read)
    claimed: set[str] = set()  # variables a cube earlier in plan.parts writes first
    for part in plan.parts:
        tsel = np.nonzero((part.t_pos >= block.t0) & (part.t_pos < block.t1))[0]
        ysel = np.nonzero((part.ky >= block.y0) & (part.ky < block.y1))[0]
        xsel = np.nonzero((part.kx >= block.x0) & (part.kx < block.x1))[0]
        if not (len(tsel) and len(ysel) and len(xsel)):
            continue
        order = np.argsort(part.ti[tsel], kind="stable")
        tsel = tsel[order]
        src = (part.ti[tsel], part.yi[ysel], part.xi[xsel])
        dst = (part.t_pos[tsel] - block.t0, part.ky[ysel] - block.y0, part.kx[xsel] - block.x0)
        for spec in plan.tiled:
            if not part.has(spec.name, plan.tdim):
                continue
            arr = part.cube[spec.name]
            if spec.name not in claimed and keeps_values(arr, spec):
                # the first cube writes every cell it covers: its chunks are decoded there
                jobs.append((part, spec, None, arr.read_into(src, out[spec.name], dst)))
            else:
                jobs.append((part, spec, dst, arr.read(src)))
            claimed.add(spec.name)
    results = await asyncio.gather(*(j[3] for j in jobs))
    written: set[str] = set()
    for (part, spec, where, _), data in zip(jobs, results, strict=True):
        if where is not None:  # later cubes fill the cells still missing
            data = to_output(data, part.cube[spec.name], spec)
            _place(out[spec.name], orthogonal_index(*where), data, spec, spec.name not in written)
        written.add(spec.name)
    return out


async def _read_static(plan: StorePlan, spec: VarSpec) -> np.ndarray:
    """A variable without time (y, x and maybe another dim) over the output grid, mosaicked."""
    shape = tuple(
        {"y": len(plan.y), "x": len(plan.x)}.get(d, 0) or plan.parts[0].cube[spec.name].shape[i]
        for i, d in enumerate(spec.dims)
    )
    out = spec.filled(shape)
    first = True
    for part in plan.parts:
        if spec.name not in part.cube:
            continue
        arr = part.cube[spec.name]
        dims = list(zip(arr.dims, arr.shape, strict=True))
        sel = [{"y": part.yi, "x": part.xi}.get(d, np.arange(n)) for d, n in dims]
        dst = [{"y": part.ky, "x": part.kx}.get(d, np.arange(n)) for d, n in dims]
        data = to_output(await arr.read(sel), arr, spec)
        _place(out, orthogonal_index(*dst), data, spec, first)
        first = False
    return out


class StagedStore:
    """The output store of one plan, written block by block under ``.partial``.

    A block marked done (a file under ``.partial/done``) is complete in the staged store;
    a re-run with the same layout skips it. :meth:`finish` writes the small variables,
    consolidates the metadata and moves the store into place.
    """

    def __init__(self, plan: StorePlan, folder: Location, partial: Location):
        self.plan = plan
        self.final = folder / plan.name
        self.path = partial / "stores" / plan.name
        self.done_dir = partial / "done" / plan.name
        stamp = partial / "stores" / f"{plan.name}.layout"
        layout = plan.layout_id()
        if not (self.path.exists() and stamp.exists() and stamp.read_text() == layout):
            self.path.remove()
            self.done_dir.remove()
            (partial / "stores").mkdir()
            self._create()
            stamp.write_text(layout)
        self.done_dir.mkdir()
        self._open()

    @classmethod
    def attach(cls, plan: StorePlan, path: Location, done_dir: Location) -> StagedStore:
        """The staged store another process created (a cluster worker writing its blocks)."""
        self = cls.__new__(cls)
        self.plan, self.path, self.done_dir = plan, path, done_dir
        self._open()
        return self

    def _open(self) -> None:
        self.group = zarr.open_group(store=self.path.zarr_store(), mode="r+", zarr_format=2)
        self.arrays = {s.name: self.group[s.name] for s in self.plan.tiled}

    def _create(self) -> None:
        root = zarr.open_group(store=self.path.zarr_store(), mode="w", zarr_format=2)
        for spec in self.plan.tiled:
            shape = (len(self.plan.times), len(self.plan.y), len(self.plan.x))
            _create_array(root, spec.name, shape, spec, spec.chunks)

    def done_blocks(self) -> set[int]:
        """Indices of the blocks marked done (one listing of the markers)."""
        fs, where = self.done_dir.fs, self.done_dir.path
        if not fs.exists(where):
            return set()
        names = (n.rstrip("/").rsplit("/", 1)[-1] for n in fs.ls(where, detail=False))
        return {int(n) for n in names if n.isdigit()}

    async def write(self, block: Block, data: dict[str, np.ndarray]) -> None:
        region = (
            slice(block.t0, block.t1),
            slice(block.y0, block.y1),
            slice(block.x0, block.x1),
        )
        await asyncio.gather(
            *(async_array(self.arrays[n]).setitem(region, v) for n, v in data.items())
        )
        (self.done_dir / str(block.index)).touch()

    def write_small(self) -> None:
        """Write the attributes, coordinates, per-layer variables and grid mapping (known
        from the plan; runs in a thread while the blocks are fetched)."""
        plan = self.plan
        first = plan.parts[0].cube
        x, y = plan.x, plan.y
        proj_ring, geo_ring = footprint_rings(plan.epsg, x, y)
        attrs = dict(first.attrs)
        attrs.update(
            proj_polygon=polygon_wkt(proj_ring),
            geo_polygon=polygon_wkt(geo_ring),
            itscube_source_urls=" ".join(p.cube.url for p in plan.parts),
            history=f"subset by itscube {__version__}",
        )
        self.group.update_attributes(attrs)  # one write (attrs.update writes per key)
        for coord, values in (("x", x), ("y", y)):
            src = first[coord]
            spec = VarSpec(coord, (coord,), np.dtype("f8"), None, dict(src.attrs), "coord")
            _write_whole(self.group, coord, values, spec)
        for name, values in plan.layer_values.items():
            _write_whole(self.group, name, values, plan.specs[name])
        extra_dims = {d for s in plan.specs.values() for d in s.dims} - {"x", "y", plan.tdim}
        for d in sorted(extra_dims):
            if d in first and d not in plan.specs:
                src = first[d]
                values = first.read_many([d])[d]
                spec = _spec_for(d, src, plan.tdim, first.time_dim)
                _write_whole(self.group, d, to_output(values, src, spec), spec)
        if "mapping" in first:
            src = first["mapping"]
            mattrs = dict(src.attrs)
            dx, dy = spacing(x, "x"), (spacing(y, "y") if len(y) > 1 else -PIXEL_M)
            mattrs["GeoTransform"] = " ".join(
                f"{g:.12g}" for g in (x[0] - dx / 2, dx, 0.0, y[0] - dy / 2, 0.0, dy)
            )
            value = np.asarray(first.read_many(["mapping"])["mapping"]).astype(str)
            _write_whole(
                self.group,
                "mapping",
                value,
                VarSpec("mapping", (), value.dtype, None, mattrs, "other"),
            )

    def finish(self, statics: dict[str, np.ndarray]) -> Path | str:
        """Write the variables without time, consolidate, and move the store into place."""
        for name, values in statics.items():
            _write_whole(self.group, name, values, self.plan.specs[name])
        zarr.consolidate_metadata(self.path.zarr_store(), zarr_format=2)
        self.path.move_to(self.final)
        return self.final.as_path()


def _write_whole(group, name: str, values: np.ndarray, spec: VarSpec) -> None:
    """Write a small array in one chunk (strings as fixed-width text, as ITS_LIVE v2)."""
    values = np.asarray(values)
    if values.dtype.kind in "OUST":
        values = values.astype(str)
        spec = dataclasses.replace(spec, dtype=values.dtype)
    _create_array(group, name, values.shape, spec, values.shape)[...] = values


def _create_array(group, name: str, shape, spec: VarSpec, chunks) -> zarr.Array:
    fill = spec.missing
    if spec.dtype.kind in "OUST":
        fill = None
    elif isinstance(fill, float) and np.isnan(fill):
        fill = np.nan
    return group.create_array(
        name,
        shape=tuple(shape),
        chunks=tuple(chunks) if chunks else tuple(shape),
        dtype=spec.dtype,
        fill_value=fill,
        compressors=(OUTPUT_COMPRESSOR,),
        attributes={**spec.attrs, "_ARRAY_DIMENSIONS": list(spec.dims)},
        overwrite=True,
    )


def _in_flight(plan: StorePlan) -> int:
    """Blocks assembled at once for ``plan`` (their decoded bytes within IN_FLIGHT_BYTES)."""
    block_bytes = max(1, int(np.prod(plan.block_shape)) * sum(s.dtype.itemsize for s in plan.tiled))
    return max(1, min(16, IN_FLIGHT_BYTES // block_bytes))


async def _assemble_blocks(
    store: StagedStore,
    todo: Sequence[Block],
    on_block: Callable[[Block, StorePlan], None] | None,
) -> None:
    """Fetch and write the blocks ``todo`` of ``store``, a bounded number at once."""
    plan = store.plan
    in_flight = _in_flight(plan)
    held = asyncio.Semaphore(2 * in_flight)  # blocks in memory: being fetched or written
    fetching = asyncio.Semaphore(in_flight)

    async def one(block: Block) -> None:
        # a fetched block gives its fetch slot to the next one while it is encoded and
        # written (threads), so requests keep flowing between blocks
        async with held:
            async with fetching:
                data = await fetch_block(plan, block)
            await store.write(block, data)
            del data
        if on_block is not None:
            on_block(block, plan)

    tasks = []
    try:
        for b in todo:  # bounded creation keeps the task list small for huge downloads
            tasks.append(asyncio.ensure_future(one(b)))
            if len(tasks) >= 4 * in_flight:
                done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                for d in done:
                    d.result()
                tasks = list(pending)
        for t in asyncio.as_completed(tasks):
            await t
    except BaseException:
        for t in tasks:
            t.cancel()
        raise


async def _assemble(
    staged: list[StagedStore], on_block: Callable[[Block, StorePlan], None] | None
) -> int:
    """Fetch and write every block not yet done; returns the number assembled now."""
    count = 0
    for store in staged:
        plan = store.plan
        small = asyncio.ensure_future(asyncio.to_thread(store.write_small))
        done = store.done_blocks()
        todo = [b for b in plan.blocks() if b.index not in done]
        for b in plan.blocks():
            if b.index in done and on_block is not None:
                on_block(b, plan)
        try:
            await _assemble_blocks(store, todo, on_block)
            await small
        except BaseException:
            with contextlib.suppress(BaseException):
                await small
            raise
        count += len(todo)
    return count
