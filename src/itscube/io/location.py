"""Where outputs go: a local folder or a prefix on object storage (any fsspec URL:
``s3://bucket/prefix``, ``gs://``, ``az://``...), with the few operations a download needs.

On a local disk a folder is renamed into place (atomic); object storage has no rename, so
a finished store is moved object by object on the server (``fs.mv``: a server-side copy
on S3, no data through this process), and a download is complete only once its
``provenance.json`` exists (written last, one PUT, which is atomic).

Object storage is written with the credentials of the environment (``AWS_ACCESS_KEY_ID``,
an instance role, ``AWS_PROFILE``...) and the S3 endpoint of ``ITSCUBE_S3_ENDPOINT`` (or
``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL``) where set; ``storage_options`` add to them.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path
from typing import Any

import fsspec

from itscube.errors import InputError
from itscube.io import remote

__all__ = ["Location", "is_url", "write_options"]


def is_url(out: str | os.PathLike) -> bool:
    """True for an fsspec URL other than a local path (``s3://...``; not ``file://``)."""
    text = str(out)
    return "://" in text and remote.protocol_of(text) not in ("file", "local")


def write_options(url: str, extra: dict | None = None) -> dict:
    """fsspec options to write ``url``: the environment's credentials and S3 endpoint."""
    opts: dict[str, Any] = {}
    if remote.protocol_of(url) == "s3":
        endpoint = remote.s3_endpoint()
        if endpoint:
            opts["client_kwargs"] = {"endpoint_url": endpoint}
    opts.update(extra or {})
    return opts


@dataclasses.dataclass(frozen=True)
class Location:
    """A folder: ``url`` is a local path or an fsspec URL; ``options`` its fsspec options
    (writing). Picklable: cluster workers get the same location."""

    url: str
    options: dict | None = None

    @classmethod
    def of(cls, out: str | os.PathLike, options: dict | None = None) -> Location:
        text = str(out)
        if is_url(text):
            return cls(text.rstrip("/"), write_options(text, options))
        return cls(str(Path(text.removeprefix("file://"))))

    @property
    def local(self) -> bool:
        return not is_url(self.url)

    @property
    def fs(self) -> fsspec.AbstractFileSystem:
        if self.local:
            return fsspec.filesystem("file")
        # no listings cache: workers write objects this process has listed before
        opts = {"use_listings_cache": False, **(self.options or {})}
        return fsspec.filesystem(remote.protocol_of(self.url), **opts)

    @property
    def path(self) -> str:
        """The path in :attr:`fs` (the URL without its protocol)."""
        return self.url if self.local else self.fs._strip_protocol(self.url)

    @property
    def name(self) -> str:
        return self.url.rstrip("/").rsplit("/", 1)[-1]

    def __truediv__(self, name: str) -> Location:
        return dataclasses.replace(self, url=f"{self.url.rstrip('/')}/{name}")

    def __str__(self) -> str:
        return self.url

    def as_path(self) -> Path | str:
        """A :class:`pathlib.Path` on a local disk, else the URL."""
        return Path(self.url) if self.local else self.url

    def exists(self) -> bool:
        return self.fs.exists(self.path)

    def read_text(self) -> str:
        return self.fs.cat_file(self.path).decode()

    def write_text(self, text: str) -> None:
        """Write a small file whole: a temporary name renamed on a local disk, one PUT
        (atomic) on object storage."""
        if self.local:
            tmp = Path(self.url).with_name(f".{self.name}.tmp")
            tmp.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(text)
            tmp.replace(self.url)
        else:
            self.fs.pipe_file(self.path, text.encode())

    def touch(self) -> None:
        if self.local:
            Path(self.url).touch()
        else:
            self.fs.pipe_file(self.path, b"")

    def mkdir(self) -> None:
        """Make the folder (object storage has none: nothing to do there)."""
        if self.local:
            Path(self.url).mkdir(parents=True, exist_ok=True)

    def remove(self) -> None:
        """Remove the folder (or file) and everything under it; nothing if absent."""
        if self.local:
            p = Path(self.url)
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            elif p.exists():
                p.unlink()
        elif self.fs.exists(self.path):
            self.fs.rm(self.path, recursive=True)

    def move_to(self, target: Location) -> None:
        """Move this folder to ``target`` (replacing it): a rename on a local disk, a
        server-side move of every object on object storage."""
        target.remove()
        if self.local:
            Path(self.url).replace(target.url)
        else:
            fs, src, dst = self.fs, self.path.rstrip("/"), target.path.rstrip("/")
            files = fs.find(src)  # objects only: prefixes are not objects to copy
            fs.copy(files, [dst + f[len(src) :] for f in files])
            fs.rm(src, recursive=True)

    def zarr_store(self):
        """A zarr store of this folder (read and write)."""
        import zarr

        if self.local:
            return zarr.storage.LocalStore(self.url)
        return zarr.storage.FsspecStore.from_url(self.url, storage_options=self.options or {})

    def write_problem(self) -> str | None:
        """None if a marker can be written and removed here, else what went wrong."""
        mark = self / f".itscube-probe-{os.getpid()}"
        try:
            self.mkdir()
            mark.touch()
            mark.remove()
        except Exception as exc:  # any backend's error: the message says which
            return f"{type(exc).__name__}: {exc}"
        return None

    def check_writable(self, what: str = "out") -> None:
        """Raise a one-line :class:`InputError` if :meth:`write_problem` finds one."""
        problem = self.write_problem()
        if problem:
            raise InputError(
                f"{what} {self.url} cannot be written ({problem}); check the path or bucket "
                "and the credentials",
                params=what,
            )
