"""Backups of the operational run: one age-encrypted tar volume per dataset and run.

A backup is built like a bundle volume (same tar parser, same inner
`SHA256SUMS` member, same age encryption), so the provider restores it with
`age -d -i backup.key FILE | tar -x && sha256sum -c SHA256SUMS`, without
handover. Layout in a store (a folder, or an S3 prefix):

    <contract>/<dataset>/<UTC timestamp>.tar.age   the encrypted volume
    <contract>/<dataset>/<UTC timestamp>.json      its record (BackupRecord)

The record is written after the volume, so a record means a complete
volume. It is plaintext and therefore holds no client file name: only sizes,
counts and hashes. The timestamp sorts chronologically as text, which is all
`prune` needs: it never reads a record to decide.

The sample restore of the operational checklist, which decrypts a backup
and checks it without writing any plaintext, is
`handover.operations.restore_check`.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, BinaryIO, Protocol, cast

from pydantic import BaseModel, ConfigDict, ValidationError

from handover.bundle.hashing import HashingWriter
from handover.errors import BundleCorrupt, BundleError, UsageError
from handover.state.atomic import atomic_writer

if TYPE_CHECKING:
    from handover.bundle.age import Recipient
    from handover.bundle.types import VolumeSource

__all__ = [
    "BackupRecord",
    "BackupStore",
    "LocalBackupStore",
    "backup_prefix",
    "list_backups",
    "prune",
    "run_backup",
]

FORMAT = "handover-backup/1"
VOLUME_SUFFIX = ".tar.age"
RECORD_SUFFIX = ".json"
_STAMP_FORMAT = "%Y%m%dT%H%M%S"
_STAMP = re.compile(r"^(\d{8}T\d{6})\.(\d{3})Z$")
_NAME_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class BackupStore(Protocol):
    """Named bytes under one root: a local folder or an S3 prefix.

    Names are '/'-separated and relative (`acme/www/20261127T120000.000Z.json`).
    `put(name)` yields a writable stream; the object appears under its name
    only when the block ends without error (rename, multipart completion).
    """

    def put(self, name: str) -> contextlib.AbstractContextManager[BinaryIO]: ...

    def list(self, prefix: str) -> list[str]:
        """Names starting with `prefix`, sorted."""
        ...

    def open_read(self, name: str) -> contextlib.AbstractContextManager[BinaryIO]: ...

    def delete(self, name: str) -> None:
        """Remove `name`; a name already gone is not an error."""
        ...

    def describe(self) -> str: ...


def _check_name(name: str) -> PurePosixPath:
    pure = PurePosixPath(name)
    if not name or pure.is_absolute() or any(p in ("..", ".", "") for p in name.split("/")):
        raise UsageError(f"backup store: {name!r} is not a relative object name")
    return pure


class LocalBackupStore:
    """A BackupStore on a local folder; files are written atomically, mode 0600."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def _path(self, name: str) -> Path:
        return self.folder.joinpath(*_check_name(name).parts)

    @contextlib.contextmanager
    def put(self, name: str) -> Iterator[BinaryIO]:
        with atomic_writer(self._path(name), mode=0o600) as handle:
            yield handle

    def list(self, prefix: str) -> list[str]:
        names: list[str] = []
        if not self.folder.is_dir():
            return names
        for dirpath, dirnames, filenames in os.walk(self.folder):
            dirnames.sort()
            base = Path(dirpath).relative_to(self.folder)
            for filename in filenames:
                if filename.startswith("."):  # temporary files of atomic writes
                    continue
                name = (base / filename).as_posix()
                if name.startswith(prefix):
                    names.append(name)
        return sorted(names)

    @contextlib.contextmanager
    def open_read(self, name: str) -> Iterator[BinaryIO]:
        try:
            handle = open(self._path(name), "rb")  # noqa: SIM115 - closed below
        except FileNotFoundError:
            raise BundleError(f"{name}: missing from backup store {self.folder}") from None
        with handle:
            yield handle

    def delete(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path(name).unlink()

    def describe(self) -> str:
        return str(self.folder)


class BackupRecord(BaseModel):
    """The plaintext record beside a backup volume: sizes, counts and hashes, no file names."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: str = FORMAT
    contract: str
    dataset: str
    volume: str  # store name of the .tar.age
    created_at: datetime
    size: int  # bytes of the encrypted volume
    sha256: str  # of the encrypted volume
    tar_size: int  # bytes of the plaintext tar stream, SHA256SUMS member included
    member_count: int  # tar members (files, folders, links), SHA256SUMS excluded
    file_count: int
    data_bytes: int  # total size of the regular files
    sums_sha256: str  # of the inner SHA256SUMS member: ties the record to the content

    @property
    def record_name(self) -> str:
        return self.volume.removesuffix(VOLUME_SUFFIX) + RECORD_SUFFIX


def backup_prefix(contract: str, dataset: str) -> str:
    """`<contract>/<dataset>/`: where a dataset's backups live in a store."""
    for what, value in (("contract", contract), ("dataset", dataset)):
        if not _NAME_PART.match(value):
            raise UsageError(f"backup: {what} {value!r} is not a slug usable in a file name")
    return f"{contract}/{dataset}/"


def _stamp(moment: datetime) -> str:
    moment = moment.astimezone(UTC)
    return f"{moment.strftime(_STAMP_FORMAT)}.{moment.microsecond // 1000:03d}Z"


def _parse_stamp(stem: str) -> datetime | None:
    match = _STAMP.match(stem)
    if not match:
        return None
    base = datetime.strptime(match[1], _STAMP_FORMAT).replace(tzinfo=UTC)
    return base + timedelta(milliseconds=int(match[2]))


def run_backup(
    store: BackupStore,
    contract: str,
    dataset: str,
    source: VolumeSource,
    recipients: Sequence[Recipient],
    *,
    now: datetime | None = None,
) -> BackupRecord:
    """Seal `source` into `<contract>/<dataset>/<timestamp>.tar.age`, then write its record.

    One pass: the source's tar stream is parsed and hashed, the inner
    `SHA256SUMS` appended, everything encrypted to `recipients` and hashed on
    its way to the store. Raises UsageError without recipients, ConnectorError
    if the source fails, BundleError if its stream is not a tar archive,
    DiskFull when a local store's disk fills (naming the file and the file
    system); in every failure nothing is left under the backup's name.
    """
    from handover.bundle.age import AgeWriter
    from handover.bundle.pump import pump_tar, seal_trailer
    from handover.bundle.sums import render_sums
    from handover.bundle.tarparse import TarParser

    if not recipients:
        raise UsageError(f"backup {contract}/{dataset}: no recipient to encrypt to")
    prefix = backup_prefix(contract, dataset)
    created = (now or datetime.now(UTC)).astimezone(UTC)
    volume = f"{prefix}{_stamp(created)}{VOLUME_SUFFIX}"
    existing = set(store.list(prefix))
    while volume in existing:  # two runs within the same millisecond
        created += timedelta(milliseconds=1)
        volume = f"{prefix}{_stamp(created)}{VOLUME_SUFFIX}"
    parser = TarParser(volume)
    with store.put(volume) as raw:
        out = HashingWriter(raw)
        with AgeWriter(cast(BinaryIO, out), recipients) as age, source.open_tar() as stream:
            tar_size = pump_tar(stream, parser, age, trailer=seal_trailer)
    members = parser.members()
    files = [m for m in members if m.type == "file"]
    record = BackupRecord(
        contract=contract,
        dataset=dataset,
        volume=volume,
        created_at=created,
        size=out.size,
        sha256=out.hexdigest(),
        tar_size=tar_size,
        member_count=len(members),
        file_count=len(files),
        data_bytes=sum(m.size for m in files),
        sums_sha256=hashlib.sha256(render_sums(parser.sums())).hexdigest(),
    )
    try:
        with store.put(record.record_name) as handle:
            handle.write(record.model_dump_json(indent=2).encode() + b"\n")
    except BaseException:
        # A volume without its record is an unfinished backup (a full disk, most likely,
        # reported by the store as DiskFull): take it away rather than leave it to prune.
        with contextlib.suppress(Exception):  # the first error is the one to report
            store.delete(volume)
        raise
    return record


def load_record(store: BackupStore, name: str) -> BackupRecord:
    """Read one `.json` record. Raises BundleCorrupt when it does not parse."""
    with store.open_read(name) as handle:
        data = handle.read()
    try:
        return BackupRecord.model_validate_json(data)
    except ValidationError as exc:
        raise BundleCorrupt(f"{name}: not a backup record ({exc.error_count()} errors)") from None


def list_backups(store: BackupStore, contract: str, dataset: str) -> list[BackupRecord]:
    """Records of a dataset's complete backups, oldest first."""
    prefix = backup_prefix(contract, dataset)
    return [load_record(store, n) for n in store.list(prefix) if n.endswith(RECORD_SUFFIX)]


def prune(
    store: BackupStore,
    contract: str,
    dataset: str,
    retention_days: int,
    keep_last: int,
    now: datetime | None = None,
) -> list[str]:
    """Delete backups older than `retention_days`, never the newest `keep_last`.

    Age comes from the timestamp in the name. Volumes whose record is missing
    (a run that died between the two writes) are removed once past retention
    too. Names that handover did not write are left alone. Returns the deleted
    names (records before their volumes: a crash never leaves a record
    pointing at nothing).
    """
    if keep_last < 0 or retention_days < 0:
        raise UsageError("prune: retention_days and keep_last must be ≥ 0")
    prefix = backup_prefix(contract, dataset)
    cutoff = (now or datetime.now(UTC)) - timedelta(days=retention_days)
    names = set(store.list(prefix))
    stamps: dict[str, datetime] = {}
    for name in names:
        rest = name[len(prefix) :]
        if "/" in rest:
            continue
        for suffix in (VOLUME_SUFFIX, RECORD_SUFFIX):
            if rest.endswith(suffix):
                moment = _parse_stamp(rest.removesuffix(suffix))
                if moment is not None:
                    stamps[rest.removesuffix(suffix)] = moment
    complete = sorted(s for s in stamps if f"{prefix}{s}{RECORD_SUFFIX}" in names)
    protected = set(complete[-keep_last:]) if keep_last else set()
    deleted: list[str] = []
    for stem in sorted(stamps):
        if stem in protected or stamps[stem] >= cutoff:
            continue
        for suffix in (RECORD_SUFFIX, VOLUME_SUFFIX):
            name = f"{prefix}{stem}{suffix}"
            if name in names:
                store.delete(name)
                deleted.append(name)
    return deleted
