"""Remote access: fsspec filesystems for local paths, http(s) and anonymous s3, with retries.

ITS_LIVE publishes its cubes in the public bucket ``its-live-data`` (us-west-2),
reachable anonymously as ``s3://its-live-data/...`` or over HTTPS as
``https://its-live-data.s3.amazonaws.com/...``. The catalog lists ``http://``
URLs; :func:`normalise_url` upgrades them to https.

Environment
-----------
``ITSCUBE_S3_ENDPOINT`` (or ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL``)
    An S3-compatible endpoint to use instead of AWS (tests use a local server).
``ITSCUBE_S3_ANON``
    ``1`` reads ``s3://`` anonymously, ``0`` with the environment's AWS credentials. By
    default reads are anonymous unless ``AWS_ACCESS_KEY_ID`` or ``AWS_PROFILE`` is set
    (then stores in private buckets, such as a cluster run's outputs, open too; public
    ITS_LIVE data reads either way).
``ITSCUBE_MIRRORS``
    URL prefixes to read from a mirror instead, as ``PREFIX=REPLACEMENT`` pairs separated
    by ``;`` (``https://its-live-data.s3.amazonaws.com=http://mirror.example/its-live-data``):
    a local copy or caching proxy of the bucket, or of a STAC API. Every URL itscube reads
    (catalogs, cubes, STAC searches) goes through :func:`normalise_url`, which applies them.
"""

from __future__ import annotations

import functools
import itertools
import os
import random
import time
from collections.abc import Callable
from typing import TypeVar

import fsspec

from itscube.errors import CubeNotFoundError, DownloadError, InputError
from itscube.options import get_options

__all__ = [
    "PERMANENT_TEXT",
    "T",
    "filesystem",
    "is_transient",
    "is_unreachable",
    "join",
    "mirrors",
    "next_delay",
    "normalise_url",
    "protocol_of",
    "read_bytes",
    "read_text_url",
    "retry",
    "s3_anonymous",
    "s3_endpoint",
    "storage_options_for",
]

T = TypeVar("T")


def mirrors() -> list[tuple[str, str]]:
    """The ``(prefix, replacement)`` pairs of ``ITSCUBE_MIRRORS`` (read now, not at import).

    Raises
    ------
    InputError
        A pair is not ``PREFIX=REPLACEMENT``.
    """
    pairs = []
    for item in os.environ.get("ITSCUBE_MIRRORS", "").split(";"):
        if not item.strip():
            continue
        prefix, sep, target = item.partition("=")
        if not sep or not prefix.strip() or not target.strip():
            raise InputError(
                f"ITSCUBE_MIRRORS entry {item!r} is not PREFIX=REPLACEMENT (pairs separated by ;)"
            )
        pairs.append((prefix.strip().rstrip("/"), target.strip().rstrip("/")))
    return pairs


def normalise_url(url: str) -> str:
    """Rewrite ITS_LIVE catalog URLs (``http://``) to ``https://``, then apply the mirrors
    of ``ITSCUBE_MIRRORS``; other URLs and paths are kept.

    >>> normalise_url("http://its-live-data.s3.amazonaws.com/datacubes/catalog_v02.json")
    'https://its-live-data.s3.amazonaws.com/datacubes/catalog_v02.json'
    """
    url = str(url)
    if url.startswith("http://its-live-data.s3"):
        url = "https://" + url[len("http://") :]
    for prefix, target in mirrors():
        if url == prefix or url.startswith(prefix + "/"):
            return target + url[len(prefix) :]
    return url


def protocol_of(url: str) -> str:
    """``"s3"``, ``"http"``/``"https"`` or ``"file"`` for a URL or path."""
    url = str(url)
    if "://" in url:
        return url.split("://", 1)[0]
    return "file"


def s3_endpoint() -> str | None:
    """S3 endpoint override from the environment (None = AWS)."""
    for key in ("ITSCUBE_S3_ENDPOINT", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"):
        if os.environ.get(key):
            return os.environ[key]
    return None


def s3_anonymous() -> bool:
    """Whether ``s3://`` is read anonymously (see ``ITSCUBE_S3_ANON`` above)."""
    flag = os.environ.get("ITSCUBE_S3_ANON")
    if flag in ("0", "1"):
        return flag == "1"
    return not (os.environ.get("AWS_ACCESS_KEY_ID") or os.environ.get("AWS_PROFILE"))


def storage_options_for(
    url: str, extra: dict | None = None, connections: int | None = None
) -> dict:
    """fsspec storage options for reading ``url`` (s3: anonymously by default).

    ``connections``: requests a reader keeps in flight (default: the ``concurrency``
    setting). s3fs's client holds botocore's 10 connections unless told otherwise, which
    would queue all but 10 of them; its pool is sized to this (``extra``'s
    ``config_kwargs`` win). Each object is read by one GET, without s3fs's HEAD first
    (``max_concurrency=1``; ``extra`` may set it). Over HTTP(S), a pool larger than
    aiohttp's 100 connections is given to the session when more are asked for.
    """
    proto = protocol_of(url)
    opts: dict = {}
    pool = connections or get_options()["concurrency"]
    if proto == "s3":
        opts["anon"] = s3_anonymous()
        endpoint = s3_endpoint()
        if endpoint:
            opts["client_kwargs"] = {"endpoint_url": endpoint}
        # s3fs (2025+) asks each whole-object read's size first (a HEAD, to split big
        # objects into parallel ranges): a second round trip per chunk, for chunks that
        # are far below its split size; one stream per object skips it
        opts["max_concurrency"] = 1
        opts["config_kwargs"] = {
            "max_pool_connections": pool,
            **(extra or {}).get("config_kwargs", {}),
        }
        extra = {k: v for k, v in (extra or {}).items() if k != "config_kwargs"}
    elif proto in ("http", "https"):
        # Each request gets a bounded time; retries are ours (see `retry`).
        import aiohttp

        opts["client_kwargs"] = {"timeout": aiohttp.ClientTimeout(total=60, sock_read=30)}
        if pool > _AIOHTTP_POOL:  # aiohttp's own pool would queue the requests past it
            opts["get_client"] = functools.partial(_pooled_client, limit=pool)
    opts.update(extra or {})
    return opts


_AIOHTTP_POOL = 100
"""Connections an aiohttp session holds by default (``TCPConnector(limit=100)``)."""


async def _pooled_client(limit: int, **kwargs):
    """An aiohttp session holding ``limit`` connections (fsspec's ``get_client``; the
    connector is made here, in the running loop, as aiohttp requires)."""
    import aiohttp

    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=limit), **kwargs)


def filesystem(
    url: str, storage_options: dict | None = None
) -> tuple[fsspec.AbstractFileSystem, str]:
    """Return ``(fs, root)`` for a store URL or local path."""
    url = normalise_url(url)
    proto = protocol_of(url)
    fs = fsspec.filesystem(proto, **storage_options_for(url, storage_options))
    root = url if proto in ("http", "https") else fs._strip_protocol(url)
    return fs, root.rstrip("/")


def join(root: str, *parts: str) -> str:
    return "/".join([root.rstrip("/"), *[p.strip("/") for p in parts]])


PERMANENT_TEXT = (
    "Name or service not known",
    "nodename nor servname",
    "No address associated with hostname",
    "getaddrinfo failed",
    "Temporary failure in name resolution",
    "Could not resolve host",
    "NoSuchBucket",
    "AccessDenied",
    "InvalidAccessKeyId",
)
"""Errors that no retry mends: unknown host names (DNS), missing buckets, refused access."""


def _chain(exc: BaseException, depth: int = 10) -> list[BaseException]:
    """``exc`` and the exceptions it was raised from (``__cause__``, ``__context__``)."""
    out: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and len(out) < depth and cur not in out:
        out.append(cur)
        cur = cur.__cause__ or cur.__context__
    return out


def is_unreachable(exc: BaseException) -> bool:
    """True when the host cannot be reached at all: unknown name (DNS) or no connection.

    >>> is_unreachable(OSError("[Errno -2] Name or service not known"))
    True
    >>> is_unreachable(FileNotFoundError("x.zarr/zarr.json"))
    False
    """
    for e in _chain(exc):
        name = type(e).__name__
        if "DNS" in name or "gaierror" in name or any(t in str(e) for t in PERMANENT_TEXT[:6]):
            return True
        if "EndpointConnectionError" in name or "ClientConnector" in name:
            return True
        if isinstance(e, ConnectionRefusedError):
            return True
    return False


def is_transient(exc: BaseException) -> bool:
    """True for errors worth retrying: timeouts, 5xx/429, dropped or refused connections.

    Never for what a retry cannot mend: 403/404, unknown host names (DNS), missing buckets.
    """
    if isinstance(exc, FileNotFoundError | PermissionError | IsADirectoryError):
        return False
    if any(
        "DNS" in type(e).__name__ or any(t in str(e) for t in PERMANENT_TEXT) for e in _chain(exc)
    ):
        return False
    status = getattr(exc, "status", None) or getattr(exc, "code", None)
    if isinstance(status, int):
        return status >= 500 or status in (408, 429)
    name = type(exc).__name__
    transient_names = (
        "Timeout",
        "ClientPayloadError",
        "ServerDisconnectedError",
        "ClientOSError",
        "ClientConnectorError",
        "ClientConnectionError",
        "ContentLengthError",
        "IncompleteRead",
        "ConnectionResetError",
        "ConnectionRefusedError",
        "BrokenPipeError",
        "EndpointConnectionError",
        "ReadTimeoutError",
        "ConnectTimeoutError",
        "ResponseStreamingError",
        "ProtocolError",
    )
    if any(t in name for t in transient_names):
        return True
    if isinstance(exc, TimeoutError | ConnectionError):
        return True
    text = str(exc)
    return any(
        s in text for s in ("503", "500", "502", "504", "Slow Down", "payload is not completed")
    )


def next_delay(
    attempt: int,
    exc: BaseException,
    what: str,
    *,
    retries: int | None = None,
    backoff: float | None = None,
) -> float:
    """Seconds to wait after failed ``attempt`` (1-based) of a transient error: exponential
    back-off with jitter, capped at 8 s. The ``retries`` and ``backoff`` settings
    (:func:`itscube.set_options`) are read now, so they can be tuned at run time.

    Raises
    ------
    DownloadError
        ``attempt`` was the last one, naming ``what`` and the error.
    """
    settings = get_options()
    retries = settings["retries"] if retries is None else retries
    backoff = settings["backoff"] if backoff is None else backoff
    if attempt >= retries:
        lines = str(exc).strip().splitlines()
        detail = lines[0].strip(" x|") if lines else ""
        raise DownloadError(
            f"giving up on {what} after {retries} attempts: {type(exc).__name__}: {detail}"
            " (check the network or try again later)"
        ) from exc
    return min(8.0, backoff * 2 ** (attempt - 1)) * (0.5 + random.random())


def retry(
    fn: Callable[[], T],
    what: str,
    *,
    retries: int | None = None,
    backoff: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call ``fn`` until it succeeds, retrying transient failures with exponential back-off
    (:func:`next_delay`).

    Raises
    ------
    DownloadError
        After the last failed attempt, naming ``what`` and the last error.
    """
    for attempt in itertools.count(1):
        try:
            return fn()
        except Exception as exc:
            if not is_transient(exc):
                raise
            sleep(next_delay(attempt, exc, what, retries=retries, backoff=backoff))
    raise AssertionError("unreachable")  # pragma: no cover


def read_bytes(fs: fsspec.AbstractFileSystem, path: str, what: str | None = None) -> bytes:
    """Read a whole object with retries; missing objects raise :class:`FileNotFoundError`."""
    return retry(lambda: fs.cat_file(path), what or path)


def read_text_url(url: str, storage_options: dict | None = None) -> bytes:
    """Read one file (catalog, JSON) from a URL or local path."""
    fs, root = filesystem(url, storage_options)
    try:
        return read_bytes(fs, root, url)
    except FileNotFoundError as exc:
        raise CubeNotFoundError(f"{url}: not found") from exc
