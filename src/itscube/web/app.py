"""``itscube map``: a local web app to find cubes, pick points, see their velocity, run the
products and look at the results.

The server is the standard library's threading HTTP server; the page (Leaflet and uPlot,
shipped inside the package: no CDN) talks to a small JSON API that calls the library:

========================  ===========================================================
``GET /api/config``       layers of the cubes and product folders given, options
``GET /api/footprints``   cube footprints (catalog, STAC or the cubes given), GeoJSON
``GET /api/area``         cubes a box touches, the decoded size, the download command
``GET /api/series``       a point's velocity series (:func:`itscube.time_series`)
``GET /api/series.csv``   the same as the table ``itscube series`` writes
``GET /api/annual``       the point's annual composites (steps on the plot)
``GET /api/vector/ID``    a vector layer as lon/lat GeoJSON
``GET /tiles/ID/z/x/y``   a raster layer as a PNG map tile
``POST /api/upload``      keep a file for a job (thickness GeoTIFF, boundary)
``POST /api/jobs``        run a download, track, strain or qdiv; ``GET /api/jobs/ID`` polls
========================  ===========================================================

Security: the server binds 127.0.0.1; another host needs a token (printed in the URL,
kept in a cookie by the page), without which every request gets 403. Files are served
from the package's page folder and by layer id only: any other path is 404. Bad
parameters get a one-line message and status 400, never a traceback.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import secrets
import tempfile
import threading
import traceback
import uuid
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any, cast
from urllib.parse import parse_qs, unquote, urlsplit

from itscube._typing import Kind
from itscube.errors import InputError, ItscubeError
from itscube.progress import Progress
from itscube.web.layers import (
    Layer,
    colormap,
    cube_speed_layer,
    render_tile,
    scan_folder,
    vector_geojson,
)

__all__ = ["MapServer"]

STATIC = Path(str(resources.files("itscube") / "web" / "static"))
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".json": "application/json",
    ".txt": "text/plain; charset=utf-8",
}


class _BadRequest(Exception):
    """A request the API refuses with 400 (or another 4xx) and a one-line message."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class JobProgress(Progress):
    """Progress of one page job: the current task's counts and the last log line."""

    def __init__(self) -> None:
        super().__init__()
        self.task_name = ""
        self.total = 0
        self.message = ""

    @contextlib.contextmanager
    def task(self, description, total, *, detail="", keep=False, **fields):
        self.task_name, self.total = description, int(total)
        with super().task(description, total, detail=detail, keep=keep, **fields) as advance:
            yield advance

    def log(self, message: str) -> None:
        self.message = message

    def state(self) -> dict:
        done = self.done.get(self.task_name, 0)
        return {"task": self.task_name, "done": done, "total": self.total, "log": self.message}


@dataclasses.dataclass
class Job:
    id: str
    kind: str
    key: str
    command: str
    progress: JobProgress
    state: str = "running"
    error: str = ""
    folder: str = ""
    layers: list = dataclasses.field(default_factory=list)


class MapServer:
    """The map page's server.

    Parameters
    ----------
    sources : cubes (paths or URLs) and product folders to show.
    catalog, stac : where the page finds cube footprints and the archive's cubes.
    host, port : where to listen (port 0: any free port).
    token : required on every request when given (default: one is made for a host other
        than 127.0.0.1/localhost).
    out : parent folder of what the page's jobs write.
    basemap : an XYZ URL template of an online basemap (off by default: the page works
        with no network).
    start, end : the window of the cubes' speed layers.
    """

    height: int = 600
    """Height (px) of the frame of :meth:`_repr_html_` in a notebook."""

    def __init__(
        self,
        sources=(),
        *,
        catalog: str | None = None,
        stac: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str | None = None,
        out: str | Path = ".",
        basemap: str | None = None,
        start=None,
        end=None,
    ) -> None:
        local = host in ("127.0.0.1", "localhost", "::1")
        self.token = token or (None if local else secrets.token_urlsafe(16))
        self.catalog, self.stac, self.basemap = catalog, stac, basemap
        self.out = Path(out)
        self.start, self.end = start, end
        self._cache = Path(tempfile.mkdtemp(prefix="itscube-map-"))
        for name in ("viridis", "RdBu_r"):  # built once, before the threads share them
            colormap(name)
        self.layers: dict[str, Layer] = {}
        self.cubes: list[str] = []
        self.jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        for src in sources:
            self.add_source(str(src))
        self.httpd = _Server((host, port), _Handler, self)
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ sources

    def add_source(self, src: str) -> list[Layer]:
        """Add a cube (its median-speed layer) or a product folder (its files) to the map."""
        from itscube.io import remote

        path = Path(src)
        is_local = remote.protocol_of(src) == "file"
        if is_local and not path.exists():
            raise InputError(f"{src}: no such cube or folder", params="sources")
        if is_local and path.is_dir() and not _looks_like_cube(path):
            added = scan_folder(path)
        else:
            added = [cube_speed_layer(src, self.start, self.end, self._cache)]
            self.cubes.append(src)
        with self._lock:
            for layer in added:
                self.layers[layer.id] = layer
        return added

    # ------------------------------------------------------------------ running

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
        return f"http://{shown!s}:{port}/" + (f"?token={self.token}" if self.token else "")

    def start_background(self) -> MapServer:
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self.httpd.serve_forever()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _repr_html_(self) -> str:
        height = self.height
        return f'<iframe src="{self.url}" width="100%" height="{height}" style="border:0"></iframe>'

    def __enter__(self) -> MapServer:
        return self.start_background()

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ API

    def config(self) -> dict:
        from itscube._version import __version__

        with self._lock:
            layers = [lyr.to_json() for lyr in self.layers.values()]
        return {
            "version": __version__,
            "layers": layers,
            "cubes": list(self.cubes),
            "basemap": self.basemap,
            "catalog": self.catalog,
            "stac": self.stac,
        }

    def footprints(self) -> dict:
        feats = []
        if self.catalog or self.stac or not self.cubes:
            feats = _catalog_features(self.catalog, self.stac)
        for cube in self.cubes:
            feats.append(_cube_feature(cube))
        return {"type": "FeatureCollection", "features": feats}

    def area_info(self, q: dict) -> dict:
        from itscube.geometry import bbox_area

        w, s, e, n = _floats(q, "bbox", 4)
        area = bbox_area(w, s, e, n)
        entries = self._entries(area)
        start, end = q.get("start"), q.get("end")
        cmd = ["itscube", "download", "--bbox", *(f"{v:.5f}" for v in (w, s, e, n))]
        cmd += _window_args(start, end, q)
        if self.catalog:
            cmd += ["--catalog", self.catalog]
        elif self.stac:
            cmd += ["--stac", self.stac]
        cubes = [
            {"url": c.zarr_url, "epsg": c.epsg, "id": c.cube_id or Path(c.zarr_url).name}
            for c in entries
        ]
        size = _decoded_size(entries, area, start, end)
        return {"cubes": cubes, "command": " ".join(cmd), "decoded_gb": size}

    def _entries(self, area) -> list:
        from itscube.errors import CubeNotFoundError
        from itscube.io.catalog import find_cubes, find_cubes_stac

        try:
            if self.stac:
                return find_cubes_stac(area, self.stac)
            return find_cubes(area, self.catalog)
        except CubeNotFoundError:
            return []

    def series(self, q: dict, kind: str = "subyearly"):
        from itscube.geometry import point_targets
        from itscube.series import time_series
        from itscube.window import Filters

        lon, lat = _floats(q, "lon", 1)[0], _floats(q, "lat", 1)[0]
        filters: Filters | None = Filters(
            _opt_float(q, "min_dt"), _opt_float(q, "max_dt"), tuple(_list(q, "sensors"))
        )
        cube = q.get("cube") or (self.cubes[0] if len(self.cubes) == 1 else None)
        if kind == "annual":  # the archive's composites (a cube of image pairs has none)
            cube, filters = None, None
        source: dict[str, Any] = {} if cube else {"catalog": self.catalog, "stac": self.stac}
        return time_series(
            point_targets([(lon, lat)]),
            cube,
            kind=None if cube else cast(Kind, kind),
            start=q.get("start") or None,
            end=q.get("end") or None,
            filters=filters,
            **source,
        )

    def annual_json(self, q: dict) -> dict:
        """The point's annual composites as steps: year starts, values and errors; or the
        reason there are none."""
        import numpy as np

        try:
            ds = self.series(q, "annual")
        except ItscubeError as exc:
            return {"note": f"no annual composites: {str(exc).splitlines()[0]}"}
        name = q.get("var") or "v"
        vals = ds[name].values[0]
        err_name = f"{name}_error"
        errs = ds[err_name].values[0] if err_name in ds else np.full_like(vals, np.nan)
        keep = np.isfinite(vals)
        return {
            "time": [str(t)[:10] for t in ds["time"].values[keep]],
            name: [float(v) for v in vals[keep]],
            f"{name}_error": [None if not np.isfinite(e) else float(e) for e in errs[keep]],
        }

    def series_json(self, q: dict) -> dict:
        import numpy as np

        from itscube.products.series import series_table

        table = series_table(self.series(q))
        tdim = "mid_date" if "mid_date" in table else "time"
        out: dict[str, Any] = {"time": [str(t)[:26] for t in table[tdim].to_numpy()]}
        for col in ("v", "vx", "vy", "v_error", "vx_error", "vy_error", "date_dt"):
            if col in table:
                vals = table[col].to_numpy(float)
                out[col] = [None if not np.isfinite(v) else float(v) for v in vals]
        if "satellite" in table:
            out["satellite"] = [str(s) for s in table["satellite"]]
        first = table.iloc[0] if len(table) else None
        if first is not None:
            out.update(x=float(first["x"]), y=float(first["y"]), id=str(first["id"]))
        return out

    def series_csv(self, q: dict) -> bytes:
        from itscube.products._outputs import csv_bytes
        from itscube.products.series import series_table

        return csv_bytes(series_table(self.series(q)))

    # ------------------------------------------------------------------ jobs

    def submit(self, body: dict) -> Job:
        kind = body.get("kind")
        if kind not in ("download", "track", "strain", "qdiv"):
            raise _BadRequest(f"job kind must be download, track, strain or qdiv; got {kind!r}")
        run, key, command = getattr(self, f"_plan_{kind}")(body)
        with self._lock:
            busy = [j for j in self.jobs.values() if j.state == "running" and j.key == key]
            if busy:
                raise _BadRequest(
                    f"a {kind} job writing the same folder is running ({busy[0].id}); wait "
                    "for it to finish",
                    HTTPStatus.CONFLICT,
                )
            job = Job(uuid.uuid4().hex[:10], kind, key, command, JobProgress())
            self.jobs[job.id] = job
        threading.Thread(target=self._run_job, args=(job, run), daemon=True).start()
        return job

    def _run_job(self, job: Job, run) -> None:
        try:
            folder, sources = run(job.progress)
            added = []
            for src in sources:
                added += self.add_source(str(src))
            job.folder, job.layers = str(folder), [lyr.to_json() for lyr in added]
            job.state = "done"
        except ItscubeError as exc:
            job.error, job.state = str(exc).splitlines()[0], "failed"
        except Exception as exc:  # reported in one line; the server goes on
            job.error = f"unexpected {type(exc).__name__}: {exc}"
            job.state = "failed"
            traceback.print_exc()

    def _plan_download(self, body: dict):
        from itscube.geometry import bbox_area
        from itscube.io.download import download, output_folder
        from itscube.window import date_window

        w, s, e, n = _floats(body, "bbox", 4)
        area = bbox_area(w, s, e, n)
        start, end = body.get("start") or None, body.get("end") or None
        t0, t1 = date_window(start, end)
        folder = output_folder(self.out, "subyearly", area, t0, t1, start, end)
        cmd = ["itscube", "download", "--bbox", *(f"{v:.5f}" for v in (w, s, e, n))]
        cmd += [*_window_args(start, end, body), "--out", str(self.out)]
        if self.catalog:
            cmd += ["--catalog", self.catalog]

        def run(progress):
            res = download(
                area, start=start, end=end, catalog=self.catalog, stac=self.stac,
                out=self.out, progress=progress,
            )  # fmt: skip
            return res.folder, [str(p) for p in res.stores]

        return run, f"download:{folder}", " ".join(cmd)

    def _plan_track(self, body: dict):
        from itscube.products.track import run_track
        from itscube.window import date_window

        cube = self._job_cube(body)
        points = body.get("points") or []
        if not points or not all(isinstance(p, list | tuple) and len(p) == 2 for p in points):
            raise _BadRequest("track needs points: a list of [lon, lat] pairs")
        start, end = body.get("start") or None, body.get("end") or None
        if start is None or end is None:
            raise _BadRequest("track needs a start and an end date")
        date_window(start, end)  # checks the dates as the command line does
        pts = [[float(a), float(b)] for a, b in points]
        cmd = ["itscube", "track", cube, *[f"--point {a} {b}" for a, b in pts[:1]]]
        cmd += ["--start", str(start), "--end", str(end), "--out", str(self.out)]

        def run(progress):
            del progress  # run_track reports no steps: the page shows "running"
            product = run_track(
                cube, seeds=pts, seeds_crs="EPSG:4326", start=start, end=end, out=self.out,
                overwrite=True,
            )  # fmt: skip
            return product.folder, [product.folder]

        return run, f"track:{cube}:{start}:{end}", " ".join(cmd)

    def _plan_strain(self, body: dict):
        from itscube.products.strain import run_strain
        from itscube.window import date_window

        cube = self._job_cube(body)
        start, end = body.get("start") or None, body.get("end") or None
        date_window(start, end)
        cmd = ["itscube", "strain", cube, *_window_args(start, end, {}), "--out", str(self.out)]

        def run(progress):
            (product,) = run_strain(
                cube, start=start, end=end, out=self.out, progress=progress, overwrite=True
            )
            return product.folder, [product.folder]

        return run, f"strain:{cube}:{start}:{end}", " ".join(cmd)

    def upload(self, name: str, data: bytes) -> str:
        """Keep an uploaded file (a thickness GeoTIFF, a boundary); returns its id."""
        suffix = Path(name).suffix.lower()
        if suffix not in _UPLOADS:
            raise _BadRequest(
                f"upload {name!r}: use one of {', '.join(sorted(_UPLOADS))}",
                HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
            )
        key = uuid.uuid4().hex[:12]
        folder = self._cache / "uploads" / key
        folder.mkdir(parents=True)
        (folder / f"upload{suffix}").write_bytes(data)
        return key

    def _uploaded(self, key, what: str) -> Path:
        folder = self._cache / "uploads" / str(key or "")
        files = list(folder.glob("upload.*")) if key and str(key).isalnum() else []
        if not files:
            raise _BadRequest(f"{what}: upload the file first (no upload {key!r})")
        return files[0]

    def _plan_qdiv(self, body: dict):
        from itscube.flux import read_boundary, read_thickness
        from itscube.io.cube import open_cube
        from itscube.products.flux import run_qdiv
        from itscube.window import date_window

        cube = self._job_cube(body)
        start, end = body.get("start") or None, body.get("end") or None
        date_window(start, end)
        thickness = self._uploaded(body.get("thickness"), "thickness")
        if body.get("boundary"):
            boundary, boundary_crs = self._uploaded(body["boundary"], "boundary"), None
        elif body.get("bbox"):  # the drawn box, in lon/lat
            w, s, e, n = _floats(body, "bbox", 4)
            boundary = thickness.with_name("box.csv")
            boundary.write_text(f"lon,lat\n{w},{s}\n{e},{s}\n{e},{n}\n{w},{n}\n")
            boundary_crs = "EPSG:4326"
        else:
            raise _BadRequest("qdiv needs a boundary: upload one, or draw a box")
        like = open_cube(cube)  # the same checks as the command line, before the job runs
        read_thickness(thickness, like)
        read_boundary(boundary, like, boundary_crs)
        cmd = ["itscube", "qdiv", cube, "--thickness", thickness.name, "--boundary",
               boundary.name, *_window_args(start, end, {}), "--out", str(self.out)]  # fmt: skip
        if boundary_crs:
            cmd += ["--boundary-crs", boundary_crs]

        def run(progress):
            (product,) = run_qdiv(
                cube, thickness=thickness, boundary=boundary, boundary_crs=boundary_crs,
                start=start, end=end, out=self.out, progress=progress, overwrite=True,
                allow_partial=bool(body.get("allow_partial")),
            )  # fmt: skip
            return product.folder, [product.folder]

        return run, f"qdiv:{cube}:{start}:{end}", " ".join(cmd)

    def _job_cube(self, body: dict) -> str:
        cube = body.get("cube") or (self.cubes[-1] if self.cubes else None)
        if cube is None:
            raise _BadRequest("no cube: download one first, or start itscube map with a CUBE")
        if cube not in self.cubes:
            raise _BadRequest(f"{cube} is not one of the map's cubes", HTTPStatus.NOT_FOUND)
        return cube


_UPLOADS = (".tif", ".tiff", ".csv", ".geojson", ".json", ".gpkg")


def _looks_like_cube(path: Path) -> bool:
    return path.suffix == ".zarr" or (path / ".zmetadata").exists() or (path / "zarr.json").exists()


def _catalog_features(catalog, stac) -> list[dict]:
    import shapely.geometry as sg

    from itscube.io.catalog import load_catalog

    if stac:
        return []
    cat = load_catalog(catalog)
    return [
        {
            "type": "Feature",
            "geometry": sg.mapping(e.footprint),
            "properties": {
                "id": e.cube_id or Path(e.zarr_url).name,
                "url": e.zarr_url,
                "epsg": e.epsg,
                "granule_count": e.granule_count,
            },
        }
        for e in cat.entries
    ]


def _cube_feature(cube: str) -> dict:
    from itscube.geometry import footprint_rings
    from itscube.io.cube import open_cube

    ds = open_cube(cube, require=())
    _, ring = footprint_rings(ds.rio.crs.to_epsg(), ds.x.values, ds.y.values)
    return {
        "type": "Feature",
        "geometry": {"type": "Polygon", "coordinates": [ring]},
        "properties": {
            "id": Path(cube.rstrip("/")).name,
            "url": cube,
            "epsg": ds.rio.crs.to_epsg(),
        },
    }


def _decoded_size(entries, area, start, end) -> float | None:
    """Decoded GB of vx, vy, v, v_error over ``area`` for every layer (an upper bound: the
    window's share of layers is not known without reading the cube)."""
    if not entries:
        return None
    total = 0.0
    for e in entries:
        box = area.in_crs(e.epsg).intersection(e.footprint_proj or area.in_crs(e.epsg))
        px = box.area / 120.0**2
        total += px * (e.granule_count or 0) * 4 * 2 / 1e9
    return round(total, 3)


def _window_args(start, end, q: dict) -> list[str]:
    out = []
    if start:
        out += ["--start", str(start)]
    if end:
        out += ["--end", str(end)]
    if q.get("min_dt"):
        out += ["--min-dt-days", str(q["min_dt"])]
    if q.get("max_dt"):
        out += ["--max-dt-days", str(q["max_dt"])]
    return out


def _floats(q: dict, name: str, n: int) -> list[float]:
    raw = q.get(name)
    values = raw if isinstance(raw, list) else str(raw or "").split(",")
    try:
        out = [float(v) for v in values if str(v).strip() != ""]
    except ValueError:
        raise _BadRequest(f"{name} must be {n} number(s); got {raw!r}") from None
    if len(out) != n:
        raise _BadRequest(f"{name} must be {n} number(s); got {raw!r}")
    return out


def _opt_float(q: dict, name: str) -> float | None:
    return _floats(q, name, 1)[0] if q.get(name) not in (None, "") else None


def _list(q: dict, name: str) -> list[str]:
    return [s.strip() for s in str(q.get(name) or "").split(",") if s.strip()]


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address, handler, app: MapServer) -> None:
        self.app = app
        super().__init__(address, handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # quiet: the terminal shows the URL only
        return

    # ------------------------------------------------------------------ plumbing

    def _send(self, status: int, body: bytes, ctype: str, extra: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, payload, status: int = 200, extra: dict | None = None) -> None:
        body = json.dumps(payload, default=str).encode()
        self._send(status, body, "application/json", extra)

    def _error(self, status: int, message: str) -> None:
        self._json({"error": message}, status)

    def _authorised(self, query: dict) -> bool:
        token = self.server.app.token
        if token is None:
            return True
        cookie = self.headers.get("Cookie", "")
        given = query.get("token") or self.headers.get("X-Itscube-Token")
        jar = dict(c.strip().split("=", 1) for c in cookie.split(";") if "=" in c)
        return secrets.compare_digest(str(given or jar.get("itscube_token", "")), token)

    def do_GET(self):
        self._dispatch()

    def do_HEAD(self):
        self._dispatch()

    def do_POST(self):
        self._dispatch()

    def _dispatch(self) -> None:
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        if not self._authorised(query):
            self._error(HTTPStatus.FORBIDDEN, "a token is needed: open the URL itscube printed")
            return
        try:
            self._route(unquote(parts.path), query)
        except _BadRequest as exc:
            self._error(exc.status, str(exc))
        except ItscubeError as exc:
            self._error(HTTPStatus.BAD_REQUEST, str(exc).splitlines()[0])
        except (BrokenPipeError, ConnectionResetError):
            pass
        except Exception as exc:  # one line to the page, the details to the terminal
            traceback.print_exc()
            self._error(HTTPStatus.INTERNAL_SERVER_ERROR, f"{type(exc).__name__}: {exc}")

    def _route(self, path: str, q: dict) -> None:
        app = self.server.app
        if path in ("/", "/index.html"):
            extra = {}
            if app.token and q.get("token") == app.token:
                extra["Set-Cookie"] = f"itscube_token={app.token}; Path=/; SameSite=Strict"
            self._send(200, (STATIC / "index.html").read_bytes(), _TYPES[".html"], extra)
        elif path == "/favicon.ico":
            self._send(HTTPStatus.NO_CONTENT, b"", "image/x-icon")
        elif path.startswith("/static/"):
            self._static(path[len("/static/") :])
        elif path == "/api/config":
            self._json(app.config())
        elif path == "/api/footprints":
            self._json(app.footprints())
        elif path == "/api/area":
            self._json(app.area_info(q))
        elif path == "/api/series":
            self._json(app.series_json(q))
        elif path == "/api/annual":
            self._json(app.annual_json(q))
        elif path == "/api/series.csv":
            name = f"series_{q.get('lon', '')}_{q.get('lat', '')}.csv"
            disposition = {"Content-Disposition": f'attachment; filename="{name}"'}
            self._send(200, app.series_csv(q), "text/csv; charset=utf-8", disposition)
        elif path.startswith("/api/vector/"):
            layer = app.layers.get(path.rsplit("/", 1)[-1])
            if layer is None or layer.kind != "vector":
                raise _BadRequest("no such vector layer", HTTPStatus.NOT_FOUND)
            self._json(vector_geojson(layer.path, layer.sublayer))
        elif path.startswith("/tiles/"):
            self._tile(path)
        elif path == "/api/upload" and self.command == "POST":
            name = q.get("name") or ""
            data = self._raw_body(200_000_000)
            self._json({"id": app.upload(name, data)}, HTTPStatus.CREATED)
        elif path == "/api/jobs" and self.command == "POST":
            self._json(_job_json(app.submit(self._body())), HTTPStatus.ACCEPTED)
        elif path.startswith("/api/jobs/"):
            job = app.jobs.get(path.rsplit("/", 1)[-1])
            if job is None:
                raise _BadRequest("no such job", HTTPStatus.NOT_FOUND)
            self._json(_job_json(job))
        else:
            self._error(HTTPStatus.NOT_FOUND, "not found")

    def _raw_body(self, limit: int) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        if n > limit:
            raise _BadRequest("request body too large", HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
        return self.rfile.read(n)

    def _body(self) -> dict:
        raw = self._raw_body(1_000_000)
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError as exc:
            raise _BadRequest(f"the request body is not JSON ({exc.msg})") from None
        if not isinstance(body, dict):
            raise _BadRequest("the request body must be a JSON object")
        return body

    def _static(self, rel: str) -> None:
        root = STATIC.resolve()
        target = (root / rel).resolve()
        if not target.is_relative_to(root) or not target.is_file() or target.is_symlink():
            self._error(HTTPStatus.NOT_FOUND, "not found")
            return
        ctype = _TYPES.get(target.suffix, "application/octet-stream")
        self._send(200, target.read_bytes(), ctype)

    def _tile(self, path: str) -> None:
        parts = path.strip("/").split("/")
        if len(parts) != 5 or not parts[4].endswith(".png"):
            raise _BadRequest("tile URLs are /tiles/LAYER/Z/X/Y.png", HTTPStatus.NOT_FOUND)
        layer = self.server.app.layers.get(parts[1])
        if layer is None or layer.kind != "raster":
            raise _BadRequest("no such raster layer", HTTPStatus.NOT_FOUND)
        try:
            z, x, y = int(parts[2]), int(parts[3]), int(parts[4][:-4])
        except ValueError:
            raise _BadRequest("tile z, x, y must be integers", HTTPStatus.NOT_FOUND) from None
        png = render_tile(layer, z, x, y)
        if png is None:
            self._send(HTTPStatus.NO_CONTENT, b"", "image/png")
        else:
            self._send(200, png, "image/png")


def _job_json(job: Job) -> dict:
    return {
        "id": job.id,
        "kind": job.kind,
        "state": job.state,
        "error": job.error,
        "command": job.command,
        "progress": job.progress.state(),
        "folder": job.folder,
        "layers": job.layers,
    }
