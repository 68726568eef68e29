"""Icechunk repositories (local or ``s3://``, native or with virtual references into
granule NetCDF files): storage, read-only sessions, and a cube opened from one."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import zarr

from itscube.errors import CubeFormatError, CubeNotFoundError
from itscube.io import remote
from itscube.io.stores.arrays import SourceCube
from itscube.io.stores.caching import CachingStore, _first_line

__all__ = [
    "icechunk_storage",
    "is_icechunk",
    "open_icechunk_session",
]


def is_icechunk(url: str) -> bool:
    """True for Icechunk repositories: a name ending ``.icechunk``, or a local folder laid out
    as one (``config.yaml`` or ``repo`` beside ``snapshots/``)."""
    if url.rstrip("/").endswith(".icechunk"):
        return True
    if remote.protocol_of(url) == "file":
        p = Path(url)
        return (
            p.is_dir()
            and (p / "snapshots").is_dir()
            and ((p / "config.yaml").exists() or (p / "repo").exists())
        )
    return False


def _s3_location(url: str) -> tuple[str, str, str | None]:
    """(bucket, prefix, region) of an ``s3://`` URL or an S3 virtual-hosted HTTPS URL."""
    if url.startswith("s3://"):
        bucket, _, prefix = url[5:].partition("/")
        return bucket, prefix.rstrip("/"), None
    m = re.match(r"https?://([^./]+)\.s3(?:[.-]([a-z0-9-]+))?\.amazonaws\.com/(.+)", url)
    if m:
        region = m[2] if m[2] and m[2] != "dualstack" else None
        return m[1], m[3].rstrip("/"), region
    raise CubeFormatError(
        f"{url}: Icechunk repositories are read from s3:// URLs or local folders; "
        "give the s3:// URL of the repository"
    )


def icechunk_storage(url: str) -> Any:
    """An ``icechunk.Storage`` for a local folder or an anonymous S3 location.

    ``ITSCUBE_S3_ENDPOINT`` (or ``AWS_ENDPOINT_URL_S3``/``AWS_ENDPOINT_URL``) points it at
    an S3-compatible server instead of AWS, as for Zarr stores.
    """
    import icechunk

    if remote.protocol_of(url) == "file":
        p = Path(url)
        if not p.exists():
            raise CubeNotFoundError(f"{url}: no such folder")
        return icechunk.local_filesystem_storage(str(p.resolve()))
    bucket, prefix, region = _s3_location(url)
    endpoint = remote.s3_endpoint()
    return icechunk.s3_storage(
        bucket=bucket,
        prefix=prefix,
        region=region or ("us-east-1" if endpoint else "us-west-2"),
        endpoint_url=endpoint,
        allow_http=bool(endpoint and endpoint.startswith("http://")),
        anonymous=True,
        force_path_style=bool(endpoint),
    )


def _container_credentials(prefixes: Sequence[str]) -> dict:
    import icechunk

    creds: dict[str, Any] = {}
    for prefix in prefixes:
        creds[prefix] = icechunk.s3_anonymous_credentials() if prefix.startswith("s3") else None
    return icechunk.containers_credentials(creds)


def open_icechunk_session(url: str, branch: str = "main") -> Any:
    """A read-only Icechunk session on ``branch``, with every virtual chunk container the
    repository declares authorised for anonymous reads."""
    import icechunk

    icechunk.set_logs_filter("error")
    storage = icechunk_storage(url)
    try:
        config = icechunk.Repository.fetch_config(storage)
        prefixes = list((config.virtual_chunk_containers or {}).keys()) if config else []
        repo = icechunk.Repository.open(
            storage, authorize_virtual_chunk_access=_container_credentials(prefixes) or None
        )
        return repo.readonly_session(branch=branch)
    except icechunk.IcechunkError as exc:
        text = str(exc)
        if "not found" in text.lower() or "does not exist" in text.lower() or "NoSuchKey" in text:
            raise CubeNotFoundError(
                f"{url}: no Icechunk repository there ({_first_line(exc)}); check the URL"
            ) from exc
        raise CubeFormatError(
            f"{url}: cannot open the Icechunk repository ({_first_line(exc)})"
        ) from exc


def _open_icechunk(url: str, workers: int) -> SourceCube:
    session = open_icechunk_session(url)
    store = CachingStore(session.store, url, workers)
    try:
        group = zarr.open_group(session.store, mode="r")
    except Exception as exc:
        raise CubeFormatError(
            f"{url}: the Icechunk repository holds no Zarr group ({_first_line(exc)})"
        ) from exc
    snap = str(session.snapshot_id)
    return SourceCube(url, "icechunk", group, store, f"icechunk:{snap}", 0, snap)
