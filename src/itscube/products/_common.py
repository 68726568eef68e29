"""What every product shares: the streamed date window, period means, summaries, folders."""

from __future__ import annotations

import dataclasses
import functools
import inspect
import os
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypedDict, TypeVar

import numpy as np
import shapely.geometry as sg
import xarray as xr

from itscube._typing import Estimator
from itscube._version import __version__
from itscube.cluster import connect, current_client
from itscube.errors import InputError, OutputExistsError
from itscube.grid import grid_bounds, grid_template, time_dim
from itscube.io.cube import open_cube
from itscube.io.files import date_label, write_json
from itscube.io.location import Location, is_url
from itscube.products._outputs import source_of
from itscube.progress import Progress, dask_tasks
from itscube.temporal import period_mean, select_layers
from itscube.window import DateLike, Filters

__all__ = [
    "BACKGROUND_WINDOW_DAYS",
    "MEMORY_BUDGET",
    "Product",
    "Summary",
    "Window",
    "as_upscales",
    "background_label",
    "close_product",
    "load_background",
    "on_cluster",
    "open_window",
    "period_means",
    "summary_head",
    "time_chunk",
]

MEMORY_BUDGET = 256 * 1024**2
"""Target bytes of one dask chunk's inputs and outputs in streamed per-step products."""


class Summary(TypedDict, total=False):
    """The keys every product's ``summary.json`` starts with (each product adds its own:
    upscale, method, statistics, flux totals, track counts...)."""

    product: str
    """``strain_rates``, ``flux_divergence``, ``tracks``, ``seasonal_cycle``, ``time_series``
    or ``image``."""
    itscube_version: str
    cube: str
    """The cube (path or URL) the product was made from."""
    source_data: Any
    """Where the cube's data came from (its ``source`` attribute or the URLs)."""
    crs: str
    window: dict[str, str]
    """``{"start": YYYYMMDD, "end": YYYYMMDD}``, the dates of the folder name."""
    estimator: str | None
    """``fit`` or ``pair-mean``: how the period means were made."""
    fit_fallback_pixels: dict[str, int]
    """Pixels where the span-aware fit fell back (``no_seasonal_term``, ``pair_mean``)."""
    seconds: float
    """Run time."""


@dataclasses.dataclass
class Product:
    """One output folder and what is in it: every ``run_*`` function returns this type (a
    list of them, one per upscale, for strain and flux).

    Attributes
    ----------
    folder : the product's folder (a path, or a URL on object storage).
    files : the files in it.
    summary : what ``summary.json`` holds: the common keys typed by :class:`Summary` (what
        :func:`summary_head` returns), then the product's own.
    """

    folder: Path | str
    files: list[Path | str]
    summary: dict[str, Any]


_R = TypeVar("_R")


def as_upscales(upscale: int | Sequence[int]) -> list[int]:
    """The upscales of a product run as a list: one ``k`` or several (at least one)."""
    ks = [upscale] if isinstance(upscale, int | np.integer) else list(upscale)
    if not ks:
        raise InputError("give at least one upscale", params="upscale")
    return [int(k) for k in ks]


def on_cluster(fn: Callable[..., _R]) -> Callable[..., _R]:
    """Give a product's ``run_*`` function the keywords ``scheduler`` (a dask.distributed
    scheduler address; default ``ITSCUBE_SCHEDULER`` or ``DASK_SCHEDULER_ADDRESS``) and
    ``client`` (a ``distributed.Client``): with either, the product runs on that cluster's
    workers (:mod:`itscube.cluster`); without, in this process."""

    @functools.wraps(fn)
    def run(*args, scheduler: str | None = None, client: Any = None, **kwargs) -> _R:
        with connect(scheduler, client):
            out = kwargs.get("out", ".")
            if not is_url(out):
                return fn(*args, **kwargs)
            return _to_object_storage(fn, args, kwargs, Location.of(out))

    sig = inspect.signature(fn)
    extra = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=ann)
        for name, ann in (("scheduler", "str | None"), ("client", "Any"))
    ]
    params = [*sig.parameters.values(), *extra]
    run.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
    run.__doc__ = (fn.__doc__ or "") + (
        "\n\n    With ``scheduler`` (an address) or ``client``, runs on a dask.distributed "
        "cluster\n    (:mod:`itscube.cluster`); the outputs are those of a local run. "
        "``out`` may be an\n    fsspec URL (``s3://bucket/prefix``): the product is made in "
        "a local staging folder,\n    then uploaded, ``summary.json`` last.\n"
    )
    return run


def _to_object_storage(fn, args, kwargs, top: Location):
    """Run a product into a local staging folder, then upload each product folder under
    ``top`` (its files first, ``summary.json`` last: a folder with one is complete)."""
    import tempfile

    top.check_writable()
    with tempfile.TemporaryDirectory(prefix="itscube-upload-") as stage:
        made = fn(*args, **{**kwargs, "out": stage})
        many = isinstance(made, list)
        uploaded = []
        for product in made if many else [made]:
            rel = product.folder.relative_to(stage).as_posix()
            target = top / rel
            if (target / "summary.json").exists() and not kwargs.get("overwrite", False):
                raise OutputExistsError(
                    f"{target} already exists; pass overwrite to replace it or choose another out",
                    params=("overwrite", "out"),
                )
            target.remove()
            files = sorted(product.folder.rglob("*"), key=lambda f: f.name == "summary.json")
            fs = target.fs
            for f in files:
                if f.is_file():
                    fs.put_file(str(f), (target / f.relative_to(product.folder).as_posix()).path)
            uploaded.append(
                dataclasses.replace(
                    product,
                    folder=target.url,
                    files=[str(target / f.relative_to(product.folder).as_posix()) for f in
                           product.files],
                )
            )  # fmt: skip
    return uploaded if many else uploaded[0]


def time_chunk(ny: int, nx: int, n_arrays: int, budget: int = MEMORY_BUDGET) -> int:
    """Layers per dask chunk so that ``n_arrays`` float32 maps of a chunk fit ``budget``."""
    return max(1, budget // max(1, ny * nx * 4 * n_arrays))


def open_window(
    cube,
    start: DateLike | None,
    end: DateLike | None,
    filters: Filters | None,
    n_arrays: int,
    budget: int = MEMORY_BUDGET,
    tiles: bool = False,
) -> xr.Dataset:
    """Open a cube lazily, chunked for streaming, restricted to the dates and filters.

    The dask chunks are whole maps of ``n`` layers. Stores chunked by time (a few layers
    per chunk) are read straight into them, with no rechunking (on a cluster a shuffle);
    stores whose chunks span more than ``n`` layers (ITS_LIVE's image pairs: 10 x 10 px
    by every layer) are read chunk by chunk and rechunked, so each is decoded once.
    With ``tiles``, a map whose one layer exceeds ``budget`` (a regional mosaic) comes in
    square tiles of one layer instead, for kernels that run on tiles with halos."""
    import dask

    whole = {"mid_date": -1, "time": -1, "y": -1, "x": -1}
    probe = open_cube(cube, chunks=whole)  # metadata only: one chunk per variable
    sizes = probe.sizes
    n = time_chunk(sizes["y"], sizes["x"], n_arrays, budget)
    side = {"y": -1, "x": -1}
    if tiles and sizes["y"] * sizes["x"] * 4 * n_arrays > budget:
        side = dict.fromkeys(("y", "x"), max(16, int((budget / (4 * n_arrays)) ** 0.5)))
    stored = probe["vx"].encoding.get("chunks") or (n,)
    if stored[0] > n:  # time-major chunks (ITS_LIVE's image pairs): each read once, then
        # rechunked to maps (reading n layers of them per map would decode them many times)
        ds = select_layers(open_cube(cube), start, end, filters)
        return ds.chunk({time_dim(ds): n, **side})
    with warnings.catch_warnings():  # chunks of n layers may split the store's time chunks
        warnings.filterwarnings("ignore", "The specified chunks separate", UserWarning)
        ds = open_cube(cube, chunks={"mid_date": n, "time": n, **side})
    ds = select_layers(ds, start, end, filters)
    with dask.config.set({"array.rechunk.method": "tasks"}):  # a merge along time only
        return ds.chunk({time_dim(ds): n})


@dataclasses.dataclass(frozen=True)
class Window:
    """The part of a cube a product works on: inclusive dates and layer filters."""

    start: DateLike | None = None
    end: DateLike | None = None
    filters: Filters | None = None
    estimator: Estimator = "auto"

    def open(self, cube, n_arrays: int, budget: int = MEMORY_BUDGET, tiles: bool = False):
        """The streamed window of ``cube`` (see :func:`open_window`), its time dim and its
        ``YYYYMMDD`` date labels (as asked, else as found in the cube)."""
        ds = open_window(cube, self.start, self.end, self.filters, n_arrays, budget, tiles)
        tdim = time_dim(ds)
        times = ds[tdim].values
        return (
            ds,
            tdim,
            date_label(self.start, times.min()),
            date_label(self.end, times.max(), end=True),
        )


def period_means(ds, period: str, window: Window, progress: Progress) -> xr.Dataset:
    """Period-mean velocity fields of the window, computed (with progress); on a cluster
    they stay there, in the workers' memory, tile by tile (a regional mosaic's maps are
    never gathered into this process unless a figure draws them)."""
    means = period_mean(ds, period, start=window.start, end=window.end, estimator=window.estimator)
    client = current_client()
    if client is not None:
        from distributed import wait

        means = means.persist()
        wait(means)
        return means
    with dask_tasks(progress, "period means"):
        return means.compute()


def summary_head(
    product: str, cube, ds: xr.Dataset, sdate: str, edate: str, means: xr.Dataset | None = None
) -> Summary:
    """The keys every product's ``summary.json`` starts with; with the period ``means``,
    the estimator that made them and the pixels where the fit fell back."""
    head: Summary = {
        "product": product,
        "itscube_version": __version__,
        "cube": str(cube),
        "source_data": source_of(ds),
        "crs": str(ds.rio.crs),
        "window": {"start": sdate, "end": edate},
    }
    if means is not None:
        head["estimator"] = means.attrs.get("itscube_estimator")
        if "fit_flag" in means:
            flags = means["fit_flag"].values
            head["fit_fallback_pixels"] = {
                "no_seasonal_term": int((flags == 1).sum()),
                "pair_mean": int((flags == 2).sum()),
            }
    return head


def close_product(
    folder: Path, tmp: Path, files: list[Path], summary: dict, t_start: float
) -> Product:
    """Write ``summary.json`` (with the ``seconds`` since ``t_start``) into the staged folder
    ``tmp``; the product as it will be once ``tmp`` is renamed to ``folder``."""
    summary["seconds"] = round(time.perf_counter() - t_start, 2)
    files.append(write_json(summary, tmp / "summary.json"))
    return Product(folder, [folder / f.relative_to(tmp) for f in files], summary)


BACKGROUND_WINDOW_DAYS = 120
"""How far from the date an ``auto`` background image may be (days): optical images need
daylight, so a winter start date takes the nearest clear spring or autumn scene."""


def load_background(
    spec: str | os.PathLike | None,
    ds: xr.Dataset,
    date: DateLike,
    *,
    stac: str | None = None,
    max_cloud: float = 20.0,
) -> xr.DataArray | None:
    """The image under a product's figures, on the cube grid: ``"auto"`` searches the STAC
    API (default Earth Search) for the clearest scene nearest ``date``
    (:mod:`itscube.io.imagery`), a path reads an RGB GeoTIFF; None draws no image.

    Raises
    ------
    InputError
        The file is missing or not a 3-band image.
    EmptySelectionError
        No clear scene near the date.
    """
    if spec is None:
        return None
    template = grid_template(ds)
    if str(spec) == "auto":
        from itscube.geometry import Area
        from itscube.io.imagery import pick_scene, read_rgb, search_scenes

        area = Area(sg.box(*grid_bounds(ds.x.values, ds.y.values)), ds.rio.crs, "cube")
        scenes = search_scenes(area, date, window_days=BACKGROUND_WINDOW_DAYS, stac=stac)
        scene = pick_scene(scenes, date, area, max_cloud)
        return read_rgb(scene, area, ds.rio.crs, like=template)
    import rioxarray
    from rasterio.enums import Resampling

    path = Path(spec)
    if not path.is_file():
        raise InputError(f"background {path}: file not found (or give auto)", params="background")
    img = rioxarray.open_rasterio(path)
    bands = img.sizes.get("band") if isinstance(img, xr.DataArray) else "several sets of"
    if not isinstance(img, xr.DataArray) or bands != 3:
        raise InputError(
            f"background {path} has {bands} band(s); give an RGB image",
            params="background",
        )
    return img.rio.reproject_match(template, resampling=Resampling.bilinear)


def background_label(image: xr.DataArray | None, spec) -> dict | None:
    """What a product's figures were drawn over, for its summary (scene, date, licence)."""
    if image is None:
        return None
    return {
        "requested": str(spec),
        "scene": image.attrs.get("scene"),
        "datetime": image.attrs.get("datetime"),
        "licence": image.attrs.get("licence"),
    }
