"""Figures of itscube products (matplotlib; the CLI selects the headless Agg backend, the
library leaves the backend alone so figures show inline in notebooks).

One module per product (:mod:`~itscube.products.figures.strain`, ``flux``, ``track``,
``series``, ``seasonal``, and ``overview`` for the demo) on the shared helpers of
:mod:`~itscube.products.figures.common` (map panels, backgrounds, saving), which this
package re-exports.
"""

from itscube.products.figures.common import (
    DPI,
    MOVING_M_YR,
    annual_steps,
    arrows,
    draw_background,
    extent_km,
    map_panel,
    save,
    symmetric_limit,
    year_spans,
)

__all__ = [
    "DPI",
    "MOVING_M_YR",
    "annual_steps",
    "arrows",
    "draw_background",
    "extent_km",
    "map_panel",
    "save",
    "symmetric_limit",
    "year_spans",
]
