"""Collect the client's own documents at takeover, from the sources the playbook names.

The dossier d'exploitation, network diagrams, licences and third-party
contracts are the client's, and no inventory finds them: the playbook's
`documentation.sources` says where they are (a folder on a host, an S3
prefix, an export file beside the playbook). Each source is read as the
datasets are read (the same tar streams of `tree_source` and
`S3PrefixSource`), so a host folder is walked by the host's own `tar` and
never followed through a symbolic link, and every file is hashed as it
passes.

Documents are client data in the provider's hands: they are written under
the contract's `client_documents_dir` (a working copy the exit erases), one
folder per source, staged in a private folder and renamed into place only
when the whole source was read. Hostile input fails the source, by name:
member names are checked by the bundle's member policy (no absolute path,
no '..', no clash, bounded length), symbolic and hard links are skipped and
listed, never followed, and each source is bounded in bytes and files. A
source that is unreadable or holds no document fails too: an empty
dossier d'exploitation is a finding, not a success.

The index (`index.json`, written atomically) lists every document with its
source, path, size and SHA-256; the baseline report shows it and the exit
bundle carries the documents back.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import stat
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from pathlib import Path, PurePosixPath
from typing import IO, TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from handover.bundle.local import relative_member
from handover.bundle.pump import pump_tar
from handover.bundle.tarparse import MemberPolicy, TarParser, shown
from handover.errors import HandoverError
from handover.state.atomic import ensure_private_dir, write_atomic

if TYPE_CHECKING:
    from handover.bundle.types import VolumeSource
    from handover.connectors.base import HostConnector
    from handover.connectors.s3.client import S3SettingsLike
    from handover.contract.documentation import DocumentSource
    from handover.contract.playbook import Playbook

__all__ = [
    "INDEX_NAME",
    "ClientDocument",
    "ClientDocumentsIndex",
    "CollectedSource",
    "DocumentSourceFailed",
    "collect_client_documents",
    "collect_source",
    "document_files",
    "read_index",
    "write_index",
]

INDEX_NAME = "index.json"
_COPY_SIZE = 1 << 20
_STAGING = ".staging-"
_OLD = ".old-"


class DocumentSourceFailed(HandoverError):
    """A named source gave no document: unreadable, empty, hostile or over its limits."""


class ClientDocument(BaseModel):
    """One document collected: its source, its path in that source, size and SHA-256."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str
    name: str  # the path inside the source, '/'-separated
    path: str  # where it is kept, relative to the client documents folder: <source>/<name>
    size: int
    sha256: str


class CollectedSource(BaseModel):
    """What one source gave: its documents, what was skipped, or why it failed."""

    model_config = ConfigDict(extra="forbid")

    name: str
    kind: str
    origin: str
    description: str | None = None
    files: int = 0
    bytes: int = 0
    skipped: list[str] = []  # links and special members, named, never followed
    error: str | None = None


class ClientDocumentsIndex(BaseModel):
    """The index of the client's documents: per source, then every document."""

    model_config = ConfigDict(extra="forbid")

    sources: list[CollectedSource] = []
    documents: list[ClientDocument] = []

    @property
    def failures(self) -> list[str]:
        """One line per failed source, naming it."""
        return [f"{s.name}: {s.error}" for s in self.sources if s.error]


def read_index(folder: Path) -> ClientDocumentsIndex | None:
    """The index recorded in `folder`, or None when no collection ran (or it is unreadable)."""
    try:
        return ClientDocumentsIndex.model_validate_json((folder / INDEX_NAME).read_bytes())
    except (OSError, ValueError):
        return None


class _SourceWriter:
    """A TarParser extractor keeping the regular files under one named folder of a source.

    Paths reach it after the member policy (relative, no '..', no clash,
    nothing under a link), and only members under `strip` are kept, renamed
    relative to it. Links are listed in `skipped`, never created: nothing
    in the staging folder can lead out of it. Bytes and files are counted as
    they arrive, so a source beyond its limits stops at the first byte over.
    """

    def __init__(self, source: str, staging: Path, strip: str, max_bytes: int, max_files: int):
        self.source = source
        self.staging = staging
        self.strip = strip
        self.max_bytes = max_bytes
        self.max_files = max_files
        self.total = 0
        self.documents: list[ClientDocument] = []
        self.skipped: list[str] = []
        self._out: IO[bytes] | None = None
        self._current: tuple[str, Any] | None = None
        self._size = 0

    def _name(self, path: str) -> str | None:
        """The member's path inside the source, or None for the source folder itself."""
        key = "/".join(part for part in path.split("/") if part not in ("", "."))
        if not self.strip:
            return key or None
        if key == self.strip:
            return None
        if key.startswith(self.strip + "/"):
            return key[len(self.strip) + 1 :]
        raise DocumentSourceFailed(f"member {shown(path)} lies outside {self.strip!r}")

    def directory(self, path: str) -> None:
        self._name(path)  # folders are made with the files they hold

    def open_file(self, path: str, mode: int, mtime: float) -> Callable[[Any], Any]:
        name = self._name(path)
        if name is None:  # the named path is itself a file: keep it under its own name
            name = PurePosixPath(self.strip).name or "document"
        if len(self.documents) >= self.max_files:
            raise DocumentSourceFailed(f"more than {self.max_files} files (max_files)")
        target = self.staging.joinpath(*name.split("/"))
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        self._out = os.fdopen(os.open(target, flags, 0o600), "wb", buffering=_COPY_SIZE)
        self._current = (name, hashlib.sha256())
        self._size = 0
        return self._write

    def _write(self, view: Any) -> None:
        assert self._out is not None and self._current is not None
        length = len(view)
        self.total += length
        self._size += length
        if self.total > self.max_bytes:
            raise DocumentSourceFailed(f"more than {self.max_bytes} bytes (max_bytes)")
        self._current[1].update(view)
        self._out.write(view)

    def close_file(self) -> None:
        out, current = self._out, self._current
        self._out = self._current = None
        if out is None or current is None:
            return
        out.flush()
        os.fsync(out.fileno())
        out.close()
        name, hasher = current
        self.documents.append(
            ClientDocument(
                source=self.source,
                name=name,
                path=f"{self.source}/{name}",
                size=self._size,
                sha256=hasher.hexdigest(),
            )
        )

    def symlink(self, path: str, target: str) -> None:
        self.skipped.append(f"{self._name(path) or path} (symbolic link, not followed)")

    def hardlink(self, path: str, target: str) -> None:
        self.skipped.append(f"{self._name(path) or path} (hard link, not followed)")

    def abort(self) -> None:
        if self._out is not None:
            with contextlib.suppress(OSError):
                self._out.close()
        self._out = self._current = None


def _read_tar(source: VolumeSource, writer: _SourceWriter, where: str) -> None:
    policy = MemberPolicy(where)
    parser = TarParser(where, policy=policy, extractor=writer)
    try:
        with source.open_tar() as stream:
            pump_tar(stream, parser, None)
        parser.close()
    finally:
        writer.abort()
        release = getattr(policy, "close", None)  # a policy may hold a table of paths on disk
        if release is not None:
            release()


def _copy_file(path: Path, writer: _SourceWriter) -> None:
    """An export file beside the playbook, copied without following a link."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise DocumentSourceFailed(f"{path}: cannot read ({exc.strerror})") from None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise DocumentSourceFailed(f"{path}: not a regular file")
        write = writer.open_file(path.name, 0o600, 0.0)
        try:
            while chunk := handle.read(_COPY_SIZE):
                write(chunk)
        finally:
            writer.close_file()


def _export_path(spec: DocumentSource, base: Path) -> Path:
    """The export file, under the playbook's folder (no '..', checked again after resolving)."""
    assert spec.file is not None
    folder = base.resolve()
    path = folder.joinpath(*PurePosixPath(spec.file).parts)
    if not path.parent.resolve().is_relative_to(folder):
        raise DocumentSourceFailed(f"{spec.file}: lies outside the playbook's folder")
    return path


@contextlib.contextmanager
def _staging(dest: Path, name: str) -> Iterator[Path]:
    """A private staging folder for one source, removed unless it was renamed into place."""
    staging = dest / f"{_STAGING}{name}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(mode=0o700)
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _replace_folder(staging: Path, final: Path) -> None:
    """Put the staged folder in place of the previous collection of the same source."""
    old = final.parent / f"{_OLD}{final.name}"
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        os.replace(final, old)
    os.replace(staging, final)
    fd = os.open(final.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    shutil.rmtree(old, ignore_errors=True)


def collect_source(
    spec: DocumentSource,
    dest: Path,
    *,
    base: Path,
    connect: Callable[[str], AbstractContextManager[HostConnector]],
    s3_settings: S3SettingsLike | None,
) -> tuple[CollectedSource, list[ClientDocument]]:
    """Collect one source into `dest/<name>`: what it gave (or why it failed), its documents.

    `base`: the playbook's folder (for `file` sources); `connect(host)`: a
    session to a perimeter host (closed here). Errors of the source become
    its `error`, one line: the other sources are still collected.
    """
    result = CollectedSource(
        name=spec.name, kind=spec.kind, origin=spec.origin, description=spec.description
    )
    where = f"documentation source {spec.name}"
    try:
        with _staging(dest, spec.name) as staging:
            if spec.kind == "file":
                writer = _SourceWriter(spec.name, staging, "", spec.max_bytes, spec.max_files)
                _copy_file(_export_path(spec, base), writer)
            elif spec.kind == "s3":
                # Imported here: boto3 is loaded only for contracts with S3 sources.
                from handover.connectors.s3 import s3_source_from_url

                assert spec.s3 is not None
                writer = _SourceWriter(spec.name, staging, "", spec.max_bytes, spec.max_files)
                volume = s3_source_from_url(spec.s3, spec.name, settings=s3_settings)
                _read_tar(volume, writer, where)
            else:
                assert spec.host is not None and spec.path is not None
                strip = relative_member(Path("/"), spec.path)
                writer = _SourceWriter(spec.name, staging, strip, spec.max_bytes, spec.max_files)
                with connect(spec.host) as connector:
                    _read_tar(connector.tree_source(spec.name, [spec.path]), writer, where)
            if not writer.documents:
                raise DocumentSourceFailed("no document found (the source is empty)")
            _replace_folder(staging, dest / spec.name)
    except HandoverError as exc:
        result.error = _one_line(str(exc))
        return result, []
    except OSError as exc:
        result.error = _one_line(f"{exc.strerror or exc}")
        return result, []
    result.files = len(writer.documents)
    result.bytes = writer.total
    result.skipped = writer.skipped
    return result, writer.documents


def _one_line(text: str) -> str:
    return " ".join(text.split())[:500]


def collect_client_documents(
    playbook: Playbook,
    dest: Path,
    *,
    connect: Callable[[str], AbstractContextManager[HostConnector]],
    s3_settings: S3SettingsLike | None = None,
) -> ClientDocumentsIndex:
    """Collect every source of `playbook.documentation` into `dest`; write and return the index.

    Every source is tried, whatever happened to the others; the index lists
    those that failed with their reason (`failures`), and the caller fails
    its checklist item on any. The index is written atomically last.
    """
    ensure_private_dir(dest)
    base = playbook.source.parent if playbook.source is not None else Path.cwd()
    index = ClientDocumentsIndex()
    for spec in playbook.documentation.sources:
        collected, documents = collect_source(
            spec, dest, base=base, connect=connect, s3_settings=s3_settings
        )
        index.sources.append(collected)
        index.documents.extend(documents)
    write_index(dest, index)
    return index


def write_index(dest: Path, index: ClientDocumentsIndex) -> Path:
    """Write `index.json` in `dest` atomically (sorted keys, one document per entry)."""
    data = json.dumps(index.model_dump(mode="json"), indent=2, ensure_ascii=False, sort_keys=True)
    path = dest / INDEX_NAME
    write_atomic(path, (data + "\n").encode("utf-8"))
    return path


def document_files(dest: Path, index: ClientDocumentsIndex) -> Mapping[str, Path]:
    """Every collected document's file, by its path relative to `dest` (`<source>/<name>`)."""
    return {doc.path: dest.joinpath(*doc.path.split("/")) for doc in index.documents}
