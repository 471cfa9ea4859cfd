"""The local folder as a state store: checklist files, the write-ahead record, the log file.

The embedded default (`HANDOVER_STATE_URL` unset or `file:`), exactly the
files `.handover/contracts/<contract>/` always held:

- `checklists/<name>.json`, rewritten atomically on every change;
- `audit.log`, the hash-chained log (`AuditLog` owns it: `flock`, torn
  tail, repair);
- `checklists/<name>.json.pending`, the write-ahead record that makes a
  checklist change and its audit entries one change although they are two
  files (see `handover.checklist.store`);
- blobs by their names in the contract folder (`vault.age`, `known_hosts`).

`lock(contract)` is an `flock` on the contract's checklists folder; a
killed process releases it with its file descriptors.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from handover.checklist.audit import AuditLog, canonical_json
from handover.errors import HandoverError
from handover.state.atomic import ensure_private_dir, write_atomic
from handover.state.home import CONTRACT_ID_PATTERN
from handover.state.layout import ContractPaths
from handover.state.store import (
    AuditChain,
    Journal,
    Record,
    StateConflict,
    blob_tag,
    check_blob_name,
)

log = logging.getLogger("handover.checklist")

PENDING_FORMAT = "handover-checklist-pending/1"


class LocalStore:
    """Contracts' state as files under `root` (one folder per contract)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    @property
    def where(self) -> str:
        return str(self.root)

    def paths(self, contract: str) -> ContractPaths:
        return ContractPaths(contract, self.root)

    def checklist_path(self, contract: str, name: str) -> Path:
        return self.paths(contract).checklist_file(name)

    def pending_path(self, contract: str, name: str) -> Path:
        path = self.checklist_path(contract, name)
        return path.with_name(path.name + ".pending")

    @contextlib.contextmanager
    def lock(self, contract: str) -> Iterator[None]:
        """An `flock` on the contract's checklists folder (released when the fd closes)."""
        folder = self.paths(contract).checklists_dir
        ensure_private_dir(folder)
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the flock

    def contracts(self) -> list[str]:
        """The contract folders under the root (named as contract ids), sorted."""
        if not self.root.is_dir():
            return []
        return sorted(
            p.name for p in self.root.iterdir() if p.is_dir() and CONTRACT_ID_PATTERN.match(p.name)
        )

    # -- checklists ---------------------------------------------------------

    def read_checklist(self, contract: str, name: str) -> bytes | None:
        try:
            return self.checklist_path(contract, name).read_bytes()
        except FileNotFoundError:
            return None

    def checklist_names(self, contract: str) -> list[str]:
        folder = self.paths(contract).checklists_dir
        return sorted(p.name.removesuffix(".json") for p in folder.glob("*.json"))

    def commit_checklist(
        self,
        contract: str,
        name: str,
        expected_version: int,
        state: bytes,
        records: Sequence[Record],
    ) -> list[dict[str, Any]]:
        """Pending record, then audit entries, then the checklist (see `handover.checklist.store`).

        The caller holds `lock(contract)`; the version check guards against
        a caller that read before taking it.
        """
        stored = _version(self.read_checklist(contract, name))
        if stored != expected_version:
            raise StateConflict(
                f"{self.checklist_path(contract, name)}: checklist is at version {stored}, "
                f"this change was made on version {expected_version}: reload"
            )
        digest = hashlib.sha256(state).hexdigest()
        entries: list[dict[str, Any]] = [{"event": e, "actor": a, "data": d} for e, a, d in records]
        pending = self.pending_path(contract, name)
        record = {
            "format": PENDING_FORMAT,
            "contract": contract,
            "phase": name,
            "state_sha256": digest,
            "entries": entries,
            "state": state.decode("utf-8"),
        }
        write_atomic(pending, canonical_json(record) + b"\n")
        audit = self._log(contract)
        written: list[dict[str, Any]] = []
        for number, entry in enumerate(entries):
            try:
                written.append(audit.append(entry["event"], entry["actor"], **entry["data"]))
            except Exception:
                if number == 0:  # nothing in the log yet: the change did not happen
                    pending.unlink(missing_ok=True)
                raise
        write_atomic(self.checklist_path(contract, name), state)
        pending.unlink()
        return written

    def pending(self, contract: str, name: str) -> str | None:
        pending = self.pending_path(contract, name)
        return pending.name if pending.exists() else None

    def recover(self, contract: str, name: str) -> None:
        """Complete a change a crash left between its pending record and its checklist file.

        The caller holds `lock(contract)`. Appends the entries of the record
        the log does not hold yet, writes the checklist, removes the record.
        Raises HandoverError naming the record when it cannot be read or
        the log refuses the entries.
        """
        pending = self.pending_path(contract, name)
        if not pending.exists():  # another thread or process completed it meanwhile
            return
        state, digest, entries = _read_pending(pending)
        audit = self._log(contract)
        present = sum(
            1
            for entry in audit.readable_entries()
            if isinstance(entry.get("data"), dict) and entry["data"].get("state_sha256") == digest
        )
        try:
            for entry in entries[present:]:
                audit.append(entry["event"], entry["actor"], **entry["data"])
        except HandoverError as exc:
            raise HandoverError(
                f"{pending}: a checklist change waits for its audit entries and the log "
                f"refuses them: {exc}"
            ) from exc
        write_atomic(self.checklist_path(contract, name), state)
        pending.unlink()
        log.warning(
            "%s: completed a checklist change a crash interrupted (%d audit entries added)",
            pending,
            len(entries) - present,
        )

    # -- the audit chain and blobs ------------------------------------------

    def audit_chain(self, contract: str) -> AuditChain | None:
        return None  # the log file, which AuditLog owns

    def _log(self, contract: str) -> AuditLog:
        return AuditLog(self.paths(contract).audit_log)

    def journal(self, contract: str, name: str) -> Journal | None:
        return None  # the file, which its owner keeps (CheckpointFile: flock, fsync)

    def read_blob(self, contract: str, name: str) -> bytes | None:
        try:
            return self._blob_path(contract, name).read_bytes()
        except FileNotFoundError:
            return None

    def write_blob(self, contract: str, name: str, data: bytes) -> None:
        write_atomic(self._blob_path(contract, name), data)

    def delete_blob(self, contract: str, name: str) -> bool:
        path = self._blob_path(contract, name)
        with _flocked(path.with_name(path.name + ".lock")):
            try:
                path.unlink()
            except FileNotFoundError:
                return False
        return True

    def read_blob_tagged(self, contract: str, name: str) -> tuple[bytes | None, str]:
        data = self.read_blob(contract, name)
        return data, blob_tag(data)

    def write_blob_if(self, contract: str, name: str, data: bytes, expected: str) -> str:
        """Compare and write under the blob's `<name>.lock` `flock`.

        The same lock file the vault and known_hosts writers take, so their
        own locked read-modify-writes and this one exclude each other.
        """
        path = self._blob_path(contract, name)
        with _flocked(path.with_name(path.name + ".lock")):
            try:
                current = path.read_bytes()
            except FileNotFoundError:
                current = None
            if blob_tag(current) != expected:
                raise StateConflict(
                    f"{path}: changed by another process since it was read: read again"
                )
            write_atomic(path, data)
        return blob_tag(data)

    def _blob_path(self, contract: str, name: str) -> Path:
        paths = self.paths(contract)
        known = {"vault.age": paths.vault_file, "known_hosts": paths.known_hosts}
        return known.get(check_blob_name(name), paths.root / name)


@contextlib.contextmanager
def _flocked(lock_path: Path) -> Iterator[None]:
    """An exclusive `flock` on `lock_path` (created private), released when its fd closes."""
    ensure_private_dir(lock_path.parent)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _version(data: bytes | None) -> int:
    """The `version` a stored checklist says (0 when there is none yet or it says none)."""
    if data is None:
        return 0
    try:
        value = json.loads(data).get("version", 0)
    except (ValueError, AttributeError):
        return -1  # unreadable: no version matches, the caller's load reports it
    return value if isinstance(value, int) else -1


def _read_pending(pending: Path) -> tuple[bytes, str, list[dict[str, Any]]]:
    """The state, its SHA-256 and the entries of a pending record; HandoverError if damaged."""
    try:
        record = json.loads(pending.read_bytes())
        state = str(record["state"]).encode("utf-8")
        digest = str(record["state_sha256"])
        entries = [
            {"event": str(e["event"]), "actor": str(e["actor"]), "data": dict(e["data"])}
            for e in record["entries"]
        ]
    except (ValueError, KeyError, TypeError) as exc:
        raise HandoverError(
            f"{pending}: damaged pending checklist change ({exc}); "
            "compare it with the audit log before removing it"
        ) from exc
    if hashlib.sha256(state).hexdigest() != digest:
        raise HandoverError(
            f"{pending}: pending checklist change does not match its own hash (edited?)"
        )
    return state, digest, entries
