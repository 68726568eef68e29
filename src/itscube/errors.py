"""Exception hierarchy.

Every error a user can cause derives from :class:`ItscubeError`. The CLI turns
these into a one-line message and a non-zero exit code; library users can catch
the base class or a specific subclass.
"""

from __future__ import annotations

__all__ = [
    "CatalogError",
    "CubeFormatError",
    "CubeNotFoundError",
    "DownloadError",
    "EmptySelectionError",
    "InputError",
    "InsufficientSpaceError",
    "ItscubeError",
    "MissingCRSError",
    "OutputExistsError",
]


class ItscubeError(Exception):
    """Base class of all itscube errors (bad input, missing data, failed download).

    Parameters
    ----------
    message : one line: which input, what is wrong, what to do.
    params : the Python parameter names the message mentions (``"upscale"``); the command
        line shows each as its flag (``--upscale``), so both audiences read their own names.
    """

    exit_code: int = 2

    def __init__(self, message: str = "", *, params: str | tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.params: tuple[str, ...] = (params,) if isinstance(params, str) else tuple(params)


class InputError(ItscubeError, ValueError):
    """A user-supplied argument or file is malformed (dates, bbox, polygon, variables...)."""


class CatalogError(ItscubeError):
    """The cube catalog cannot be read or is not a valid ITS_LIVE GeoJSON catalog."""


class CubeNotFoundError(ItscubeError):
    """No datacube covers the requested area, or a cube URL/path does not exist."""


class CubeFormatError(ItscubeError):
    """A store is not a usable ITS_LIVE cube (no consolidated metadata, missing variables...)."""


class MissingCRSError(CubeFormatError):
    """A cube or raster carries no coordinate reference system."""


class EmptySelectionError(ItscubeError):
    """The requested space/time window selects no data."""


class DownloadError(ItscubeError):
    """A transfer failed permanently (after the bounded number of retries)."""

    exit_code = 3


class OutputExistsError(ItscubeError):
    """The output folder already holds a different product."""


class InsufficientSpaceError(ItscubeError):
    """The output folder's disk has not enough free space for the requested download."""
