"""Option blocks declared once (typer ``Annotated`` types) and their parsing into the
library's objects: areas, seeds, series targets, upscales."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from itscube.errors import InputError

__all__ = [
    "BackgroundOpt",
    "BackgroundStacOpt",
    "BboxOpt",
    "BufferOpt",
    "CatalogOpt",
    "CrsOpt",
    "EndOpt",
    "ErrorCorrelationOpt",
    "ErrorOffsetOpt",
    "EstimatorOpt",
    "FiguresOpt",
    "GapRadiusOpt",
    "MaxDtOpt",
    "MaxErrorOpt",
    "MinDtOpt",
    "OverwriteOpt",
    "PeriodOpt",
    "PointOpt",
    "PolygonOpt",
    "ProgressOpt",
    "SchedulerOpt",
    "SensorOpt",
    "StacOpt",
    "StartOpt",
    "TrackGapRadiusOpt",
    "area_from_options",
    "filters_from_options",
    "pair_crs",
    "parse_upscales",
    "seeds_from_options",
    "split_names",
    "targets_from_options",
]

if TYPE_CHECKING:  # pragma: no cover
    from itscube.geometry import Area


PointOpt = Annotated[
    tuple[float, float] | None,
    typer.Option("--point", help="A point: LON LAT (or X Y with --crs).", metavar="LON LAT"),
]


BboxOpt = Annotated[
    tuple[float, float, float, float] | None,
    typer.Option(
        "--bbox", help="A box: W S E N in lon/lat (or metres with --crs).", metavar="W S E N"
    ),
]


PolygonOpt = Annotated[
    Path | None,
    typer.Option(
        "--polygon", help="A polygon: GeoJSON file, or CSV of vertices (x,y or lon,lat columns)."
    ),
]


CrsOpt = Annotated[
    str | None,
    typer.Option("--crs", help="CRS of the coordinates given (e.g. EPSG:3413); default lon/lat."),
]


BufferOpt = Annotated[
    float, typer.Option("--buffer", help="Half-width (m) of the square around --point.", min=0)
]


CatalogOpt = Annotated[
    str | None,
    typer.Option(
        "--catalog",
        help="Catalog URL or path: catalog_v02.json or the chunk-aligned (v2.2) catalog "
        "(default: ITSCUBE_CATALOG or the official ITS_LIVE catalog).",
    ),
]


MinDtOpt = Annotated[
    float | None,
    typer.Option("--min-dt-days", help="Minimum image-pair separation (days), e.g. 10."),
]


MaxDtOpt = Annotated[
    float | None,
    typer.Option("--max-dt-days", help="Maximum image-pair separation (days), e.g. 120."),
]


StacOpt = Annotated[
    str | None,
    typer.Option(
        "--stac",
        help="Find cubes through a STAC API instead of a catalog (collection itslive-cubes); "
        "'itslive' = https://stac.itslive.cloud.",
        metavar="URL",
    ),
]


MaxErrorOpt = Annotated[
    float | None,
    typer.Option(
        "--max-error", help="Drop data whose velocity error is above this (m/yr), e.g. 50."
    ),
]


SensorOpt = Annotated[
    list[str] | None,
    typer.Option("--sensor", help="Platforms to keep: L (Landsat), L8, S1, S2, S2A... e.g. L8,S2."),
]


OverwriteOpt = Annotated[bool, typer.Option("--overwrite", help="Replace existing output folders.")]


ProgressOpt = Annotated[
    bool, typer.Option("--progress/--no-progress", help="Show progress bars (on stderr).")
]


GapRadiusOpt = Annotated[
    float | None,
    typer.Option(
        "--gap-radius",
        help="Fill gaps within this many pixels of data first (harmonic inpainting), e.g. 3 "
        "(0 = off, the default).",
        min=0,
    ),
]


TrackGapRadiusOpt = Annotated[
    float,
    typer.Option(
        "--gap-radius",
        help="Fill gaps within this many pixels of data (harmonic inpainting; 0 = off).",
        min=0,
    ),
]


BackgroundOpt = Annotated[
    str | None,
    typer.Option(
        "--background",
        help="Draw the figures over an image: auto (the clearest Sentinel-2 scene nearest the "
        "start date, from --background-stac) or an RGB GeoTIFF.",
        metavar="auto|FILE",
    ),
]


BackgroundStacOpt = Annotated[
    str | None,
    typer.Option(
        "--background-stac",
        help="STAC API for --background auto (default Earth Search; 'planetary' for "
        "Microsoft Planetary Computer).",
        metavar="URL",
    ),
]


def area_from_options(point, bbox, polygon, crs, buffer) -> Area:
    from itscube.geometry import bbox_area, point_area
    from itscube.io.vector import polygon_area

    given = [o is not None for o in (point, bbox, polygon)]
    if sum(given) != 1:
        raise InputError("give exactly one of --point, --bbox or --polygon")
    if point is not None:
        return point_area(point[0], point[1], crs, buffer)
    if bbox is not None:
        west, south, east, north = bbox
        return bbox_area(west, south, east, north, crs=crs)
    return polygon_area(polygon, crs)


def split_names(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    return [v.strip() for item in values for v in item.split(",") if v.strip()]


def filters_from_options(
    min_dt_days: float | None,
    max_dt_days: float | None,
    sensor: list[str] | None,
    min_valid: float | None = None,
    max_error: float | None = None,
):
    """The layer filters of ``--min-dt-days``, ``--max-dt-days``, ``--sensor`` (names, comma
    separated or repeated), ``--min-valid`` and ``--max-error``."""
    from itscube.window import Filters

    sensors = tuple(split_names(sensor) or ())
    return Filters(min_dt_days, max_dt_days, sensors, min_valid, max_error)


SchedulerOpt = Annotated[
    str | None,
    typer.Option(
        "--scheduler",
        help="Run on a dask.distributed cluster: its scheduler address (default: "
        "ITSCUBE_SCHEDULER or DASK_SCHEDULER_ADDRESS; none: this machine).",
    ),
]


def parse_upscales(ctx: typer.Context, values: list[str] | None) -> list[int]:
    """``--upscale 1 2 4``, ``--upscale 1,2,4`` or repeated ``--upscale``: whole pixels."""
    tokens = [t for v in (values or ["1"]) for t in v.replace(",", " ").split()]
    tokens += list(ctx.args)  # the values after the first one of ``--upscale 1 2 4``
    out = []
    for t in tokens:
        try:
            out.append(int(t))
        except ValueError:
            raise InputError(
                f"--upscale takes whole numbers of pixels (e.g. --upscale 1 2 4); got {t!r}"
            ) from None
    return out


StartOpt = Annotated[str | None, typer.Option("--start", help="First date (YYYY-MM-DD).")]


EndOpt = Annotated[str | None, typer.Option("--end", help="Last date, inclusive (YYYY-MM-DD).")]


PeriodOpt = Annotated[
    str,
    typer.Option(
        "--period",
        help="Average velocities over: all (the window), year, season (DJF/MAM/JJA/SON), "
        "month, or a pandas frequency such as 6MS.",
    ),
]


EstimatorOpt = Annotated[
    str,
    typer.Option(
        "--estimator",
        help="Period means from: auto (the span-aware fit of annual means and seasonal cycle "
        "where the layers are image pairs), fit, or pair-mean (the inverse-variance mean of "
        "the layers in each period; biased toward summer where speed peaks then).",
    ),
]


ErrorOffsetOpt = Annotated[
    float,
    typer.Option(
        "--error-offset",
        help="Error model: share of each pair's velocity error that is one offset over the "
        "whole map (0..1; README, Uncertainties).",
        min=0.0,
        max=1.0,
    ),
]


ErrorCorrelationOpt = Annotated[
    float,
    typer.Option(
        "--error-correlation",
        help="Error model: correlation length of the velocity pixel noise (m; about the "
        "feature-tracking chip; 0 = independent pixels).",
        min=0.0,
    ),
]


FiguresOpt = Annotated[bool, typer.Option("--figures/--no-figures", help="Write PNG figures.")]


def seeds_from_options(seeds, point, line, grid, crs):
    """The seeds and their CRS: ``--point``/``--line`` are LON LAT unless ``--crs`` (None:
    the cube's CRS, the deprecated form of track's old ``--point X Y``)."""
    given = [o is not None for o in (seeds, point, line)]
    if sum(given) > 1 or (sum(given) == 0 and grid is None):
        raise InputError(
            "give exactly one of --seeds, --point or --line, and/or --grid for a displacement map"
        )
    if point is not None:
        return [list(point)], pair_crs([point], crs, "--point LON LAT")
    if line is not None:
        x0, y0, x1, y1, n = line
        if int(n) != n or n < 2:
            raise InputError(f"--line needs N >= 2 points as its last value; got {n}")
        crs = pair_crs([(x0, y0), (x1, y1)], crs, "--line LON0 LAT0 LON1 LAT1 N")
        if crs == "EPSG:4326":  # evenly spaced along the geodesic
            import pyproj

            mid = pyproj.Geod(ellps="WGS84").npts(x0, y0, x1, y1, int(n) - 2)
            return [[x0, y0], *[list(p) for p in mid], [x1, y1]], crs
        t = [i / (int(n) - 1) for i in range(int(n))]
        return [[x0 + (x1 - x0) * f, y0 + (y1 - y0) * f] for f in t], crs
    if seeds is not None:
        if not seeds.is_file():
            raise InputError(f"--seeds {seeds}: file not found")
        return seeds, crs
    return None, crs


def pair_crs(pairs, crs: str | None, form: str) -> str | None:
    """``crs`` if given; lon/lat when every pair reads as degrees; else None (metres in the
    cube's CRS: the form before 0.9, kept for one release with a deprecation warning)."""
    if crs is not None:
        return crs
    if all(abs(a) <= 180 and abs(b) <= 90 for a, b in pairs):
        return "EPSG:4326"
    import warnings

    warnings.warn(
        f"coordinates in metres without --crs are taken in the cube's CRS; this form is "
        f"deprecated and will be removed: give {form}, or add --crs EPSG:XXXX",
        FutureWarning,
        stacklevel=2,
    )
    return None


def targets_from_options(point, points, profile, profile_file, spacing, polygon, crs):
    from itscube.geometry import point_targets, profile_targets
    from itscube.series import line_from_file, points_from_file, polygon_target

    given = [bool(point), points is not None, profile is not None, profile_file is not None]
    given.append(polygon is not None)
    if sum(given) != 1:
        raise InputError(
            "give exactly one of --point (repeatable), --points, --profile, --profile-file or "
            "--polygon"
        )
    if point:
        pairs = []
        for text in point:
            try:
                x, y = (float(v) for v in text.split())
            except ValueError:
                raise InputError(f"--point {text!r}: give two numbers, LON LAT") from None
            pairs.append((x, y))
        return point_targets(pairs, crs)
    if points is not None:
        return points_from_file(points, crs)
    if profile is not None:
        return profile_targets(*profile, spacing=spacing, crs=crs)
    if profile_file is not None:
        return line_from_file(profile_file, spacing, crs)
    return polygon_target(polygon, crs)
