"""Running on a dask.distributed cluster: connect, check the workers, count their work.

itscube has no cluster-specific code: any dask deployment (``LocalCluster``, dask-jobqueue
on HPC, dask-kubernetes, Coiled...) is reached through its scheduler address. With one,
the client plans and the workers fetch, compute and write:

- ``download``: each block of the output store is a task; a worker reads the source
  chunks of its block and writes its region of the staged output store itself.
- ``strain``, ``qdiv``, ``seasonal``: the products' dask graphs (one task per time chunk)
  run on the workers.
- ``track``: the composite fields are computed on the cluster, then blocks of seeds are
  tasks, each integrating its particles against the fields held once per worker.
- ``series``: blocks of points are tasks; each reads its points' pixels from the source.

The outputs are those of a run without a scheduler, value for value.

>>> from itscube.cluster import connect
>>> with connect(None) as client:  # no address, no ITSCUBE_SCHEDULER: run locally
...     client is None
True
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

from itscube._version import __version__
from itscube.errors import InputError

__all__ = [
    "SCHEDULER_ENV",
    "connect",
    "current_client",
    "executed_counts",
    "worker_count",
    "worker_versions",
]

SCHEDULER_ENV = ("ITSCUBE_SCHEDULER", "DASK_SCHEDULER_ADDRESS")
"""Environment variables read (in this order) when no scheduler address is given."""

_CHECKED = ("itscube", "numpy", "xarray", "zarr", "dask", "distributed")
"""Packages whose versions must agree between the client and every worker."""


def _versions() -> dict[str, str]:
    """The versions of :data:`_CHECKED` in this process (run on each worker)."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in _CHECKED:
        try:
            out[name] = __version__ if name == "itscube" else version(name)
        except PackageNotFoundError:  # pragma: no cover - a broken install
            out[name] = "missing"
    return out


def _worker_itscube() -> dict[str, str]:
    """Versions as a worker sees them; ``missing`` where itscube cannot be imported there."""
    try:
        from itscube.cluster import _versions as worker_versions
    except ImportError:
        return {"itscube": "missing"}
    return worker_versions()


def worker_versions(client) -> dict[str, dict[str, str]]:
    """The checked package versions on every worker of ``client`` (address -> versions)."""
    return client.run(_worker_itscube)


def _check_workers(client, address: str) -> None:
    """Refuse a cluster without workers or whose workers run other versions than here."""
    versions = worker_versions(client)
    if not versions:
        raise InputError(
            f"scheduler {address} has no workers; start some (dask worker {address}) and retry",
            params="scheduler",
        )
    here = _versions()
    for worker, theirs in sorted(versions.items()):
        diff = [
            f"{k} {theirs.get(k, 'missing')} (here {v})"
            for k, v in here.items()
            if theirs.get(k) != v
        ]
        if diff:
            raise InputError(
                f"worker {worker} of scheduler {address} has {', '.join(diff)}; install "
                f"itscube {__version__} and the same packages on every worker",
                params="scheduler",
            )


def current_client():
    """The dask.distributed client this process computes with, or None."""
    try:
        from distributed import default_client
    except ImportError:  # pragma: no cover - distributed is a dependency
        return None
    try:
        return default_client()
    except ValueError:
        return None


@contextlib.contextmanager
def connect(scheduler: str | None = None, client: Any = None) -> Iterator[Any]:
    """The client to run on: ``client`` as given, else a connection to ``scheduler`` (or
    ``ITSCUBE_SCHEDULER``, or ``DASK_SCHEDULER_ADDRESS``), else None (run locally).

    The workers are checked first: a cluster without workers, or whose workers lack
    itscube or run other versions of it (or of numpy, xarray, zarr, dask, distributed),
    is refused with one line naming the mismatch. Inside the block the client is dask's
    default, so every ``compute`` runs on the cluster.

    Raises
    ------
    InputError
        The scheduler cannot be reached, has no workers, or its workers differ.
    """
    if client is not None:
        _check_workers(client, str(client.scheduler.address))
        with client.as_current():
            yield client
        return
    address = scheduler or next((os.environ[k] for k in SCHEDULER_ENV if os.environ.get(k)), None)
    if not address:
        yield None
        return
    from distributed import Client

    try:
        new = Client(address, timeout="10s", set_as_default=True)
    except (OSError, TimeoutError) as exc:
        raise InputError(
            f"scheduler {address}: cannot connect ({exc}); check the address and that the "
            "scheduler is running",
            params="scheduler",
        ) from exc
    with new:
        _check_workers(new, address)
        with new.as_current():
            yield new


def worker_count(client) -> int:
    """Workers the scheduler of ``client`` knows now (at least 1: work is split for it)."""
    return max(1, len(client.scheduler_info().get("workers", {})))


def _executed(dask_worker) -> int:
    return dask_worker.state.executed_count


def executed_counts(client) -> dict[str, int]:
    """Tasks each worker of ``client`` has executed so far (address -> count)."""
    return client.run(_executed)
