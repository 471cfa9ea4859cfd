"""Checklist items and their state machine: what a phase requires, and the evidence it was done.

Each phase of a contract (takeover, implementation, operational,
reversibility) has one checklist. Its items come from the playbook's
templates; flows tick them as they work. An item moves only along

    pending → running → done
                      → failed
    pending → waived            (a reason is required)
    running → waived            (a reason is required)

and any other move raises InvalidTransition naming the item and both
statuses. The one way back is a reopen: it returns a running, failed, done
or waived item to pending, with a reason; the item's evidence moves to the
audit entry, so the item earns fresh evidence on its next run.

This module holds the models and the moves, as pure code: where checklists
are stored, locked and audited is `handover.checklist.store`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from handover.errors import HandoverError, InvalidTransition, UsageError
from handover.phases import Phase, checklist_name


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
    # A phase kept per period (the operational run: `2026-11`, `2026-q4`); None otherwise.
    period: str | None = None
    items: list[ChecklistItem] = []
    version: int = 0
    created_at: datetime = Field(default_factory=_now)
    updated_at: datetime = Field(default_factory=_now)

    @property
    def name(self) -> str:
        """`<phase>` or `<phase>-<period>`: the checklist's file name and its name in the log."""
        return checklist_name(self.phase, self.period)

    def item(self, item_id: str) -> ChecklistItem:
        """Return the item `item_id`; raises HandoverError naming the checklist if absent."""
        for candidate in self.items:
            if candidate.id == item_id:
                return candidate
        raise HandoverError(
            f"{self.contract}/{self.name}: no checklist item {item_id!r} "
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


def check_transition(item: ChecklistItem, to: Status) -> None:
    """Raise InvalidTransition unless `item` may move to `to` (reopen aside)."""
    if (item.status, to) not in ALLOWED_TRANSITIONS:
        raise InvalidTransition(
            f"checklist item {item.id!r}: cannot go from {item.status.value} to {to.value}"
        )


def check_move(item: ChecklistItem, to: Status, reason: str | None) -> None:
    """Raise unless `item` may move to `to` with `reason` (a reopen when `to` is pending).

    InvalidTransition for a move the state machine forbids; UsageError when
    a waiver, a failure or a reopen comes without a reason.
    """
    if to is Status.PENDING:
        if item.status not in REOPENABLE:
            raise InvalidTransition(
                f"checklist item {item.id!r}: cannot reopen, it is already pending"
            )
    else:
        check_transition(item, to)
    needs_reason = to in (Status.WAIVED, Status.FAILED, Status.PENDING)
    if needs_reason and not (reason and reason.strip()):
        verb = {Status.WAIVED: "waive", Status.FAILED: "fail", Status.PENDING: "reopen"}[to]
        raise UsageError(f"checklist item {item.id!r}: a reason is required to {verb} it")


def apply_move(
    item: ChecklistItem,
    to: Status,
    actor: str,
    now: datetime,
    reason: str | None = None,
    evidence: Sequence[Evidence] = (),
) -> list[str]:
    """Move `item` to `to` (checked first with `check_move`); return the evidence it dropped.

    Starting clears the reason and the finish time; finishing (done, failed,
    waived) records the reason; a reopen also clears the evidence, returned
    as short labels for the audit entry.
    """
    dropped: list[str] = []
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
    return dropped
