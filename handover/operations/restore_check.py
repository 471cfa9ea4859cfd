"""The sample restore of the operational checklist: a backup decrypted and checked, nothing written.

`restore_check` reads one backup volume from its store, checks the
ciphertext's SHA-256 and size against the record, decrypts it through the
tar parser and checks every member against the inner `SHA256SUMS` and the
record's counts, without writing any plaintext anywhere. Problems are
reported as counts, never member names: those are client data, and the
result ends up in reports. Kept apart from `handover.operations.backup`,
which writes backups: this module only reads them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING, cast

from pydantic import BaseModel, ConfigDict

from handover.bundle.hashing import HashingReader
from handover.errors import BundleError, NoMatchingIdentity
from handover.operations.backup import BackupRecord, BackupStore

if TYPE_CHECKING:
    from handover.bundle.age import Identity
    from handover.bundle.tarparse import TarParser


class RestoreCheckResult(BaseModel):
    """Outcome of a sample restore; `problems` says what failed, without naming client files."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    volume: str
    checked_at: datetime
    ok: bool
    files_checked: int
    bytes_checked: int
    problems: list[str]


def restore_check(
    store: BackupStore,
    record: BackupRecord,
    identities: Sequence[Identity],
    *,
    now: datetime | None = None,
) -> RestoreCheckResult:
    """Decrypt a backup and check every file against its inner SHA256SUMS, writing nothing.

    Also checks the encrypted volume's SHA-256 and sizes against the record.
    Corruption (a flipped byte, a truncated volume, a member that does not
    match) is reported in `problems` with `ok=False`. Raises
    NoMatchingIdentity if no identity opens the volume: that is a key
    problem, not a damaged backup.
    """
    from handover.bundle.tarparse import TarParser

    parser = TarParser(record.volume, capture_sums=True)
    with store.open_read(record.volume) as raw:
        src = HashingReader(raw)
        damage = _decrypt_into(parser, src, record, identities)
        # Read whatever the decryptor left (all of it after a failure), so the
        # hash and size compared with the record cover the whole file.
        while src.read(1 << 20):
            pass
    problems = [damage] if damage else []
    problems += _volume_problems(record, src)
    if damage is None:
        problems += _content_problems(record, parser)
    return RestoreCheckResult(
        volume=record.volume,
        checked_at=now or datetime.now(UTC),
        ok=not problems,
        files_checked=len(parser.sums()),
        bytes_checked=sum(m.size for m in parser.members() if m.type == "file"),
        problems=problems,
    )


def _decrypt_into(
    parser: TarParser, src: HashingReader, record: BackupRecord, identities: Sequence[Identity]
) -> str | None:
    """Decrypt the volume through the tar parser; why it is damaged, or None when it read whole.

    NoMatchingIdentity propagates: no key opens the volume, which says nothing of the backup.
    """
    from handover.bundle.age import AgeReader
    from handover.bundle.pump import pump_tar

    try:
        with AgeReader(src, identities, name=record.volume) as plain:
            pump_tar(cast(IO[bytes], plain), parser)
    except NoMatchingIdentity:
        raise
    except BundleError as exc:
        return str(exc)
    return None


def _volume_problems(record: BackupRecord, src: HashingReader) -> list[str]:
    """The encrypted volume as read against its record: SHA-256 and size."""
    if src.hexdigest() == record.sha256 and src.size == record.size:
        return []
    return [
        f"{record.volume}: encrypted volume does not match its record "
        f"(SHA-256 or size differs: {src.size} bytes read, {record.size} recorded)"
    ]


def _content_problems(record: BackupRecord, parser: TarParser) -> list[str]:
    """The decrypted members against the inner SHA256SUMS and the record's counts.

    Counts only: member names are client data and results end up in reports.
    """
    from handover.bundle.sums import parse_sums, render_sums

    if parser.inner_sums is None:
        return [f"{record.volume}: no SHA256SUMS member in the volume"]
    problems: list[str] = []
    try:
        expected = parse_sums(parser.inner_sums, f"{record.volume}:SHA256SUMS")
    except BundleError as exc:
        expected = {}
        problems.append(str(exc))
    actual = parser.sums()
    missing = len(set(expected) - set(actual))
    unlisted = len(set(actual) - set(expected))
    differing = sum(1 for p, d in expected.items() if p in actual and actual[p] != d)
    if missing or unlisted or differing:
        problems.append(
            f"{record.volume}: {differing} files differ from SHA256SUMS, "
            f"{missing} listed but absent, {unlisted} present but unlisted"
        )
    if hashlib.sha256(render_sums(actual)).hexdigest() != record.sums_sha256:
        problems.append(f"{record.volume}: content differs from the one recorded")
    if len(actual) != record.file_count:
        problems.append(
            f"{record.volume}: {len(actual)} files, the record says {record.file_count}"
        )
    return problems
