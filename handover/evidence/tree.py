"""What of a contract's folder the evidence mirror copies, and what this worker last synced.

Everything regular under the folder is evidence, except what the state
store already keeps for every worker and what is this machine's own
machinery (`EXCLUDED_NAMES`, `EXCLUDED_SUFFIXES`, `is_excluded`). Symlinks
are never followed nor mirrored: a link in a contract folder could point at
anything on this machine.

The local state file (`.evidence-sync.json`) remembers, per relpath, the
SHA-256 this worker last pushed or pulled and the file's (size, mtime_ns,
inode) then, so that a push rehashes only what changed and tells a file
removed here (a tombstone) from one it never had.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from handover.errors import HandoverError
from handover.state.atomic import write_atomic

#: This worker's record of what it synced (never mirrored).
SYNC_STATE_FILE = ".evidence-sync.json"
#: The lock file of `EvidenceMirror.in_use` (shared by the runs of this machine).
IN_USE_FILE = ".evidence-inuse"
#: The lock serialising this machine's pushes, pulls, evictions of one contract.
SYNC_LOCK_FILE = ".evidence-sync.lock"

#: Top-level names of a contract folder that are not mirrored, and why:
#: - kept by the state store for every worker (checklists, the audit chain and its
#:   checkpoints, the journals, the store's blobs when the store is the local folder:
#:   vault, known_hosts, schedules, the evidence index itself);
#: - this mirror's own local state and locks.
#: Checked against a whole lifecycle's folder (tests/integration/test_flows_local.py).
EXCLUDED_NAMES = frozenset(
    {
        "checklists",  # ContractPaths.checklists_dir (store: checklists)
        "audit.log",  # ContractPaths.audit_log (store: audit chain)
        "audit-checkpoints.jsonl",  # ContractPaths.audit_checkpoints (store: journal)
        "incidents.jsonl",  # handover.operations.incident_journal (store: journal)
        "onsite.jsonl",  # handover.operations.onsite_journal (store: journal)
        "visits.jsonl",  # handover.operations.visit_journal (store: journal)
        "vault.age",  # ContractPaths.vault_file (store: blob)
        "known_hosts",  # ContractPaths.known_hosts (store: blob)
        "schedules.json",  # store blob (LocalStore keeps it in the folder)
        "evidence-index.json",  # store blob: this mirror's index
        SYNC_STATE_FILE,
        IN_USE_FILE,
        SYNC_LOCK_FILE,
    }
)
#: Names excluded at any depth: locks (`<name>.lock`, `writer.lease` and
#: `writer-<task>.lease` of flows/writer_lease.py), the checklist store's
#: half-done changes (`.pending`), a torn audit tail set aside (`audit.log.torn-*`).
EXCLUDED_SUFFIXES = (".lock", ".lease", ".pending")


def is_excluded(relpath: str) -> bool:
    """True when `relpath` (POSIX, relative to the contract folder) is never mirrored."""
    parts = relpath.split("/")
    name = parts[-1]
    if parts[0] in EXCLUDED_NAMES or name.endswith(EXCLUDED_SUFFIXES):
        return True
    if parts[0].startswith("audit.log.torn-"):
        return True
    # atomic_writer's temporary files (`.<name>.<random>.tmp`), and this mirror's own
    # downloads in progress (same pattern), and a delivery's `.<bundle>.partial`.
    return name.startswith(".") and name.endswith((".tmp", ".partial"))


@dataclass(frozen=True)
class Seen:
    """A local file as stat saw it: what tells a push it may skip rehashing."""

    size: int
    mtime_ns: int
    ino: int

    @classmethod
    def of(cls, st: os.stat_result) -> Seen:
        return cls(st.st_size, st.st_mtime_ns, st.st_ino)


def walk(root: Path, under: str = "") -> Iterator[tuple[str, Seen]]:
    """(relpath, Seen) of every mirrored regular file under `root/under`, symlinks not followed."""
    start = root / under if under else root
    try:
        st = os.lstat(start)
    except FileNotFoundError:
        return
    if stat.S_ISREG(st.st_mode):
        if not is_excluded(under):
            yield under, Seen.of(st)
        return
    if not stat.S_ISDIR(st.st_mode):
        return
    stack = [(start, under)]
    while stack:
        folder, rel = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except FileNotFoundError:
            continue
        for entry in entries:
            relpath = f"{rel}/{entry.name}" if rel else entry.name
            if is_excluded(relpath):
                continue
            if entry.is_dir(follow_symlinks=False):
                stack.append((Path(entry.path), relpath))
            elif entry.is_file(follow_symlinks=False):
                try:
                    yield relpath, Seen.of(entry.stat(follow_symlinks=False))
                except FileNotFoundError:
                    continue  # removed while walking: not there


class SyncState:
    """This worker's `.evidence-sync.json`: relpath -> {sha256, size, mtime_ns, ino}."""

    def __init__(self, root: Path) -> None:
        self.path = root / SYNC_STATE_FILE
        self.files: dict[str, dict[str, Any]] = {}
        try:
            data = json.loads(self.path.read_bytes())
            self.files = dict(data["files"])
        except FileNotFoundError:
            pass
        except (ValueError, KeyError, TypeError) as exc:
            raise HandoverError(
                f"{self.path}: unreadable ({exc}): remove it (the next push rehashes every file)"
            ) from None

    def seen(self, relpath: str) -> Seen | None:
        entry = self.files.get(relpath)
        if entry is None:
            return None
        return Seen(int(entry["size"]), int(entry["mtime_ns"]), int(entry["ino"]))

    def sha256(self, relpath: str) -> str | None:
        entry = self.files.get(relpath)
        return None if entry is None else str(entry["sha256"])

    def record(self, relpath: str, sha256: str, seen: Seen) -> None:
        self.files[relpath] = {
            "sha256": sha256,
            "size": seen.size,
            "mtime_ns": seen.mtime_ns,
            "ino": seen.ino,
        }

    def forget(self, relpath: str) -> None:
        self.files.pop(relpath, None)

    def save(self) -> None:
        data = json.dumps({"version": 1, "files": self.files}, sort_keys=True).encode()
        write_atomic(self.path, data)
