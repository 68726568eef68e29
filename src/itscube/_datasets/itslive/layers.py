"""The image pairs of a synthetic sub-yearly cube: acquisition dates, separations and platforms
(missions, satellites, sensors) as the archive mixes them."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

__all__ = [
    "Layers",
    "make_layers",
]


@dataclasses.dataclass
class Layers:
    """Per-layer (image-pair) metadata, in generation order (unsorted by design)."""

    img1: np.ndarray  # datetime64[ns]
    img2: np.ndarray
    mission: np.ndarray  # "L"/"S"
    satellite: np.ndarray  # "8", "9", "1A", "2B", ...
    sensor: np.ndarray  # "O", "C", "MSI"

    @property
    def dt_days(self) -> np.ndarray:
        return ((self.img2 - self.img1) / np.timedelta64(1, "D")).astype("f4")

    @property
    def date_center(self) -> np.ndarray:
        return self.img1 + (self.img2 - self.img1) / 2

    @property
    def mid_date(self) -> np.ndarray:
        """Centre date made unique by a microsecond token (YYMMDD of image 1), as ITS_LIVE."""
        centre = pd.DatetimeIndex(self.date_center).floor("s")
        token = pd.DatetimeIndex(self.img1).strftime("%y%m%d").astype(int)
        return (centre + pd.to_timedelta(np.asarray(token), unit="us")).values


_PLATFORMS = [  # mission, satellite, sensor, min dt, max dt, first year
    ("L", "8", "O", 16, 544, 2013),
    ("L", "9", "O", 16, 400, 2021),
    ("S", "2A", "MSI", 5, 365, 2015),
    ("S", "2B", "MSI", 5, 365, 2017),
    ("S", "1A", "C", 6, 48, 2014),
    ("S", "1B", "C", 6, 48, 2016),
]


def make_layers(n: int, start: str, end: str, seed: int = 0) -> Layers:
    """Draw ``n`` image pairs with varied sensors and time separations in [start, end].

    Pairs are unique in ``mid_date`` and returned in a shuffled (unsorted) order.
    """
    rng = np.random.default_rng(seed)
    t0 = np.datetime64(start, "s")
    t1 = np.datetime64(end, "s")
    rows: dict[np.datetime64, tuple] = {}
    while len(rows) < n:
        mission, sat, sensor, dmin, dmax, first = _PLATFORMS[rng.integers(len(_PLATFORMS))]
        dt = int(np.exp(rng.uniform(np.log(dmin), np.log(dmax))))
        lo = max(t0, np.datetime64(f"{first}-01-01", "s"))
        span = int((t1 - lo) / np.timedelta64(1, "s")) - dt * 86400
        if span <= 0:
            continue
        img1 = lo + np.timedelta64(int(rng.integers(span)), "s")
        img1 = img1.astype("datetime64[ms]") + np.timedelta64(int(rng.integers(1000)), "ms")
        img2 = img1 + np.timedelta64(dt * 86400, "s")
        layer = Layers(
            np.array([img1], "datetime64[ns]"),
            np.array([img2], "datetime64[ns]"),
            np.array([mission]),
            np.array([sat]),
            np.array([sensor]),
        )
        rows.setdefault(layer.mid_date[0], (img1, img2, mission, sat, sensor))
    vals = list(rows.values())
    order = rng.permutation(len(vals))
    cols = list(zip(*[vals[i] for i in order], strict=True))
    return Layers(
        np.array(cols[0], "datetime64[ns]"),
        np.array(cols[1], "datetime64[ns]"),
        np.array(cols[2]),
        np.array(cols[3]),
        np.array(cols[4]),
    )
