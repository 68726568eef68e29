"""Progress reporting, kept out of the computing code.

The library reports progress through a :class:`Progress` object and never draws anything
itself: the default, :class:`Progress`, counts silently; :class:`RichProgress` draws rich
progress bars with an ETA (the command line uses it, and so does ``progress=True``); any
object with the same two methods can route the counts elsewhere (a GUI, a log).

>>> from itscube.progress import Progress
>>> quiet = Progress()
>>> with quiet.task("blocks", total=3) as advance:
...     for _ in range(3):
...         advance()
>>> quiet.done["blocks"]
3
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["Progress", "ProgressLike", "RichProgress", "as_progress", "dask_tasks"]


class Progress:
    """Silent progress: counts the steps of each task (``done``) and drops log lines."""

    def __init__(self) -> None:
        self.done: dict[str, int] = {}

    @contextlib.contextmanager
    def task(
        self, description: str, total: int, *, detail: str = "", keep: bool = False, **fields: Any
    ) -> Iterator[Callable[..., None]]:
        """A task of ``total`` steps; yields ``advance(n=1, **fields)``.

        Parameters
        ----------
        description : what is being done (``"download"``).
        total : number of steps.
        detail : a :meth:`str.format` template over ``fields`` shown beside the bar
            (``"{mb:.1f} MB fetched"``).
        keep : leave the finished bar on screen (else it disappears when done).
        """
        self.done[description] = 0

        def advance(n: int = 1, **_: Any) -> None:
            self.done[description] += n

        yield advance

    def log(self, message: str) -> None:
        """A one-line message about what comes next (dropped when silent)."""


class RichProgress(Progress):
    """Rich progress bars with elapsed time and ETA on ``console`` (default: stderr)."""

    def __init__(self, console: Any = None) -> None:
        super().__init__()
        if console is None:
            from rich.console import Console

            console = Console(stderr=True, log_path=False)
        self.console = console

    @contextlib.contextmanager
    def task(
        self, description: str, total: int, *, detail: str = "", keep: bool = False, **fields: Any
    ) -> Iterator[Callable[..., None]]:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.progress import Progress as Bar

        columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn()]
        if detail:
            columns.append(TextColumn("{task.fields[detail]}"))
        columns += [TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn()]
        # piped (not a terminal): no bars, whose final frames would print as blank lines
        bar = Bar(
            *columns,
            console=self.console,
            transient=not keep,
            disable=not self.console.is_terminal,
        )
        state = dict(fields)
        task = bar.add_task(description, total=total, detail=detail.format(**state))
        self.done[description] = 0

        def advance(n: int = 1, **update: Any) -> None:
            self.done[description] += n
            state.update(update)
            bar.update(task, advance=n, detail=detail.format(**state) if detail else "")

        with bar:
            yield advance

    def log(self, message: str) -> None:
        if self.console.is_terminal:
            self.console.log(message)
        else:  # a log file: the message alone, no time column or source path
            self.console.print(message, soft_wrap=True, highlight=False)


ProgressLike = Progress | bool | None
"""What ``progress=`` accepts: a :class:`Progress`, ``True`` (rich bars) or ``False``/``None``."""


def as_progress(progress: ProgressLike) -> Progress:
    """The :class:`Progress` for a ``progress=`` argument."""
    if isinstance(progress, Progress):
        return progress
    return RichProgress() if progress else Progress()


@contextlib.contextmanager
def dask_tasks(progress: Progress, description: str) -> Iterator[None]:
    """Report the tasks of dask computations run by a local scheduler inside the block."""
    if type(progress) is Progress:  # silent: no callback overhead
        yield
        return
    from dask.callbacks import Callback

    class _Tasks(Callback):
        def __init__(self) -> None:
            super().__init__()
            self._stack = contextlib.ExitStack()
            self._advance: Callable[..., None] | None = None

        def _start_state(self, dsk, state):
            self._advance = self._stack.enter_context(progress.task(description, len(dsk)))

        def _posttask(self, key, result, dsk, state, worker_id):
            if self._advance is not None:
                self._advance()

        def _finish(self, dsk, state, errored):
            self._stack.close()
            self._advance = None

    with _Tasks():
        yield
