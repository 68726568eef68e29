"""A small object-store-like HTTP server for local folders, with fault injection.

It behaves like S3 over HTTPS as far as Zarr readers can tell: plain GET/HEAD
of objects, byte ranges, 404 for anything that is not a file and *no directory
listings* (so a store without consolidated metadata cannot be discovered, as on
the real service). Faults can be injected to test retries and resume:
added latency, a share of 500/503 answers, and connections dropped in the
middle of a body. It binds to 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import random
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

__all__ = [
    "Faults",
    "Stats",
    "StoreServer",
]


@dataclasses.dataclass
class Faults:
    """Fault injection settings (shares are probabilities per GET request).

    Attributes
    ----------
    latency : seconds added before every answer.
    error_rate : share of requests answered 500/503.
    drop_rate : share of requests whose connection is closed half-way through the body.
    seed : random seed (faults are reproducible).
    only_suffix : restrict faults to paths containing this text (e.g. chunk keys), '' = all.
    ignore_range : answer ranged requests 200 with the whole object, as
        ``python -m http.server`` and some proxies do.
    """

    latency: float = 0.0
    error_rate: float = 0.0
    drop_rate: float = 0.0
    seed: int = 0
    only_suffix: str = ""
    ignore_range: bool = False


@dataclasses.dataclass
class Stats:
    """Counters kept by the server."""

    requests: int = 0
    bytes_sent: int = 0
    errors_injected: int = 0
    drops_injected: int = 0
    not_found: int = 0
    paths: dict = dataclasses.field(default_factory=dict)

    def reset(self) -> None:
        self.requests = self.bytes_sent = self.errors_injected = self.drops_injected = 0
        self.not_found = 0
        self.paths = {}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _StoreHTTPServer

    def log_message(self, format, *args):
        return

    def _resolve(self) -> Path | None:
        path = unquote(urlsplit(self.path).path).lstrip("/")
        root = self.server.root
        target = (root / path).resolve()
        if root not in target.parents and target != root:
            return None
        return target if target.is_file() else None

    def _send_status(self, code: int, message: bytes = b"") -> None:
        self.send_response(code)
        self.send_header("Content-Length", str(len(message)))
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(message)

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        srv = self.server
        if srv.closed:  # a stopped server answers nothing, even on kept-alive connections
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        faults = srv.faults
        with srv.lock:
            srv.stats.requests += 1
            roll_err = srv.rng.random()
            roll_drop = srv.rng.random()
        applies = faults.only_suffix in self.path
        if faults.latency:
            time.sleep(faults.latency)
        target = self._resolve()
        if target is None:
            with srv.lock:
                srv.stats.not_found += 1
            self._send_status(404, b"NoSuchKey")
            return
        if applies and self.command == "GET" and roll_err < faults.error_rate:
            with srv.lock:
                srv.stats.errors_injected += 1
            self._send_status(503 if roll_err < faults.error_rate / 2 else 500, b"SlowDown")
            return
        data = target.read_bytes()
        start, end = 0, len(data)
        status = 200
        rng_header = self.headers.get("Range")
        if rng_header and rng_header.startswith("bytes=") and not faults.ignore_range:
            a, _, b = rng_header[6:].partition("-")
            if a == "":
                start = max(0, len(data) - int(b))
            else:
                start = int(a)
                end = min(len(data), int(b) + 1) if b else len(data)
            status = 206
        body = data[start:end]
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end - 1}/{len(data)}")
        self.end_headers()
        if self.command == "HEAD":
            return
        if applies and roll_drop < faults.drop_rate and len(body) > 1:
            half = body[: len(body) // 2]
            self.wfile.write(half)
            self.wfile.flush()
            with srv.lock:
                srv.stats.drops_injected += 1
                srv.stats.bytes_sent += len(half)
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(body)
        with srv.lock:
            srv.stats.bytes_sent += len(body)
            key = str(target.relative_to(srv.root))
            srv.stats.paths[key] = srv.stats.paths.get(key, 0) + len(body)


class _StoreHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, root: Path, faults: Faults, port: int = 0):
        super().__init__(("127.0.0.1", port), _Handler)
        self.root = root.resolve()
        self.faults = faults
        self.stats = Stats()
        self.lock = threading.Lock()
        self.rng = random.Random(faults.seed)
        self.closed = False

    def handle_error(self, request, client_address) -> None:
        """Clients that hang up (timeouts, cancelled reads, injected drops) are normal here."""
        import sys

        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)


class StoreServer:
    """Serve a folder over HTTP on 127.0.0.1 (a free port) in a background thread.

    Examples
    --------
    >>> import urllib.request
    >>> from itscube.sample import ensure_sample
    >>> sample = ensure_sample()
    >>> with StoreServer(sample.root, Faults(latency=0.01)) as srv:
    ...     request = urllib.request.Request(
    ...         f"{srv.url}/catalog_v02.json", headers={"Range": "bytes=0-9"})
    ...     with urllib.request.urlopen(request) as response:
    ...         print(response.status, len(response.read()))
    206 10
    """

    def __init__(
        self, root: str | os.PathLike, faults: Faults | None = None, port: int | None = None
    ):
        """``port``: try this port first (a free one if it is taken or None)."""
        try:
            self._server = _StoreHTTPServer(Path(root), faults or Faults(), port or 0)
        except OSError:
            if not port:
                raise
            self._server = _StoreHTTPServer(Path(root), faults or Faults(), 0)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def stats(self) -> Stats:
        return self._server.stats

    @property
    def faults(self) -> Faults:
        return self._server.faults

    def set_faults(self, faults: Faults) -> None:
        self._server.faults = faults
        self._server.rng = random.Random(faults.seed)

    def start(self) -> StoreServer:
        self._thread = threading.Thread(
            target=self._server.serve_forever, daemon=True, kwargs={"poll_interval": 0.05}
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.closed = True
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> StoreServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
