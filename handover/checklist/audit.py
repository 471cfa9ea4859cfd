"""Append-only, hash-chained audit log (JSON Lines), one per contract.

Auditors read this file in the Prefect UI's evidence and inside every
restitution bundle, so it must show what happened, in which order, and make
any later edit visible. Each line is one entry:

    {"seq": 1, "at": "2026-02-01T09:00:00.000000+00:00", "actor": "ops@provider",
     "event": "checklist.done", "data": {...}, "prev": "000...0", "hash": "..."}

- `seq` counts lines from 1, so a removed or duplicated line shows;
- `prev` is the previous entry's `hash` ("0" * 64 for the first entry);
- `hash` is the SHA-256 (hex) of the canonical JSON of the entry without
  `hash`: keys sorted, separators `,` and `:`, UTF-8, no ASCII escaping.
  For ASCII-only entries `jq -cjS 'del(.hash)'` reproduces the bytes, so a
  client can check a line with `jq` and `sha256sum` alone.

Appends are serialised across threads and processes with an `fcntl` lock
on the log file itself and fsynced before the lock is released.

A torn last line (a write cut short by a full disk or a crash: bytes
after the last newline that are not a whole entry) stops every append,
since chaining on it would hide it. `repair` is the audited way out: under
the same lock it moves the torn bytes aside to `audit.log.torn-<time>`
(kept, never deleted), truncates the log to its last complete line and
appends an `audit.repaired` entry naming how many bytes went and their
SHA-256. `handover audit CONTRACT --repair` calls it.

The chain shows edits inside the file; it cannot show the file cut short
or rewritten from scratch. Signed checkpoints of the chain head, kept
outside the file, do: see `handover.checklist.checkpoints`.

Where the contract's state is kept in PostgreSQL (`HANDOVER_STATE_URL`),
the same `AuditLog` reads and appends the chain there (`chain`, from the
state store): entries are built by the same function
(`handover.state.chain`), appended in transactions under a row lock, and
a row is whole or absent, so there is no torn tail to repair.

Never put secrets in an entry: callers pass references (`vault:...`),
names, paths and hashes only. The log travels in clear inside the bundle
index and is shown to auditors.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from handover.errors import AuditTornTail, HandoverError
from handover.state.atomic import ensure_private_dir
from handover.state.chain import FIELDS as _FIELDS
from handover.state.chain import GENESIS, canonical_json, entry_hash, next_entry
from handover.state.store import AuditChain

__all__ = [
    "GENESIS",
    "REPAIRED_EVENT",
    "AuditLog",
    "Repair",
    "TornTail",
    "canonical_json",
    "entry_hash",
]

REPAIRED_EVENT = "audit.repaired"


@dataclass(frozen=True)
class TornTail:
    """The bytes after the log's last newline that are not a whole entry."""

    offset: int  # where they start: the length the log is truncated to
    data: bytes
    line: int  # the line number they would have had

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclass(frozen=True)
class Repair:
    """What `AuditLog.repair` did: where the torn bytes went and the entry that says so."""

    torn: TornTail
    moved_to: Path
    entry: dict[str, Any]


class AuditLog:
    """An append-only JSON Lines audit log at `path` (created on first append).

    Safe to share between threads, and between processes appending to the
    same file: every append takes an exclusive `flock` on the file, reads the
    last entry to chain on, writes one line and fsyncs.

    With `chain` (a database's chain, from the state store), the entries
    live there and `path` is only where an export of the log would go (and
    the contract folder beside it).
    """

    def __init__(self, path: Path, chain: AuditChain | None = None) -> None:
        self.path = Path(path)
        self.chain = chain
        self._lock = threading.Lock()

    @property
    def where(self) -> str:
        """How messages name the log: its file, or the database chain."""
        return str(self.path) if self.chain is None else self.chain.where

    def exists(self) -> bool:
        """True once the log holds something (a file, or a chain with an entry)."""
        return self.path.exists() if self.chain is None else self.chain.exists()

    def append(self, event: str, actor: str, **data: Any) -> dict[str, Any]:
        """Append one entry and return it (with its seq and hash).

        Raises AuditTornTail on a torn last line (see `repair`), and
        HandoverError if the last line of the existing log cannot be read as
        an entry (the chain would silently restart otherwise).
        """
        if not event:
            raise ValueError("audit: event must not be empty")
        if self.chain is not None:
            return self.chain.append([(event, actor, data)])[0]
        ensure_private_dir(self.path.parent)
        with self._lock, self._locked_file() as handle:
            return self._append_locked(handle, event, actor, data)

    def head(self) -> dict[str, Any] | None:
        """The last entry (the chain head), read under the lock; None for an empty log.

        Raises like `append` when the last line is torn or not an entry.
        """
        if self.chain is not None:
            return self.chain.head()
        if not self.path.exists():
            return None
        with self._lock, self._locked_file() as handle:
            return self._last_entry(handle, finish_line=False)

    def torn_tail(self) -> TornTail | None:
        """The torn last line, if any: bytes after the last newline that are not an entry.

        A whole entry whose newline was lost is not torn (the next append
        finishes its line). A database chain has none: a row is whole or absent.
        """
        if self.chain is not None or not self.path.exists():
            return None
        with self.path.open("rb") as handle:
            return _torn_tail(handle)

    def repair(self, actor: str) -> Repair | None:
        """Move a torn last line aside, truncate to the last whole line, and say so in the log.

        The torn bytes are written to `audit.log.torn-<UTC time>` beside the
        log (fsynced, kept: they are evidence too), then the log is truncated
        and an `audit.repaired` entry records the byte count, their SHA-256
        and the file that holds them. Returns None when nothing is torn.
        Raises HandoverError when the last line is whole but not an entry
        (an edit, not a tear: nothing is removed then).
        """
        if self.chain is not None or not self.path.exists():
            return None
        with self._lock, self._locked_file() as handle:
            torn = _torn_tail(handle)
            if torn is None:
                self._last_entry(handle, finish_line=False)  # raises on a whole non-entry line
                return None
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
            aside = self.path.with_name(f"{self.path.name}.torn-{stamp}")
            fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(torn.data)
                out.flush()
                os.fsync(out.fileno())
            handle.truncate(torn.offset)
            handle.flush()
            os.fsync(handle.fileno())
            _fsync_dir(self.path.parent)
            entry = self._append_locked(
                handle,
                REPAIRED_EVENT,
                actor,
                {
                    "line": torn.line,
                    "offset": torn.offset,
                    "bytes_removed": len(torn.data),
                    "sha256": torn.sha256,
                    "moved_to": aside.name,
                },
            )
        return Repair(torn=torn, moved_to=aside, entry=entry)

    def _append_locked(
        self, handle: Any, event: str, actor: str, data: dict[str, Any]
    ) -> dict[str, Any]:
        last = self._last_entry(handle)
        entry = next_entry(last, event, actor, data)
        handle.seek(0, os.SEEK_END)
        handle.write(canonical_json(entry) + b"\n")
        handle.flush()
        os.fsync(handle.fileno())
        return entry

    def entries(self) -> list[dict[str, Any]]:
        """Every entry, in order. Raises HandoverError on a line that is not JSON."""
        result: list[dict[str, Any]] = []
        for number, line in self._lines():
            try:
                value = json.loads(line)
            except ValueError as exc:
                raise HandoverError(f"{self.where}:{number}: not a JSON audit entry") from exc
            if not isinstance(value, dict):
                raise HandoverError(f"{self.where}:{number}: not a JSON audit entry")
            result.append(value)
        return result

    def readable_entries(self) -> list[dict[str, Any]]:
        """The entries of every line that reads as one, skipping the others.

        For checks that come after `verify` (checkpoints, checklists): the
        lines that are not entries are already reported there.
        """
        result: list[dict[str, Any]] = []
        for _number, line in self._lines():
            try:
                value = json.loads(line)
            except ValueError:
                continue
            if isinstance(value, dict) and isinstance(value.get("seq"), int):
                result.append(value)
        return result

    def lines(self) -> Iterator[tuple[int, bytes]]:
        """(line number, line without its newline), streamed: the log as its file holds it."""
        return self._lines()

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.entries())

    def verify(self) -> list[str]:
        """Check the whole chain; return one line per problem (empty when intact).

        Detects lines that are not JSON, missing fields, sequence numbers out
        of order (removed, duplicated or reordered lines), an entry whose
        content no longer matches its hash (edited), and a `prev` that does
        not match the previous entry (removed or re-hashed entries).
        """
        problems: list[str] = []
        if not self.exists():
            return problems
        prev = GENESIS
        expected_seq = 1
        torn = self.torn_tail()
        for number, line in self._lines():
            where = f"{self.where}:{number}"
            if torn is not None and number == torn.line:
                problems.append(
                    f"{where}: torn last line ({len(torn.data)} bytes without a newline, "
                    "a write cut short: disk full or crash); "
                    "run `handover audit CONTRACT --repair` to move them aside"
                )
                break
            try:
                entry = json.loads(line)
            except ValueError:
                problems.append(f"{where}: not JSON (truncated or edited line)")
                prev, expected_seq = "?", expected_seq + 1
                continue
            if not isinstance(entry, dict) or any(key not in entry for key in _FIELDS):
                problems.append(f"{where}: not an audit entry (fields {', '.join(_FIELDS)})")
                prev, expected_seq = "?", expected_seq + 1
                continue
            if entry["seq"] != expected_seq:
                problems.append(f"{where}: seq {entry['seq']!r}, expected {expected_seq}")
            if prev != "?" and entry["prev"] != prev:
                problems.append(f"{where}: chain broken (prev does not match the previous hash)")
            if entry_hash(entry) != entry["hash"]:
                problems.append(f"{where}: entry edited (content does not match its hash)")
            prev = str(entry["hash"])
            expected_seq = (entry["seq"] + 1) if isinstance(entry["seq"], int) else expected_seq + 1
        return problems

    # -- internals ---------------------------------------------------------

    def _lines(self) -> Iterator[tuple[int, bytes]]:
        if self.chain is not None:
            yield from self.chain.lines()
            return
        if not self.path.exists():
            return
        with self.path.open("rb") as handle:
            for number, line in enumerate(handle, start=1):
                yield number, line.rstrip(b"\n")

    @contextlib.contextmanager
    def _locked_file(self) -> Iterator[Any]:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "r+b") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield handle
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def _last_entry(self, handle: Any, *, finish_line: bool = True) -> dict[str, Any] | None:
        """Read the last line by seeking backwards (the log can be long).

        Raises AuditTornTail on a torn last line, HandoverError on a whole
        line that is not an entry. A whole entry whose newline was lost
        (crash between write and flush) gets its newline when `finish_line`.
        """
        torn = _torn_tail(handle)
        if torn is not None:
            raise AuditTornTail(
                f"{self.path}:{torn.line}: last line is torn ({len(torn.data)} bytes "
                "without a newline: a write cut short); run `handover audit CONTRACT "
                "--repair` to move them aside and record it"
            )
        end = handle.seek(0, os.SEEK_END)
        if end == 0:
            return None
        tail = _read_tail(handle, end)
        last = tail.rstrip(b"\n").split(b"\n")[-1]
        try:
            entry = json.loads(last)
        except ValueError as exc:
            raise HandoverError(
                f"{self.path}: last line is not a JSON audit entry; run `handover audit --verify`"
            ) from exc
        if not isinstance(entry, dict) or not isinstance(entry.get("seq"), int):
            raise HandoverError(f"{self.path}: last line is not an audit entry")
        if finish_line and not tail.endswith(b"\n"):
            # a whole entry whose newline was lost (crash between write and flush): finish it
            handle.seek(0, os.SEEK_END)
            handle.write(b"\n")
        return entry


def _read_tail(handle: Any, end: int) -> bytes:
    """The end of the file, enough of it to hold the last two lines' boundary."""
    block = 4096
    position = end
    tail = b""
    while position > 0:
        step = min(block, position)
        position -= step
        handle.seek(position)
        tail = handle.read(step) + tail
        if tail.rstrip(b"\n").count(b"\n") >= 1:
            break
    return tail


def _torn_tail(handle: Any) -> TornTail | None:
    """Bytes after the last newline that do not parse as a whole entry, or None."""
    end = handle.seek(0, os.SEEK_END)
    if end == 0:
        return None
    handle.seek(end - 1)
    if handle.read(1) == b"\n":
        return None
    block = 4096
    position = end
    tail = b""
    while position > 0 and b"\n" not in tail:
        step = min(block, position)
        position -= step
        handle.seek(position)
        tail = handle.read(step) + tail
    cut = tail.rfind(b"\n")
    start = position + cut + 1  # cut is -1 when the whole file is one unfinished line
    data = tail[cut + 1 :]
    try:
        value = json.loads(data)
    except ValueError:
        value = None
    if isinstance(value, dict) and all(key in value for key in _FIELDS):
        return None  # a whole entry that lost its newline
    handle.seek(0)
    line = 1 + _count_newlines(handle, start)
    return TornTail(offset=start, data=data, line=line)


def _count_newlines(handle: Any, limit: int) -> int:
    count = 0
    remaining = limit
    while remaining > 0:
        chunk = handle.read(min(1 << 20, remaining))
        if not chunk:
            break
        count += chunk.count(b"\n")
        remaining -= len(chunk)
    return count


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
