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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from handover.errors import HandoverError

GENESIS = "0" * 64
_FIELDS = ("seq", "at", "actor", "event", "data", "prev", "hash")


def canonical_json(value: Any) -> bytes:
    """The bytes that are hashed: sorted keys, compact separators, UTF-8."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def entry_hash(entry: dict[str, Any]) -> str:
    """SHA-256 hex of an entry's canonical JSON, its own `hash` field left out."""
    body = {key: value for key, value in entry.items() if key != "hash"}
    return hashlib.sha256(canonical_json(body)).hexdigest()


def _plain(value: Any) -> Any:
    """Turn data into plain JSON values (paths, datetimes, enums become strings).

    Done before hashing so that what is hashed is exactly what is written and
    read back.
    """
    return json.loads(json.dumps(value, default=_default, allow_nan=False))


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


class AuditLog:
    """An append-only JSON Lines audit log at `path` (created on first append).

    Safe to share between threads, and between processes appending to the
    same file: every append takes an exclusive `flock` on the file, reads the
    last entry to chain on, writes one line and fsyncs.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def append(self, event: str, actor: str, **data: Any) -> dict[str, Any]:
        """Append one entry and return it (with its seq and hash).

        Raises HandoverError if the last line of the existing log cannot be
        read as an entry (the chain would silently restart otherwise).
        """
        if not event:
            raise ValueError("audit: event must not be empty")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock, self._locked_file() as handle:
            last = self._last_entry(handle)
            entry: dict[str, Any] = {
                "seq": (last["seq"] + 1) if last else 1,
                "at": datetime.now(UTC).isoformat(timespec="microseconds"),
                "actor": actor,
                "event": event,
                "data": _plain(data),
                "prev": last["hash"] if last else GENESIS,
            }
            entry["hash"] = entry_hash(entry)
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
                raise HandoverError(f"{self.path}:{number}: not a JSON audit entry") from exc
            if not isinstance(value, dict):
                raise HandoverError(f"{self.path}:{number}: not a JSON audit entry")
            result.append(value)
        return result

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
        if not self.path.exists():
            return problems
        prev = GENESIS
        expected_seq = 1
        for number, line in self._lines():
            where = f"{self.path}:{number}"
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
        if not self.path.exists():
            return
        with self.path.open("rb") as handle:
            for number, line in enumerate(handle, start=1):
                yield number, line.rstrip(b"\n")

    @contextlib.contextmanager
    def _locked_file(self) -> Iterator[Any]:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o640)
        with os.fdopen(fd, "r+b") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield handle
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def _last_entry(self, handle: Any) -> dict[str, Any] | None:
        """Read the last line by seeking backwards (the log can be long)."""
        end = handle.seek(0, os.SEEK_END)
        if end == 0:
            return None
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
        lines = tail.rstrip(b"\n").split(b"\n")
        last = lines[-1]
        try:
            entry = json.loads(last)
        except ValueError as exc:
            raise HandoverError(
                f"{self.path}: last line is not a JSON audit entry; run `handover audit --verify`"
            ) from exc
        if not isinstance(entry, dict) or not isinstance(entry.get("seq"), int):
            raise HandoverError(f"{self.path}: last line is not an audit entry")
        if not tail.endswith(b"\n"):
            # a whole entry whose newline was lost (crash between write and flush): finish it
            handle.seek(0, os.SEEK_END)
            handle.write(b"\n")
        return entry
