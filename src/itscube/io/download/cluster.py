"""Downloads on a dask.distributed cluster: the client plans, the workers fetch and write.

The client lays out the output stores and creates them (staged under ``.partial``, as on
one machine). Each task is a group of blocks: the worker opens the source cubes itself
(once per process, checked against the client's layout), reads the chunks of its blocks
and writes their regions of the staged store, marking each block done. Blocks hold whole
output chunks, so no two workers write the same object; the client never holds block data.
A task lost with its worker is run again by the scheduler on another; a failed run resumes
from the blocks marked done, as on one machine.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import threading
from collections.abc import Callable, Sequence
from typing import Any

from itscube._typing import Kind
from itscube.cluster import worker_count
from itscube.errors import DownloadError, InputError, ItscubeError
from itscube.geometry import Area
from itscube.io.location import Location
from itscube.window import Filters

__all__ = [
    "Recipe",
    "fetch_on_cluster",
    "probe_workers",
    "write_blocks",
]


@dataclasses.dataclass(frozen=True)
class Recipe:
    """What a worker needs to lay out the same download as the client (picklable)."""

    sources: tuple[tuple[str, dict | None], ...]
    area: Area
    kind: Kind
    start: Any
    end: Any
    variables: tuple[str, ...] | None
    filters: Filters
    workers: int
    storage_options: dict | None
    block_bytes: int

    @property
    def key(self) -> str:
        doc = dataclasses.asdict(self)
        doc["area"] = [self.area.geometry.wkt, self.area.crs.to_string()]
        return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()


_LOCK = threading.Lock()
_PLANS: dict[str, list] = {}


def _plans_here(recipe: Recipe) -> list:
    """The recipe's store plans in this process (laid out once, kept for later tasks)."""
    from itscube.io.download.plan import plan_download

    plans = _PLANS.get(recipe.key)
    if plans is None:
        plans, _ = plan_download(
            list(recipe.sources),
            recipe.area,
            kind=recipe.kind,
            start=recipe.start,
            end=recipe.end,
            variables=list(recipe.variables) if recipe.variables else None,
            filters=recipe.filters,
            workers=recipe.workers,
            storage_options=recipe.storage_options,
            block_bytes=recipe.block_bytes,
        )
        _PLANS.clear()  # one download's sources open per process at a time
        _PLANS[recipe.key] = plans
    return plans


def _where() -> str:
    try:
        from distributed import get_worker

        return f"worker {get_worker().address}"
    except ValueError:
        return "this process"


def write_blocks(
    recipe: Recipe,
    plan_index: int,
    layout: str,
    store: Location,
    done: Location,
    indices: Sequence[int],
) -> dict[str, Any]:
    """Fetch the blocks ``indices`` of one store and write them into the staged ``store``,
    marking each in ``done`` (run on a worker, one task at a time per process: the memory
    bound of a download holds per worker). Returns the blocks written and the transfer
    figures, or ``{"error": message}``."""
    from itscube.io.download.write import StagedStore, _assemble_blocks
    from itscube.io.stores import run_sync

    with _LOCK:
        try:
            plan = _plans_here(recipe)[plan_index]
            if plan.layout_id() != layout:
                raise DownloadError(
                    "the source cubes changed since the download was planned; run it again"
                )
            staged = StagedStore.attach(plan, store, done)
            finished = staged.done_blocks()
            wanted = set(indices) - finished
            todo = [b for b in plan.blocks() if b.index in wanted]
            stats = [p.cube.store.stats for p in plan.parts]
            before = [(s.requests, s.bytes) for s in stats]
            run_sync(_assemble_blocks(staged, todo, None))
        except (ItscubeError, OSError) as exc:  # reported by the client, in one line
            return {"error": f"{_where()}: {exc}"}
        return {
            "blocks": len(todo),
            "requests": sum(s.requests - r for s, (r, _) in zip(stats, before, strict=True)),
            "bytes": sum(s.bytes - b for s, (_, b) in zip(stats, before, strict=True)),
        }


def _probe(folder: Location, url: str, storage_options: dict | None) -> str | None:
    """On a worker: None if it can write in ``folder`` and open the cube ``url``, else why."""
    from itscube.io.stores import open_source

    problem = folder.write_problem()
    if problem:
        return f"cannot write the output {folder} ({problem})"
    try:
        open_source(url, storage_options, workers=1)
    except (ItscubeError, OSError) as exc:
        return f"cannot open the source {url} ({exc})"
    return None


def probe_workers(client, folder: Location, url: str, storage_options: dict | None) -> None:
    """Check that every worker can write the output folder and open a source cube.

    Raises
    ------
    InputError
        One line naming the first worker that cannot, and what it cannot do.
    """
    answers = client.run(_probe, folder, url, storage_options)
    for worker, problem in sorted(answers.items()):
        if problem:
            raise InputError(
                f"worker {worker} {problem}; give an out and sources every worker can reach "
                "(a shared folder or object storage)",
                params=("out", "scheduler"),
            )


def fetch_on_cluster(
    client, recipe: Recipe, staged: Sequence, step: Callable[..., None]
) -> dict[str, int]:
    """Run the blocks of every staged store not yet done as tasks on ``client``'s workers;
    ``step(n)`` is called as blocks complete. Returns the transfer figures summed."""
    from distributed import as_completed

    from itscube.io.download.write import _in_flight

    n_workers = worker_count(client)
    futures = []
    for i, store in enumerate(staged):
        plan = store.plan
        done = store.done_blocks()
        step(len(done))
        todo = [b.index for b in plan.blocks() if b.index not in done]
        if not todo:
            continue
        per_task = max(1, min(_in_flight(plan), math.ceil(len(todo) / (2 * n_workers))))
        layout = plan.layout_id()
        for k in range(0, len(todo), per_task):
            futures.append(
                client.submit(
                    write_blocks,
                    recipe,
                    i,
                    layout,
                    store.path,
                    store.done_dir,
                    todo[k : k + per_task],
                    pure=False,
                    retries=1,
                )
            )
    total = {"blocks": 0, "requests": 0, "bytes": 0}
    try:
        for fut in as_completed(futures):
            res = fut.result()
            if "error" in res:
                raise DownloadError(res["error"])
            for name in total:
                total[name] += res[name]
            step(res["blocks"])
    except BaseException:
        client.cancel(futures)
        raise
    return total
