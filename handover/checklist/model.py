"""Tracked checklists: what a phase of the contract requires, and the evidence that it was done.

Each phase of a contract (takeover, implementation, operational,
reversibility) has one checklist. Its items come from the playbook's
templates; flows tick them as they work. An item moves only along

    pending → running → done
                      → failed
    pending → waived            (a reason is required)
    running → waived            (a reason is required)

and any other move raises InvalidTransition naming the item and both
statuses. The one way back is `reopen(..., reason)`: it returns a running,
failed, done or waived item to pending and is recorded in the audit log
like every other change; the item's evidence moves to that audit entry, so
the item earns fresh evidence on its next run. Flows rerunning a phase call `prepare_rerun`,
which reopens failed items and items left `running` by a crashed run, and
leaves done and waived items as they are (they are skipped); reopening a
done item is always an explicit, reasoned decision.

State lives in `<root>/<contract>/checklists/<phase>.json`, rewritten
atomically on every change, and every change is appended to the contract's
hash-chained audit log `<root>/<contract>/audit.log`. The store serialises
changes with a lock per store (flows tick items from several threads) and
an `flock` on the checklists folder (several processes may run phases of
the same contract).

The core knows nothing of Prefect: the Prefect layer registers a listener
(`add_listener`) to publish the table artifact and emit an event on each
change.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from handover.checklist.audit import AuditLog
from handover.contract.phases import Phase, parse_phase
from handover.errors import HandoverError, InvalidTransition, UsageError
from handover.state.atomic import write_atomic
from handover.state.home import handover_home

log = logging.getLogger("handover.checklist")

_CONTRACT_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
_ITEM_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")


def _now() -> datetime:
    return datetime.now(UTC)


class Status(StrEnum):
    """Where a checklist item stands."""

    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    WAIVED = "waived"


#: The only moves `start`, `complete`, `fail` and `waive` may make.
ALLOWED_TRANSITIONS: frozenset[tuple[Status, Status]] = frozenset(
    {
        (Status.PENDING, Status.RUNNING),
        (Status.RUNNING, Status.DONE),
        (Status.RUNNING, Status.FAILED),
        (Status.PENDING, Status.WAIVED),
        (Status.RUNNING, Status.WAIVED),
    }
)

#: Statuses `reopen` brings back to pending (everything but pending itself).
REOPENABLE: frozenset[Status] = frozenset(
    {Status.RUNNING, Status.FAILED, Status.DONE, Status.WAIVED}
)


class Evidence(BaseModel):
    """A reference to what proves an item was done: a file and its hash, a run, an artifact.

    Evidence never holds the data itself (nor any secret): only where it is
    and how to check it.
    """

    model_config = ConfigDict(extra="forbid")

    kind: str
    path: str | None = None
    sha256: str | None = None
    flow_run_id: str | None = None
    artifact: str | None = None
    note: str | None = None
    recorded_at: datetime = Field(default_factory=_now)

    def short(self) -> str:
        """One short label for tables: file name and the first 12 hex digits of its hash."""
        if self.path:
            label = Path(self.path).name or self.path
        elif self.artifact:
            label = self.artifact
        elif self.note:
            label = self.note if len(self.note) <= 40 else self.note[:39] + "…"
        elif self.flow_run_id:
            label = f"run {self.flow_run_id[:8]}"
        else:
            label = self.kind
        if self.sha256:
            label += f" ({self.sha256[:12]})"
        return label


class ChecklistItem(BaseModel):
    """One obligation of a phase, its status and its evidence.

    `reason` is the failure reason (failed), the waiver reason (waived) or
    the reopening reason (pending after a reopen); it is cleared on start.
    `actor` is who made the last change.
    """

    model_config = ConfigDict(extra="forbid")

    id: str
    title: str
    clause: str = ""
    owner: str = "provider"
    evidence_kind: str = "document"
    status: Status = Status.PENDING
    reason: str | None = None
    evidence: list[Evidence] = []
    created_at: datetime = Field(default_factory=_now)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    updated_at: datetime = Field(default_factory=_now)
    actor: str = "handover"


class Checklist(BaseModel):
    """The checklist of one phase of one contract. `version` counts saved changes."""

    model_config = ConfigDict(extra="forbid")

    contract: str
    phase: Phase
    items: list[ChecklistItem] = []
    version: int = 0
    created_at: datetime = Field(default_factory=_now)
    updated_at: datetime = Field(default_factory=_now)

    def item(self, item_id: str) -> ChecklistItem:
        """Return the item `item_id`; raises HandoverError naming the checklist if absent."""
        for candidate in self.items:
            if candidate.id == item_id:
                return candidate
        raise HandoverError(
            f"{self.contract}/{self.phase}: no checklist item {item_id!r} "
            f"(items: {', '.join(i.id for i in self.items) or 'none'})"
        )

    def summary(self) -> dict[str, int]:
        """Counts per status (every status present, zero included) and `total`."""
        counts = {status.value: 0 for status in Status}
        for entry in self.items:
            counts[entry.status.value] += 1
        counts["total"] = len(self.items)
        return counts

    @property
    def is_complete(self) -> bool:
        """True when every item is done or waived (an empty checklist is complete)."""
        return all(i.status in (Status.DONE, Status.WAIVED) for i in self.items)

    @property
    def failed(self) -> list[ChecklistItem]:
        """Items that failed, for a flow's final verdict."""
        return [i for i in self.items if i.status is Status.FAILED]

    def as_rows(self) -> list[dict[str, str]]:
        """Rows for a table artifact or a report: plain strings, evidence shortened."""
        return [
            {
                "id": entry.id,
                "title": entry.title,
                "status": entry.status.value,
                "owner": entry.owner,
                "clause": entry.clause,
                "evidence": ", ".join(e.short() for e in entry.evidence),
                "reason": entry.reason or "",
                "updated_at": entry.updated_at.isoformat(timespec="seconds"),
                "actor": entry.actor,
            }
            for entry in self.items
        ]


Listener = Callable[[Checklist, ChecklistItem, Status | None], None]


def evidence_for_file(
    path: Path, kind: str, flow_run_id: str | None = None, note: str | None = None
) -> Evidence:
    """Evidence for a file: its path and SHA-256, computed by streaming (any size).

    Raises HandoverError naming the file if it cannot be read.
    """
    try:
        with Path(path).open("rb") as handle:
            digest = hashlib.file_digest(handle, "sha256").hexdigest()
    except OSError as exc:
        raise HandoverError(f"{path}: cannot read evidence file: {exc.strerror}") from exc
    return Evidence(kind=kind, path=str(path), sha256=digest, flow_run_id=flow_run_id, note=note)


def draft_checklist(
    contract: str, phase: Phase | str, template_items: Sequence[Mapping[str, Any]]
) -> Checklist:
    """A checklist built from template items without storing anything (version 0).

    For showing a phase that was never opened: items are pending, or waived
    when the template carries a waived_reason.
    """
    phase = parse_phase(phase)
    checklist = Checklist(contract=contract, phase=phase)
    for raw in template_items:
        entry = _template(contract, phase, raw)
        reason = entry.pop("waived_reason", None)
        item = ChecklistItem(**entry, actor="playbook")
        if reason:
            item.status, item.reason = Status.WAIVED, reason
        checklist.items.append(item)
    return checklist


def check_transition(item: ChecklistItem, to: Status) -> None:
    """Raise InvalidTransition unless `item` may move to `to` (reopen aside)."""
    if (item.status, to) not in ALLOWED_TRANSITIONS:
        raise InvalidTransition(
            f"checklist item {item.id!r}: cannot go from {item.status.value} to {to.value}"
        )


class ChecklistStore:
    """Persistent checklists of every contract under `root`.

    Default root: `handover_home() / "contracts"`, so a contract's state is
    `.handover/contracts/<contract>/` (checklists and audit log side by side).
    Every method that changes an item returns the updated Checklist, after
    the new state is on disk and in the audit log, and after listeners ran.
    """

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else handover_home() / "contracts"
        self._lock = threading.RLock()
        self._listeners: list[Listener] = []
        self._held: dict[str, int] = {}  # flock depth per contract, guarded by _lock

    # -- paths -------------------------------------------------------------

    def path(self, contract: str, phase: Phase | str) -> Path:
        """Where the checklist of `contract`/`phase` is stored."""
        return self._contract_dir(contract) / "checklists" / f"{parse_phase(phase).value}.json"

    def audit_log(self, contract: str) -> AuditLog:
        """The contract's audit log (shared with other modules that record events)."""
        return AuditLog(self._contract_dir(contract) / "audit.log")

    def _contract_dir(self, contract: str) -> Path:
        if not _CONTRACT_ID.match(contract):
            raise UsageError(
                f"contract id {contract!r}: must be a slug (lowercase letters, digits, dashes)"
            )
        return self.root / contract

    # -- listeners ---------------------------------------------------------

    def add_listener(self, callback: Listener) -> None:
        """Call `callback(checklist, item, previous_status)` after each item change.

        Called with the store's lock held, so calls arrive in the order of
        the changes (artifact versions follow the state). `previous_status`
        is None for an item created already waived. Creating pending items
        at `open` notifies nobody: publish the returned checklist yourself.
        A listener must not raise: the change is already saved and audited,
        so an exception is logged and the other listeners still run.
        """
        with self._lock:
            self._listeners.append(callback)

    def remove_listener(self, callback: Listener) -> None:
        """Stop calling `callback` (no error if it was not registered)."""
        with self._lock, contextlib.suppress(ValueError):
            self._listeners.remove(callback)

    def _notify(self, checklist: Checklist, item: ChecklistItem, previous: Status | None) -> None:
        for callback in list(self._listeners):
            try:
                callback(checklist, item, previous)
            except Exception:
                log.exception(
                    "checklist listener failed for %s/%s item %s",
                    checklist.contract,
                    checklist.phase.value,
                    item.id,
                )

    # -- reading -----------------------------------------------------------

    def exists(self, contract: str, phase: Phase | str) -> bool:
        """True if the checklist was opened before."""
        return self.path(contract, phase).exists()

    def load(self, contract: str, phase: Phase | str) -> Checklist:
        """Load a stored checklist. Raises HandoverError if it was never opened or is corrupt."""
        path = self.path(contract, phase)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise HandoverError(
                f"{path}: no {parse_phase(phase).value} checklist for contract {contract!r} yet"
            ) from None
        try:
            return Checklist.model_validate_json(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise HandoverError(f"{path}: corrupt checklist: {where}: {first['msg']}") from exc

    # -- changes -----------------------------------------------------------

    def open(
        self, contract: str, phase: Phase | str, template_items: Sequence[Mapping[str, Any]]
    ) -> Checklist:
        """Create the checklist from template items, or load it and merge new template items.

        Template items are dicts with id, title, clause, owner, evidence_kind
        and optional waived_reason. Existing items keep their status and
        evidence; their title, clause, owner and evidence kind follow the
        template (a playbook may reword them). A new item with waived_reason
        starts waived; an existing pending item whose template now carries a
        waived_reason is waived (actor `playbook`), and an item the playbook
        waived returns to pending when the playbook drops the waiver (a
        waiver by a person stays). Items no longer in the template are kept:
        their history stays visible.
        """
        phase = parse_phase(phase)
        templates = [_template(contract, phase, t) for t in template_items]
        seen: set[str] = set()
        for entry in templates:
            if entry["id"] in seen:
                raise UsageError(
                    f"{contract}/{phase.value}: duplicate checklist item {entry['id']!r}"
                )
            seen.add(entry["id"])
        with self._locked(contract):
            path = self.path(contract, phase)
            created = not path.exists()
            checklist = (
                Checklist(contract=contract, phase=phase) if created else self.load(contract, phase)
            )
            audit = self.audit_log(contract)
            added: list[str] = []
            updated: list[str] = []
            waived: list[tuple[ChecklistItem, Status | None]] = []
            unwaived: list[ChecklistItem] = []
            for entry in templates:
                reason = entry.pop("waived_reason", None)
                current = next((i for i in checklist.items if i.id == entry["id"]), None)
                if current is None:
                    item = ChecklistItem(**entry, actor="playbook")
                    if reason:
                        item.status, item.reason = Status.WAIVED, reason
                        item.finished_at = item.updated_at
                        waived.append((item, None))
                    checklist.items.append(item)
                    added.append(item.id)
                    continue
                changed = {k: v for k, v in entry.items() if getattr(current, k) != v}
                if changed:
                    for key, value in changed.items():
                        setattr(current, key, value)
                    updated.append(current.id)
                if reason and current.status is Status.PENDING:
                    now = _now()
                    current.status, current.reason, current.actor = (
                        Status.WAIVED,
                        reason,
                        "playbook",
                    )
                    current.finished_at = current.updated_at = now
                    waived.append((current, Status.PENDING))
                elif not reason and current.status is Status.WAIVED and current.actor == "playbook":
                    # the playbook dropped its waiver: the obligation is back
                    current.status, current.reason = (
                        Status.PENDING,
                        "waiver removed from the playbook",
                    )
                    current.finished_at, current.updated_at = None, _now()
                    unwaived.append(current)
            if not (created or added or updated or waived or unwaived):
                return checklist
            checklist.version += 1
            checklist.updated_at = _now()
            write_atomic(path, _dump(checklist))
            if created:
                audit.append(
                    "checklist.opened",
                    "playbook",
                    contract=contract,
                    phase=phase.value,
                    items=[i.id for i in checklist.items],
                )
            else:
                if added:
                    audit.append(
                        "checklist.items-added",
                        "playbook",
                        contract=contract,
                        phase=phase.value,
                        items=added,
                    )
                if updated:
                    audit.append(
                        "checklist.items-reworded",
                        "playbook",
                        contract=contract,
                        phase=phase.value,
                        items=updated,
                    )
            for item, previous in waived:
                audit.append(
                    "checklist.waived",
                    "playbook",
                    contract=contract,
                    phase=phase.value,
                    item=item.id,
                    **{"from": previous.value if previous else None, "to": Status.WAIVED.value},
                    reason=item.reason,
                )
            for item in unwaived:
                audit.append(
                    "checklist.reopened",
                    "playbook",
                    contract=contract,
                    phase=phase.value,
                    item=item.id,
                    **{"from": Status.WAIVED.value, "to": Status.PENDING.value},
                    reason=item.reason,
                )
            for item, previous in waived:
                self._notify(checklist, item, previous)
            for item in unwaived:
                self._notify(checklist, item, Status.WAIVED)
            return checklist

    def start(self, contract: str, phase: Phase | str, item_id: str, actor: str) -> Checklist:
        """pending → running."""
        return self._change(contract, phase, item_id, actor, Status.RUNNING)

    def complete(
        self,
        contract: str,
        phase: Phase | str,
        item_id: str,
        actor: str,
        evidence: Sequence[Evidence] = (),
    ) -> Checklist:
        """running → done, appending `evidence` to the item."""
        return self._change(contract, phase, item_id, actor, Status.DONE, evidence=evidence)

    def fail(
        self, contract: str, phase: Phase | str, item_id: str, actor: str, reason: str
    ) -> Checklist:
        """running → failed, recording `reason` (required: say what went wrong and where)."""
        return self._change(contract, phase, item_id, actor, Status.FAILED, reason=reason)

    def waive(
        self, contract: str, phase: Phase | str, item_id: str, actor: str, reason: str
    ) -> Checklist:
        """pending or running → waived; a non-empty `reason` is required."""
        return self._change(contract, phase, item_id, actor, Status.WAIVED, reason=reason)

    def reopen(
        self, contract: str, phase: Phase | str, item_id: str, actor: str, reason: str
    ) -> Checklist:
        """The one way back: running, failed, done or waived → pending, with a reason.

        Evidence gathered before is kept (it stays in the history); the
        reason and the reopening are recorded in the audit log.
        """
        return self._change(contract, phase, item_id, actor, Status.PENDING, reason=reason)

    def prepare_rerun(self, contract: str, phase: Phase | str, actor: str) -> Checklist:
        """Reopen the failed items, and the running ones a crashed run left, before a rerun.

        Done and waived items are left alone: a rerun skips them. Returns the
        checklist (unchanged if nothing needed reopening).
        """
        with self._locked(contract):
            checklist = self.load(contract, phase)
            for entry in checklist.items:
                if entry.status in (Status.FAILED, Status.RUNNING):
                    checklist = self.reopen(
                        contract,
                        phase,
                        entry.id,
                        actor,
                        f"rerun of the phase ({entry.status.value})",
                    )
            return checklist

    def _change(
        self,
        contract: str,
        phase: Phase | str,
        item_id: str,
        actor: str,
        to: Status,
        *,
        reason: str | None = None,
        evidence: Sequence[Evidence] = (),
    ) -> Checklist:
        phase = parse_phase(phase)
        if not actor:
            raise UsageError(f"{contract}/{phase.value}/{item_id}: an actor is required")
        with self._locked(contract):
            checklist = self.load(contract, phase)
            item = checklist.item(item_id)
            previous = item.status
            if to is Status.PENDING:
                if previous not in REOPENABLE:
                    raise InvalidTransition(
                        f"checklist item {item.id!r}: cannot reopen, it is already pending"
                    )
            else:
                check_transition(item, to)
            dropped: list[str] = []
            needs_reason = to in (Status.WAIVED, Status.FAILED, Status.PENDING)
            if needs_reason and not (reason and reason.strip()):
                verb = {Status.WAIVED: "waive", Status.FAILED: "fail", Status.PENDING: "reopen"}[to]
                raise UsageError(f"checklist item {item.id!r}: a reason is required to {verb} it")
            now = _now()
            item.status = to
            item.actor = actor
            item.updated_at = now
            if to is Status.RUNNING:
                item.started_at, item.finished_at, item.reason = now, None, None
            elif to is Status.PENDING:
                item.started_at, item.finished_at = None, None
                item.reason = reason.strip() if reason else None
                # A reopened item earns its evidence again: files of the earlier run may be
                # rewritten, so their hashes would no longer hold. The audit log keeps them.
                dropped = [e.short() for e in item.evidence]
                item.evidence = []
            else:
                item.finished_at = now
                item.reason = reason.strip() if reason else None
            item.evidence.extend(Evidence.model_validate(e.model_dump()) for e in evidence)
            checklist.version += 1
            checklist.updated_at = now
            write_atomic(self.path(contract, phase), _dump(checklist))
            data: dict[str, Any] = {
                "contract": contract,
                "phase": phase.value,
                "item": item.id,
                "from": previous.value,
                "to": to.value,
            }
            if item.reason:
                data["reason"] = item.reason
            if to is Status.PENDING and dropped:
                data["previous_evidence"] = dropped
            if evidence:
                data["evidence"] = [
                    e.model_dump(mode="json", exclude_none=True, exclude={"recorded_at"})
                    for e in evidence
                ]
            event = "checklist.reopened" if to is Status.PENDING else f"checklist.{to.value}"
            self.audit_log(contract).append(event, actor, **data)
            self._notify(checklist, item, previous)
            return checklist

    @contextlib.contextmanager
    def _locked(self, contract: str) -> Iterator[None]:
        """Thread lock of this store, then an flock on the contract's checklists folder."""
        folder = self._contract_dir(contract) / "checklists"
        with self._lock:
            if self._held.get(contract):  # re-entered (prepare_rerun → reopen): flock held
                self._held[contract] += 1
                try:
                    yield
                finally:
                    self._held[contract] -= 1
                return
            folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                self._held[contract] = 1
                yield
            finally:
                self._held[contract] = 0
                os.close(fd)  # closing releases the flock


def _template(contract: str, phase: Phase, raw: Mapping[str, Any]) -> dict[str, Any]:
    """Validate one template item dict; keep only the fields an item takes from a template."""
    where = f"{contract}/{phase.value}"
    item_id = raw.get("id")
    if not isinstance(item_id, str) or not _ITEM_ID.match(item_id):
        raise UsageError(f"{where}: checklist item id {item_id!r} is not a slug")
    if not isinstance(raw.get("title"), str) or not raw["title"].strip():
        raise UsageError(f"{where}/{item_id}: title is required")
    result: dict[str, Any] = {"id": item_id, "title": raw["title"]}
    for key in ("clause", "owner", "evidence_kind"):
        value = raw.get(key)
        if value is not None:
            result[key] = str(value)
    waived = raw.get("waived_reason")
    if waived is not None and str(waived).strip():
        result["waived_reason"] = str(waived).strip()
    return result


def _dump(checklist: Checklist) -> bytes:
    return checklist.model_dump_json(indent=2).encode("utf-8") + b"\n"
