"""The audit chain's entries, independent of where they are kept.

An entry is `{"seq", "at", "actor", "event", "data", "prev", "hash"}`:
`seq` counts from 1, `prev` is the previous entry's `hash` (`GENESIS` for
the first), `hash` is the SHA-256 of the entry's canonical JSON without
`hash`. The file log (`handover.checklist.audit`) and the PostgreSQL store
(`handover.state.postgres`) build entries with the same function, so a
chain reads and verifies the same wherever it was written: a client checks
a line with `jq -cjS 'del(.hash)'` and `sha256sum` alone.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

GENESIS = "0" * 64
FIELDS = ("seq", "at", "actor", "event", "data", "prev", "hash")


def canonical_json(value: Any) -> bytes:
    """The bytes that are hashed: sorted keys, compact separators, UTF-8."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def entry_hash(entry: dict[str, Any]) -> str:
    """SHA-256 hex of an entry's canonical JSON, its own `hash` field left out."""
    body = {key: value for key, value in entry.items() if key != "hash"}
    return hashlib.sha256(canonical_json(body)).hexdigest()


def plain(value: Any) -> Any:
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


def next_entry(
    last: dict[str, Any] | None, event: str, actor: str, data: dict[str, Any]
) -> dict[str, Any]:
    """The entry that follows `last` (None: the first entry), hashed and ready to write."""
    if not event:
        raise ValueError("audit: event must not be empty")
    entry: dict[str, Any] = {
        "seq": (last["seq"] + 1) if last else 1,
        "at": datetime.now(UTC).isoformat(timespec="microseconds"),
        "actor": actor,
        "event": event,
        "data": plain(data),
        "prev": last["hash"] if last else GENESIS,
    }
    entry["hash"] = entry_hash(entry)
    return entry
