"""Test tooling: a local store server that honours HTTP Range requests and injects faults.

Used by the tests, the benchmarks and the bundled sample (which serves itself like the
ITS_LIVE bucket); never by the library's data path.
"""

from itscube.testing.server import Faults, Stats, StoreServer
from itscube.testing.stac import StacServer

__all__ = ["Faults", "StacServer", "Stats", "StoreServer"]
