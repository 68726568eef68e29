"""Types shared by the API and the CLI: the choices of every option (``Literal`` types,
validated in one place by :func:`check_choice`), and what dates and CRSs may be given as."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, TypeAlias, get_args

from itscube.errors import InputError

if TYPE_CHECKING:  # the alias is for annotations: importing pyproj takes 0.1 s
    import pyproj

__all__ = [
    "ADVECTION_METHODS",
    "ESTIMATORS",
    "INTERPOLATIONS",
    "KINDS",
    "KINDS_OR_BOTH",
    "PERIOD_NAMES",
    "SCHEMES",
    "STRAIN_METHODS",
    "AdvectionMethod",
    "CRSLike",
    "Estimator",
    "Interp",
    "Kind",
    "Scheme",
    "SeriesKind",
    "StrainMethod",
    "check_choice",
]

Kind = Literal["subyearly", "annual"]
"""ITS_LIVE product: image-pair ("sub-yearly", dim ``mid_date``) or annual composite (``time``)."""
KINDS: tuple[str, ...] = get_args(Kind)

StrainMethod = Literal["gradient", "coarsen", "log"]
"""Length-scale method of :func:`itscube.strain_rates`."""
STRAIN_METHODS: tuple[str, ...] = get_args(StrainMethod)

Scheme = Literal["centred", "upwind"]
"""Face thickness of :func:`itscube.flux_divergence`."""
SCHEMES: tuple[str, ...] = get_args(Scheme)

AdvectionMethod = Literal["rk4", "rk2", "euler"]
"""Time stepping of :func:`itscube.track`."""
ADVECTION_METHODS: tuple[str, ...] = get_args(AdvectionMethod)

Estimator = Literal["auto", "fit", "pair-mean"]
"""Period means of :func:`itscube.period_mean`: the span-aware seasonal fit, the plain
inverse-variance mean of the layers in each period, or ``auto`` (the fit where the cube
has image-pair spans, else the mean of the layers)."""
ESTIMATORS: tuple[str, ...] = get_args(Estimator)

Interp = Literal["nearest", "bilinear"]
"""Sampling of :func:`itscube.time_series`: the pixel holding the point, or bilinear."""
INTERPOLATIONS: tuple[str, ...] = get_args(Interp)

SeriesKind = Literal["subyearly", "annual", "both"]
"""Products of :func:`itscube.products.run_series`: a kind, or both side by side."""
KINDS_OR_BOTH: tuple[str, ...] = get_args(SeriesKind)

PERIOD_NAMES: tuple[str, ...] = ("year", "season", "month")
"""Named composite periods (any pandas frequency such as ``6MS`` is accepted too)."""

CRSLike: TypeAlias = "str | int | pyproj.CRS"
"""A CRS: ``"EPSG:3413"``, ``3413``, WKT/PROJ text or a :class:`pyproj.CRS`."""


def check_choice(value: str, choices: tuple[str, ...], what: str) -> str:
    """``value`` if it is one of ``choices``, else a one-line :class:`InputError` naming the
    parameter ``what`` and the choices.

    >>> check_choice("rk4", ADVECTION_METHODS, "method")
    'rk4'
    """
    if value not in choices:
        raise InputError(f"{what} must be one of {', '.join(choices)}; got {value!r}", params=what)
    return value
