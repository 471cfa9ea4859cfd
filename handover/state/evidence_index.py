"""The index of a contract's evidence mirror: which file holds which bytes, kept in the state store.

Workers share a contract's checklists through the state store, but the
evidence files a run writes are on its own disk; `handover.evidence` copies
them to S3 by content (one object per SHA-256) and keeps this index as the
store's blob `evidence-index.json`::

    {"version": 1,
     "files":   {relpath: {"sha256", "size", "at", "by"}},
     "erased":  {relpath: {"at", "by"}},
     "holders": {worker: {"run", "since"}}}

Every change goes through `handover.state.store.update_blob` (read, change,
compare-and-set, again on a lost race) and changes only the paths it names,
so two workers pushing different files at once both land. The functions
here are pure: they take an index and return a new one, and `change` turns
one of them into what `update_blob` wants (bytes in, bytes or None out).

`relpath` is POSIX and relative to the contract's folder; `checked_relpath`
refuses anything that could leave it (an index is read from a database that
another machine writes).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any

from handover.errors import HandoverError

INDEX_BLOB = "evidence-index.json"
INDEX_VERSION = 1

Index = dict[str, Any]
#: A file's entry: sha256, size, at, by.
Entry = dict[str, Any]


def now_iso() -> str:
    """The time entries record (UTC, ISO 8601, microseconds)."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


def empty_index() -> Index:
    return {"version": INDEX_VERSION, "files": {}, "erased": {}, "holders": {}}


def load_index(data: bytes | None) -> Index:
    """The index the blob holds (an empty one when there is none); HandoverError if unreadable."""
    if data is None:
        return empty_index()
    try:
        index = json.loads(data)
    except ValueError as exc:
        raise HandoverError(f"{INDEX_BLOB}: not JSON ({exc})") from None
    if not isinstance(index, dict) or index.get("version") != INDEX_VERSION:
        raise HandoverError(
            f"{INDEX_BLOB}: version {index.get('version') if isinstance(index, dict) else '?'!r} "
            f"is not {INDEX_VERSION}: written by another handover version"
        )
    for part in ("files", "erased", "holders"):
        if not isinstance(index.setdefault(part, {}), dict):
            raise HandoverError(f"{INDEX_BLOB}: {part!r} is not an object")
    return index


def dump_index(index: Index) -> bytes:
    """Canonical bytes (sorted keys): an unchanged index gives the same bytes, hence no write."""
    return json.dumps(index, sort_keys=True, separators=(",", ":")).encode("utf-8")


def change(apply: Callable[[Index], None]) -> Callable[[bytes | None], bytes | None]:
    """An `update_blob` change running `apply` on a copy of the stored index (None: unchanged)."""

    def run(data: bytes | None) -> bytes | None:
        index = load_index(data)
        before = copy.deepcopy(index)
        apply(index)
        return None if index == before else dump_index(index)

    return run


def checked_relpath(relpath: str) -> str:
    """`relpath` if it is a plain POSIX path inside the folder; HandoverError otherwise."""
    path = PurePosixPath(relpath)
    if (
        not relpath
        or path.is_absolute()
        or any(part in ("", ".", "..") for part in relpath.split("/"))
        or "\\" in relpath
        or "\x00" in relpath
    ):
        raise HandoverError(f"{INDEX_BLOB}: path {relpath!r} is not a plain relative path")
    return relpath


def normalized_prefixes(prefixes: Sequence[str]) -> tuple[str, ...]:
    """Relpath prefixes as folders or files: '' (everything), 'takeover', 'a/b.json'."""
    out = []
    for prefix in prefixes:
        text = prefix.strip("/")
        if text:
            checked_relpath(text)
        out.append(text)
    return tuple(out)


def is_under(relpath: str, prefixes: Iterable[str]) -> bool:
    """True when `relpath` is one of `prefixes` or inside one ('' is everything).

    Prefixes are path components, not strings: 'takeover' does not hold
    'takeover-old/x'.
    """
    return any(p == "" or relpath == p or relpath.startswith(p + "/") for p in prefixes)


def set_files(index: Index, entries: Mapping[str, Entry]) -> None:
    """Record `entries` (they win over what is there) and lift their tombstones."""
    for relpath, entry in entries.items():
        index["files"][checked_relpath(relpath)] = dict(entry)
        index["erased"].pop(relpath, None)


def tombstone(index: Index, gone: Mapping[str, str | None], by: str, at: str) -> list[str]:
    """Move the files in `gone` (relpath -> the SHA-256 the caller last saw, None: any) to `erased`.

    A file another worker has meanwhile written with other bytes keeps its
    entry: a deletion of the old version does not erase the new one. Returns
    the relpaths tombstoned.
    """
    done = []
    for relpath, seen in gone.items():
        current = index["files"].get(relpath)
        if current is not None and seen is not None and current.get("sha256") != seen:
            continue
        index["files"].pop(relpath, None)
        index["erased"][checked_relpath(relpath)] = {"at": at, "by": by}
        done.append(relpath)
    return done


def tombstone_under(index: Index, prefixes: Sequence[str], by: str, at: str) -> list[str]:
    """Tombstone every file under `prefixes` (the erasure); the relpaths tombstoned."""
    gone = {rel: None for rel in index["files"] if is_under(rel, prefixes)}
    return tombstone(index, gone, by, at)


def referenced(index: Index) -> set[str]:
    """The SHA-256 of every file the index still holds (their objects must stay)."""
    return {str(entry.get("sha256")) for entry in index["files"].values()}


def set_holder(index: Index, worker: str, run: str, since: str) -> None:
    index["holders"][worker] = {"run": run, "since": since}


def drop_holder(index: Index, worker: str) -> None:
    index["holders"].pop(worker, None)
