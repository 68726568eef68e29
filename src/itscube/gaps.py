"""Bounded gap filling of velocity maps (harmonic / Laplace inpainting), on xarray.

The kernel is :func:`itscube._kernels.gaps.fill_gaps_2d`: filled values solve Laplace's
equation with the surrounding valid pixels as boundary values, so any linear field is
reproduced exactly and nothing overshoots; gaps farther than ``radius`` pixels from data
stay NaN.
"""

from __future__ import annotations

import xarray as xr

from itscube._kernels.gaps import fill_gaps_2d, fill_stack

__all__ = ["fill_gaps", "fill_gaps_2d"]


def fill_gaps(da: xr.DataArray, radius: float) -> xr.DataArray:
    """Apply :func:`fill_gaps_2d` to every (y, x) map of ``da`` (lazy on dask arrays)."""
    if "y" in da.dims and da.chunks is not None:
        da = da.chunk({"y": -1, "x": -1})
    res = xr.apply_ufunc(
        fill_stack,
        da,
        input_core_dims=[["y", "x"]],
        output_core_dims=[["y", "x"]],
        kwargs={"radius": float(radius)},
        dask="parallelized",
        output_dtypes=[da.dtype],
        keep_attrs=True,
    )
    return res.transpose(*da.dims)
