"""Run-time settings of the network layer, as :func:`xarray.set_options`.

>>> import itscube
>>> with itscube.set_options(retries=2, backoff=0.01):
...     itscube.get_options()["retries"]
2
>>> itscube.get_options()["retries"]
6
"""

from __future__ import annotations

from typing import Any

from itscube.errors import InputError

__all__ = ["get_options", "set_options"]

_OPTIONS: dict[str, Any] = {"retries": 6, "backoff": 0.2, "concurrency": 64}
_CHECKS = {
    "retries": (lambda v: isinstance(v, int) and v >= 1, "a whole number >= 1"),
    "backoff": (lambda v: isinstance(v, int | float) and v >= 0, "seconds >= 0"),
    "concurrency": (lambda v: isinstance(v, int) and 1 <= v <= 1024, "a whole number 1..1024"),
}
_DOC = {
    "retries": "attempts per request before giving up (transient errors only)",
    "backoff": "first back-off delay (s); doubles each attempt, with jitter, capped at 8 s",
    "concurrency": "requests in flight per source cube (downloads, series)",
}


def get_options() -> dict[str, Any]:
    """The current settings (a copy)."""
    return dict(_OPTIONS)


class set_options:
    """Change settings, for good or within a ``with`` block.

    Parameters
    ----------
    retries : attempts per request before giving up on transient errors (default 6).
    backoff : first back-off delay in seconds (default 0.2).
    concurrency : requests in flight per source cube (default 64).

    Raises
    ------
    InputError
        An unknown setting or a value out of range.
    """

    def __init__(self, **settings: Any) -> None:
        for name, value in settings.items():
            if name not in _OPTIONS:
                raise InputError(
                    f"unknown setting {name!r}; choose from {', '.join(sorted(_OPTIONS))}",
                    params=name,
                )
            ok, want = _CHECKS[name]
            if not ok(value):
                raise InputError(f"{name} must be {want}; got {value!r}", params=name)
        self._old = {name: _OPTIONS[name] for name in settings}
        _OPTIONS.update(settings)

    def __enter__(self) -> set_options:
        return self

    def __exit__(self, *exc: object) -> None:
        _OPTIONS.update(self._old)
