"""The date window and the layer filters: what a user asks for, checked up front.

Shared by the download (which filters layers from their metadata before fetching) and
by every product (which filters opened cubes).

* Dates are ISO 8601 only (``YYYY``, ``YYYY-MM``, ``YYYY-MM-DD``): ``01/02/2018`` is
  ambiguous and refused.
* ``end`` is inclusive of the whole day, month or year it names (``end="2020"`` runs to
  the end of 2020): :func:`date_window` gives the half-open ``[t0, t1)``.

>>> t0, t1 = date_window("2018-06", "2019")
>>> str(t0.date()), str(t1.date())
('2018-06-01', '2020-01-01')
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import re
from typing import TYPE_CHECKING, TypeAlias, overload

import numpy as np

from itscube.errors import InputError

if TYPE_CHECKING:  # pandas (with pyarrow) is 0.4 s per process: the download does without
    import pandas as pd

__all__ = [
    "ISO_DATE",
    "SENSOR_LABEL",
    "DateLike",
    "Filters",
    "date_bounds",
    "date_window",
    "layer_mask",
    "parse_date",
]

DateLike: TypeAlias = str | np.datetime64 | _dt.date
"""A date: ISO text (``"2018-06-01"``, ``"2018-06"``, ``"2018"``), or a date object
(``datetime.date``/``datetime.datetime``, ``pandas.Timestamp``, ``numpy.datetime64``)."""


ISO_DATE = re.compile(
    r"^(?P<y>\d{4})(-(?P<m>\d{2})(-(?P<d>\d{2})([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?Z?)?)?)?$"
)
"""Dates accepted from users: ``YYYY``, ``YYYY-MM``, ``YYYY-MM-DD`` (optionally with a time)."""

_USE_ISO = "use YYYY-MM-DD (or YYYY-MM, YYYY)"


def _instant(value: DateLike, what: str) -> _dt.datetime:
    """A naive ``datetime`` from user input (no pandas: the download's start-up does without
    its 0.4 s), or a one-line :class:`InputError`. A ``datetime64`` keeps microseconds."""
    ts: _dt.datetime
    if isinstance(value, str):
        text = value.strip()
        m = ISO_DATE.match(text)
        if m is None:
            raise InputError(f"{what} {value!r} is not an ISO date; {_USE_ISO}", params=what)
        try:
            if m["d"] is None:
                ts = _dt.datetime(int(m["y"]), int(m["m"] or 1), 1)
            else:
                ts = _dt.datetime.fromisoformat(text)
        except ValueError as exc:
            msg = f"{what} {value!r} is not a valid date; {_USE_ISO}"
            raise InputError(msg, params=what) from exc
    elif isinstance(value, np.datetime64 | _dt.date) and value != value:  # NaT (pandas' too)
        raise InputError(f"{what} {value!r} is not a date; {_USE_ISO}", params=what)
    elif isinstance(value, _dt.datetime):  # pandas.Timestamp too (nanoseconds kept)
        ts = value
    elif isinstance(value, _dt.date):
        ts = _dt.datetime.combine(value, _dt.time())
    elif isinstance(value, np.datetime64):
        ts = value.astype("datetime64[us]").item()
    else:
        raise InputError(f"{what} {value!r} is not a date; {_USE_ISO}", params=what)
    return ts.replace(tzinfo=None) if ts.tzinfo else ts


@overload
def parse_date(value: DateLike, what: str) -> pd.Timestamp: ...
@overload
def parse_date(value: None, what: str) -> None: ...
@overload
def parse_date(value: DateLike | None, what: str) -> pd.Timestamp | None: ...
def parse_date(value: DateLike | None, what: str) -> pd.Timestamp | None:
    """A timestamp from user input, or a one-line :class:`InputError`.

    Text must be ISO 8601 (``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD``, optionally with a
    time): ``01/02/2018`` is ambiguous (US or European order) and is refused. Date and
    datetime objects are taken as they are (time zones dropped, the wall time kept).

    >>> parse_date("2018-06", "start")
    Timestamp('2018-06-01 00:00:00')
    """
    if value is None:
        return None
    import pandas as pd

    if isinstance(value, np.datetime64) and not np.isnat(value):
        return pd.Timestamp(value)  # nanoseconds kept
    return pd.Timestamp(_instant(value, what))


def _end_of(value: DateLike | None, ts: _dt.datetime) -> _dt.datetime:
    """The exclusive end of an inclusive ``--end``: the whole year, month or day given."""
    m = ISO_DATE.match(value.strip()) if isinstance(value, str) else None
    if m and m["m"] is None:
        return ts.replace(year=ts.year + 1)
    if m and m["d"] is None:
        return ts.replace(year=ts.year + ts.month // 12, month=ts.month % 12 + 1)
    if ts == _dt.datetime.combine(ts.date(), _dt.time()):
        return ts + _dt.timedelta(days=1)
    return ts


def date_bounds(start: DateLike | None, end: DateLike | None) -> tuple[_dt.datetime, _dt.datetime]:
    """Inclusive ``[start, end)`` bounds as naive ``datetime`` objects: ``end`` includes the
    whole day, month or year it names (``--end 2020`` runs to the end of 2020).

    >>> date_bounds("2020-11", "2020-12")
    (datetime.datetime(2020, 11, 1, 0, 0), datetime.datetime(2021, 1, 1, 0, 0))
    """
    t0 = _dt.datetime(1900, 1, 1) if start is None else _instant(start, "start")
    t1 = None if end is None else _instant(end, "end")
    if t1 is not None and t0 > t1:
        raise InputError(f"start {t0.date()} is after end {t1.date()}", params=("start", "end"))
    return t0, _dt.datetime(2200, 1, 1) if t1 is None else _end_of(end, t1)


def date_window(start: DateLike | None, end: DateLike | None) -> tuple[pd.Timestamp, pd.Timestamp]:
    """:func:`date_bounds` as pandas timestamps."""
    import pandas as pd

    t0, t1 = date_bounds(start, end)
    return pd.Timestamp(t0), pd.Timestamp(t1)


SENSOR_LABEL = re.compile(r"^(L[4-9]?|S[12]?[A-D]?)$")
"""Mission letter + satellite, as ITS_LIVE labels image pairs (``L8``, ``S2A``...)."""


@dataclasses.dataclass(frozen=True)
class Filters:
    """Layer filters for sub-yearly cubes.

    Attributes
    ----------
    min_dt_days, max_dt_days : bounds on the image-pair separation ``date_dt`` (days).
    sensors : keep pairs whose first image is from one of these platforms, given as
        mission letter + satellite (``L8``, ``L9``, ``S1``, ``S2``, ``S2A``...; prefixes match).
    min_valid_percent : minimum ``roi_valid_percentage`` (the notebooks used 40).
    max_error : maximum velocity error (m/yr): layers whose scalar ``vx_error`` or
        ``vy_error`` exceeds it are dropped; per-pixel errors mask those pixels instead.
        Applied to opened cubes only (not at download).
    """

    min_dt_days: float | None = None
    max_dt_days: float | None = None
    sensors: tuple[str, ...] = ()
    min_valid_percent: float | None = None
    max_error: float | None = None

    def __post_init__(self) -> None:
        """Check values up front: a typo must not become "no layers" after a download."""
        for name in ("min_dt_days", "max_dt_days"):
            v = getattr(self, name)
            if v is not None and not (0 <= v <= 3653):
                raise InputError(
                    f"{name} {v:g} is out of range; give days from 0 to 3653", params=name
                )
        if (
            self.min_dt_days is not None
            and self.max_dt_days is not None
            and self.min_dt_days > self.max_dt_days
        ):
            raise InputError(
                f"min_dt_days {self.min_dt_days:g} is above max_dt_days {self.max_dt_days:g}",
                params=("min_dt_days", "max_dt_days"),
            )
        if self.min_valid_percent is not None and not (0 <= self.min_valid_percent <= 100):
            raise InputError(
                f"min_valid_percent {self.min_valid_percent:g} is not a percentage; give 0 to 100",
                params="min_valid_percent",
            )
        if self.max_error is not None and not self.max_error > 0:
            raise InputError(f"max_error {self.max_error:g} must be > 0 m/yr", params="max_error")
        bad = [s for s in self.sensors if not SENSOR_LABEL.match(str(s).upper().replace("-", ""))]
        if bad:
            raise InputError(
                f"sensors {', '.join(map(str, bad))} is not a platform; use L (L4..L9), "
                "S1, S2 or a satellite such as S1A, S2B",
                params="sensors",
            )

    def active(self) -> bool:
        return any(v not in (None, ()) for v in dataclasses.astuple(self))

    def needed_variables(self) -> list[str]:
        need = []
        if self.min_dt_days is not None or self.max_dt_days is not None:
            need.append("date_dt")
        if self.sensors:
            need += ["mission_img1", "satellite_img1"]
        if self.min_valid_percent is not None:
            need.append("roi_valid_percentage")
        return need


def _as_text(values: np.ndarray) -> np.ndarray:
    return np.char.upper(np.asarray(values).astype(str))


def layer_mask(small: dict[str, np.ndarray], filters: Filters, n: int) -> np.ndarray:
    """Boolean mask of the ``n`` layers passing ``filters`` (per-layer arrays in ``small``)."""
    mask = np.ones(n, bool)
    if filters.min_dt_days is not None or filters.max_dt_days is not None:
        dt = np.asarray(small["date_dt"], dtype="f8")
        if filters.min_dt_days is not None:
            mask &= dt >= filters.min_dt_days
        if filters.max_dt_days is not None:
            mask &= dt <= filters.max_dt_days
    if filters.sensors:
        label = np.char.add(_as_text(small["mission_img1"]), _as_text(small["satellite_img1"]))
        keep = np.zeros(len(label), bool)
        for s in filters.sensors:
            keep |= np.char.startswith(label, s.upper().replace("-", ""))
        mask &= keep
    if filters.min_valid_percent is not None:
        mask &= np.asarray(small["roi_valid_percentage"]) >= filters.min_valid_percent
    return mask
