"""Where checklists live: stored, locked, audited and announced on every change.

State lives in `<root>/<contract>/checklists/<phase>.json`, rewritten
atomically on every change, and every change is appended to the contract's
hash-chained audit log `<root>/<contract>/audit.log`. The store serialises
changes with a lock per store (flows tick items from several threads) and
an `flock` on the checklists folder (several processes may run phases of
the same contract).

Every move goes through `reopen(..., reason)` or the state machine of
`handover.checklist.model`, and is recorded in the audit log. Flows
rerunning a phase call `prepare_rerun`, which reopens failed items and items
left `running` by a crashed run, and leaves done and waived items as they are
(they are skipped); reopening a done item is always an explicit, reasoned
decision.

The core knows nothing of Prefect: the Prefect layer registers a listener
(`add_listener`) to publish the table artifact and emit an event on each
change.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from handover.checklist.audit import AuditLog
from handover.checklist.model import (
    Checklist,
    ChecklistItem,
    Evidence,
    Status,
    apply_move,
    check_move,
)
from handover.checklist.templates import TemplateMerge, merge_templates, template_entries
from handover.errors import HandoverError, UsageError
from handover.phases import Phase, parse_phase
from handover.state.atomic import write_atomic
from handover.state.home import CONTRACT_ID_PATTERN, handover_home
from handover.state.layout import ContractPaths

log = logging.getLogger("handover.checklist")

Listener = Callable[[Checklist, ChecklistItem, Status | None], None]


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
        return self._paths(contract).checklist_file(parse_phase(phase))

    def audit_log(self, contract: str) -> AuditLog:
        """The contract's audit log (shared with other modules that record events)."""
        return AuditLog(self._paths(contract).audit_log)

    def _paths(self, contract: str) -> ContractPaths:
        if not CONTRACT_ID_PATTERN.match(contract):
            raise UsageError(
                f"contract id {contract!r}: must be a slug (lowercase letters, digits, dashes)"
            )
        return ContractPaths(contract, self.root)

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
        entries = template_entries(contract, phase, template_items)
        with self._locked(contract):
            path = self.path(contract, phase)
            created = not path.exists()
            checklist = (
                Checklist(contract=contract, phase=phase) if created else self.load(contract, phase)
            )
            merge = merge_templates(checklist, entries)
            if not (created or merge.changed):
                return checklist
            checklist.version += 1
            checklist.updated_at = datetime.now(UTC)
            write_atomic(path, _dump(checklist))
            self._audit_merge(checklist, created, merge)
            self._notify_merge(checklist, merge)
            return checklist

    def _audit_merge(self, checklist: Checklist, created: bool, merge: TemplateMerge) -> None:
        """One entry for the opening (or the added and the reworded items), one per waiver move."""
        audit = self.audit_log(checklist.contract)
        where = {"contract": checklist.contract, "phase": checklist.phase.value}
        if created:
            audit.append(
                "checklist.opened", "playbook", **where, items=[i.id for i in checklist.items]
            )
        else:
            if merge.added:
                audit.append("checklist.items-added", "playbook", **where, items=merge.added)
            if merge.reworded:
                audit.append("checklist.items-reworded", "playbook", **where, items=merge.reworded)
        for item, previous in merge.waived:
            audit.append(
                "checklist.waived",
                "playbook",
                **where,
                item=item.id,
                **{"from": previous.value if previous else None, "to": Status.WAIVED.value},
                reason=item.reason,
            )
        for item in merge.unwaived:
            audit.append(
                "checklist.reopened",
                "playbook",
                **where,
                item=item.id,
                **{"from": Status.WAIVED.value, "to": Status.PENDING.value},
                reason=item.reason,
            )

    def _notify_merge(self, checklist: Checklist, merge: TemplateMerge) -> None:
        for item, previous in merge.waived:
            self._notify(checklist, item, previous)
        for item in merge.unwaived:
            self._notify(checklist, item, Status.WAIVED)

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
            check_move(item, to, reason)
            now = datetime.now(UTC)
            dropped = apply_move(item, to, actor, now, reason, evidence)
            checklist.version += 1
            checklist.updated_at = now
            write_atomic(self.path(contract, phase), _dump(checklist))
            self._audit_change(checklist, item, previous, actor, dropped, evidence)
            self._notify(checklist, item, previous)
            return checklist

    def _audit_change(
        self,
        checklist: Checklist,
        item: ChecklistItem,
        previous: Status,
        actor: str,
        dropped: list[str],
        evidence: Sequence[Evidence],
    ) -> None:
        """`checklist.<status>` (or `checklist.reopened`): the move, its reason and evidence."""
        to = item.status
        data: dict[str, Any] = {
            "contract": checklist.contract,
            "phase": checklist.phase.value,
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
        self.audit_log(checklist.contract).append(event, actor, **data)

    @contextlib.contextmanager
    def _locked(self, contract: str) -> Iterator[None]:
        """Thread lock of this store, then an flock on the contract's checklists folder."""
        folder = self._paths(contract).checklists_dir
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


def _dump(checklist: Checklist) -> bytes:
    return checklist.model_dump_json(indent=2).encode("utf-8") + b"\n"
