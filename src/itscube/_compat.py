"""Keyword arguments renamed in the vocabulary pass, accepted for one more release.

>>> @renamed_params(n="ensemble")
... def spread(*, ensemble=1):
...     return ensemble
>>> import warnings
>>> with warnings.catch_warnings(record=True) as seen:
...     warnings.simplefilter("always")
...     spread(n=5), str(seen[0].message)
(5, 'spread(n=...) is deprecated and will be removed; use ensemble=...')
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

from itscube.errors import InputError

__all__ = ["renamed_params"]

_F = TypeVar("_F", bound=Callable[..., Any])


def renamed_params(**renames: str) -> Callable[[_F], _F]:
    """Accept each ``old=...`` keyword as its ``new`` name, with a :class:`FutureWarning`
    (users see it, unlike a DeprecationWarning); both at once is an :class:`InputError`."""

    def wrap(fn: _F) -> _F:
        @functools.wraps(fn)
        def call(*args: Any, **kwargs: Any) -> Any:
            for old, new in renames.items():
                if old not in kwargs:
                    continue
                if new in kwargs:
                    raise InputError(f"give {new} only ({old} is its old name)", params=(new, old))
                warnings.warn(
                    f"{fn.__name__}({old}=...) is deprecated and will be removed; use {new}=...",
                    FutureWarning,
                    stacklevel=2,
                )
                kwargs[new] = kwargs.pop(old)
            return fn(*args, **kwargs)

        return call  # type: ignore[return-value]

    return wrap
