"""Option aliases shared by the API and the CLI (validated with ``typing.get_args``)."""

from __future__ import annotations

from typing import Literal, get_args

from .errors import InputError

Kind = Literal["subyearly", "annual"]
"""ITS_LIVE product: image-pair ("sub-yearly", dim ``mid_date``) or annual composite (``time``)."""

KINDS: tuple[str, ...] = get_args(Kind)


def check_choice(value: str, choices: tuple[str, ...], what: str) -> str:
    """Return ``value`` if it is one of ``choices``, else raise a one-line :class:`InputError`."""
    if value not in choices:
        raise InputError(f"{what} must be one of {', '.join(choices)}; got {value!r}")
    return value


StrainMethod = Literal["gradient", "coarsen", "log"]
"""Length-scale method of :func:`itscube.strain_rates`."""

STRAIN_METHODS: tuple[str, ...] = get_args(StrainMethod)
