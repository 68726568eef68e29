"""Pure numeric kernels on arrays (numba/numpy): no xarray, no I/O, nothing from itscube."""

__all__: list[str] = []
