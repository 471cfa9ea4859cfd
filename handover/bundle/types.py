"""The seams of the bundle layer: where tar streams come from, where bundle files go.

Connectors implement these protocols (local disk, SSH, S3); the bundle
writer and reader only ever see them, so one code path seals a local
folder, a remote tree or a bucket, and delivers to a folder or to S3.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager
from typing import BinaryIO, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict


class MemberRecord(BaseModel):
    """One member of a volume (file, directory, link...), as recorded in MANIFEST.json.

    `path` is the path `tar -x` creates (no leading '/'); `link` is the target
    of a symlink or hard link.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str
    type: str = "file"  # file | dir | symlink | hardlink | char | block | fifo
    size: int
    sha256: str | None = None  # None for directories
    mode: int
    mtime: float
    link: str | None = None  # symlink / hardlink target
    extra: dict[str, str] = {}  # source-specific facts: S3 ETag, last-modified, version id


@runtime_checkable
class VolumeSource(Protocol):
    """One dataset, produced as a POSIX/GNU tar byte stream.

    `open_tar()` yields a readable stream of tar bytes. Leaving the context
    after the stream is drained checks how the producer ended (remote exit
    status, subprocess return code, download errors) and raises
    ConnectorError if it failed, so a partial stream never passes for whole.
    """

    @property
    def label(self) -> str:
        """Slug used in the volume file name: `<host>-<dataset>`."""
        ...

    @property
    def origin(self) -> str:
        """Where the data comes from, for the manifest: `local:/srv/www`, `ssh://...`, `s3://...`."""
        ...

    def open_tar(self) -> AbstractContextManager[BinaryIO]: ...

    def member_extras(self) -> Mapping[str, dict[str, str]]:
        """Per-member facts known to the source (read after the stream ends); may be empty."""
        ...


class BundleTarget(Protocol):
    """Where the files of a bundle are written: a folder or an S3 prefix.

    `open_write(relpath)` yields a writable stream; the file becomes visible
    under its final name only when the block ends without error (rename, or
    multipart-upload completion); on error nothing is left that looks complete.
    """

    def open_write(self, relpath: str) -> AbstractContextManager[BinaryIO]: ...

    def exists(self, relpath: str) -> bool: ...

    def describe(self) -> str:
        """Human-readable location: a path or s3://bucket/prefix."""
        ...


class BundleSource(Protocol):
    """Where the files of a bundle are read from, for verify and open."""

    def list_files(self) -> Iterator[str]:
        """Every file's path relative to the bundle root, '/'-separated."""
        ...

    def open_read(self, relpath: str) -> AbstractContextManager[BinaryIO]: ...

    def describe(self) -> str: ...
