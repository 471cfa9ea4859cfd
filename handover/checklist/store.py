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

A change and its audit entry never exist one without the other. Two files
cannot be written at once, so each change goes through a write-ahead
record, under the contract's lock:

1. `<phase>.json.pending` is written atomically: the new checklist and the
   audit entries that describe it, each entry carrying the checklist's new
   `version` and the SHA-256 of its bytes (`state_sha256`);
2. the entries are appended to the audit log;
3. the checklist file is replaced by the new state and the pending record
   removed.

If appending the first entry fails (a torn log, a full disk), the pending
record is removed and the error raised: nothing happened. Once an entry is
in the log the change is decided: a crash, or a failure of a later entry,
leaves the pending record, and the next `load`, `exists` or `open` of that
checklist rolls it forward under the lock: it appends the entries the log
does not hold yet (found by `state_sha256`) and writes the checklist. A
reader therefore never sees a state the log does not describe, nor a log
entry whose state was lost. A checklist file replaced behind the store's
back (an old copy restored) is not repaired: `cross_check` reports it.

Where the state is kept is the state store's business
(`handover.state.store`): the files described here are `LocalStore`'s
(`handover.checklist.local_store`); with `HANDOVER_STATE_URL=postgresql://...`
the checklists and the log are rows of one database every worker shares
(`handover.state.postgres`): a change and its entries are one transaction
and there is no pending record. Either way a commit is a compare-and-set on
the checklist's version, made under the contract's lock.

Per-item entries also carry `changed_at`, the item's `updated_at`, so that
`cross_check` can compare each item's status, actor and time with the last
entry the log holds for it.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from handover.checklist.audit import AuditLog
from handover.checklist.checkpoints import CheckpointFile
from handover.checklist.local_store import LocalStore
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
from handover.phases import PHASES, Phase, checklist_name, parse_checklist_name
from handover.state.atomic import atomic_writer, write_atomic
from handover.state.home import CONTRACT_ID_PATTERN, handover_home
from handover.state.layout import ContractPaths
from handover.state.store import ContractStore, Record, state_url

log = logging.getLogger("handover.checklist")

Listener = Callable[[Checklist, ChecklistItem, Status | None], None]
_LEGACY_TIME_SLACK_S = 60.0  # entries written before `changed_at`: item time vs entry time


class ChecklistStore:
    """Persistent checklists of every contract under `root`.

    Default root: `handover_home() / "contracts"`, so a contract's state is
    `.handover/contracts/<contract>/` (checklists and audit log side by side).
    Every method that changes an item returns the updated Checklist, after
    the new state is on disk and in the audit log, and after listeners ran.
    """

    def __init__(self, root: Path | None = None, state: ContractStore | None = None) -> None:
        """`state`: where checklists and logs are kept; default: the folder `root` when
        given (a folder is read as a folder), else the store `HANDOVER_STATE_URL` names."""
        self.state: ContractStore = state if state is not None else open_contract_store(root)
        if root is None:
            root = self.state.root if isinstance(self.state, LocalStore) else _home_root()
        self.root = Path(root)
        self._lock = threading.RLock()
        self._listeners: list[Listener] = []
        self._held: dict[str, int] = {}  # flock depth per contract, guarded by _lock

    # -- paths -------------------------------------------------------------

    def path(self, contract: str, phase: Phase | str) -> Path:
        """Where the checklist of `contract`/`phase` is stored (`phase`: or a period's name)."""
        return self._paths(contract).checklist_file(checklist_name(*parse_checklist_name(phase)))

    def audit_log(self, contract: str) -> AuditLog:
        """The contract's audit log (shared with other modules that record events)."""
        return AuditLog(self._paths(contract).audit_log, self.state.audit_chain(contract))

    def checkpoints_path(self, contract: str) -> Path:
        """Where the signed checkpoints of the contract's audit log are kept (as a file)."""
        return self._paths(contract).audit_checkpoints

    def checkpoints(self, contract: str) -> CheckpointFile:
        """The signed checkpoints of the contract's audit log, wherever the state keeps them."""
        return CheckpointFile(
            self.checkpoints_path(contract), self.state.journal(contract, "audit-checkpoints")
        )

    def pending_path(self, contract: str, phase: Phase | str) -> Path:
        """The write-ahead record of a change not yet complete (see the module docstring)."""
        path = self.path(contract, phase)
        return path.with_name(path.name + ".pending")

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
                    checklist.name,
                    item.id,
                )

    # -- reading -----------------------------------------------------------

    def exists(self, contract: str, phase: Phase | str) -> bool:
        """True if the checklist was opened before."""
        self._recover(contract, phase)
        return self._read_bytes(contract, phase) is not None

    def load(self, contract: str, phase: Phase | str) -> Checklist:
        """Load a stored checklist. Raises HandoverError if it was never opened or is corrupt.

        A change a crash left half done is completed first (see the module docstring).
        """
        self._recover(contract, phase)
        return self._read(contract, phase)

    def _read(self, contract: str, phase: Phase | str) -> Checklist:
        data = self._read_bytes(contract, phase)
        if data is None:
            raise HandoverError(
                f"{self._where(contract, phase)}: no {_name(phase)} checklist "
                f"for contract {contract!r} yet"
            )
        return self._parse(contract, phase, data)

    def _read_bytes(self, contract: str, phase: Phase | str) -> bytes | None:
        self._paths(contract)  # checks the contract id
        return self.state.read_checklist(contract, _name(phase))

    def _where(self, contract: str, phase: Phase | str) -> str:
        """How messages name a checklist: its file, or its place in the state store."""
        if isinstance(self.state, LocalStore):
            return str(self.path(contract, phase))
        return f"{self.state.where} checklist {contract}/{_name(phase)}"

    def _parse(self, contract: str, phase: Phase | str, data: bytes) -> Checklist:
        path = self._where(contract, phase)
        try:
            return Checklist.model_validate_json(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise HandoverError(f"{path}: corrupt checklist: {where}: {first['msg']}") from exc

    def periods(self, contract: str, phase: Phase | str = Phase.OPERATIONAL) -> list[str]:
        """The names of the stored period checklists of the phase (`operational-2026-11`, ...)."""
        self._paths(contract)  # checks the contract id
        prefix = f"{Phase(phase).value}-"
        names = self.state.checklist_names(contract)
        return sorted(n for n in names if n.startswith(prefix) and _is_period_name(n))

    def current(self, contract: str, phase: Phase | str) -> str | None:
        """The checklist that stands for the phase now: the newest period's, else the phase's.

        The operational run keeps one checklist per period; the newest
        (last updated) is the one status and reports show for the phase.
        None when the phase has no checklist yet.
        """
        periods = self.periods(contract, phase)
        if periods:
            return max(periods, key=lambda name: self.load(contract, name).updated_at)
        return Phase(phase).value if self.exists(contract, phase) else None

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
        phase, period = parse_checklist_name(phase)
        name = checklist_name(phase, period)
        entries = template_entries(contract, phase, template_items)
        with self._locked(contract):
            self._recover(contract, name)
            stored = self._read_bytes(contract, name)
            created = stored is None
            if stored is None:
                checklist = Checklist(contract=contract, phase=phase, period=period)
            else:
                checklist = self._parse(contract, name, stored)
            merge = merge_templates(checklist, entries)
            if not (created or merge.changed):
                return checklist
            checklist.version += 1
            checklist.updated_at = datetime.now(UTC)
            self._commit(checklist, _merge_records(checklist, created, merge))
            self._notify_merge(checklist, merge)
            return checklist

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
        phase = checklist_name(*parse_checklist_name(phase))
        if not actor:
            raise UsageError(f"{contract}/{phase}/{item_id}: an actor is required")
        with self._locked(contract):
            checklist = self.load(contract, phase)
            item = checklist.item(item_id)
            previous = item.status
            check_move(item, to, reason)
            now = datetime.now(UTC)
            dropped = apply_move(item, to, actor, now, reason, evidence)
            checklist.version += 1
            checklist.updated_at = now
            record = _change_record(checklist, item, previous, actor, dropped, evidence)
            self._commit(checklist, [record])
            self._notify(checklist, item, previous)
            return checklist

    # -- one change: the checklist with its audit entries -------------------------

    def _commit(self, checklist: Checklist, records: Sequence[Record]) -> None:
        """The new state and its audit entries, if nobody changed the checklist since it was read.

        Every entry carries the checklist's new `version` and the SHA-256 of
        its bytes (`state_sha256`); the state store writes both as one change
        (see the module docstring) or raises StateConflict and writes nothing.
        """
        state = _dump(checklist)
        digest = hashlib.sha256(state).hexdigest()
        stamped: list[Record] = [
            (event, who, {**data, "version": checklist.version, "state_sha256": digest})
            for event, who, data in records
        ]
        self.state.commit_checklist(
            checklist.contract, checklist.name, checklist.version - 1, state, stamped
        )

    def _recover(self, contract: str, phase: Phase | str) -> None:
        """Complete a change a crash left half done (the local store's pending record)."""
        name = _name(phase)
        self._paths(contract)  # checks the contract id
        if self.state.pending(contract, name) is None:
            return
        with self._locked(contract):
            self.state.recover(contract, name)

    def export_to_folder(self, contract: str) -> list[Path]:
        """Write the checklists, audit log and checkpoints a database keeps into the folder.

        What the exit seals (`handover.exit.documentation`) and a client
        checks are files: with a database store this writes them (atomically,
        the log streamed) where the local store keeps them, and returns them.
        Nothing to do with the local store: they are those files already.
        """
        if isinstance(self.state, LocalStore):
            return []
        paths = self._paths(contract)
        written: list[Path] = []
        with self._locked(contract):
            for name in self.state.checklist_names(contract):
                data = self.state.read_checklist(contract, name)
                if data is not None:
                    write_atomic(paths.checklist_file(name), data)
                    written.append(paths.checklist_file(name))
            log = self.audit_log(contract)
            if log.exists():
                with atomic_writer(paths.audit_log) as handle:
                    for _number, line in log.lines():
                        handle.write(line + b"\n")
                written.append(paths.audit_log)
            lines = self.checkpoints(contract).journal
            if lines is not None and (kept := lines.lines()):
                write_atomic(paths.audit_checkpoints, b"".join(line + b"\n" for line in kept))
                written.append(paths.audit_checkpoints)
        return written

    # -- the checklists against the log --------------------------------------------

    def cross_check(self, contract: str) -> list[str]:
        """Each item's status, actor and time against the last audit entry for it.

        Returns one line per disagreement (empty when the checklists and the
        log agree): an item whose status, actor or time differs from the
        log's last `checklist.<status>` entry for it, an item the log never
        mentions, an item the log mentions and the checklist lacks, a
        checklist whose version is behind or ahead of the log's, a change
        still waiting in its pending record. Reads only: repairs nothing.
        """
        history = _AuditHistory(contract, self.audit_log(contract).readable_entries())
        problems: list[str] = []
        for phase in [*PHASES, *self.periods(contract)]:
            where = f"{contract}/{phase}"
            waiting = self.state.pending(contract, _name(phase))
            if waiting is not None:
                problems.append(
                    f"{where}: a change waits in {waiting} "
                    "(interrupted); the next load of the checklist completes it"
                )
            stored = self._read_bytes(contract, phase)
            if stored is None:
                if history.mentions(phase):
                    problems.append(
                        f"{where}: the audit log records this checklist but its file "
                        f"{self._where(contract, phase)} is missing"
                    )
                continue
            problems.extend(history.compare(self._parse(contract, phase, stored)))
        return problems

    @contextlib.contextmanager
    def _locked(self, contract: str) -> Iterator[None]:
        """Thread lock of this store, then the state store's lock of the contract.

        The local store's is an `flock` on the checklists folder, PostgreSQL's
        an advisory lock: both serialise processes, and PostgreSQL's machines.
        """
        self._paths(contract)  # checks the contract id
        with self._lock:
            if self._held.get(contract):  # re-entered (prepare_rerun → reopen): lock held
                self._held[contract] += 1
                try:
                    yield
                finally:
                    self._held[contract] -= 1
                return
            with self.state.lock(contract):
                self._held[contract] = 1
                try:
                    yield
                finally:
                    self._held[contract] = 0


def store_for_folder(contracts_root: Path) -> ChecklistStore:
    """The installation's store when `contracts_root` is its contracts folder, else the folder's.

    For readers handed a folder (`handover status`): on a team machine the
    installation's checklists are in the database `HANDOVER_STATE_URL`
    names, not in the folder.
    """
    if Path(contracts_root).absolute() == _home_root():
        return ChecklistStore()
    return ChecklistStore(contracts_root)


def open_contract_store(root: Path | None = None) -> ContractStore:
    """The state store: the folder `root` when given, else what `HANDOVER_STATE_URL` names."""
    if root is not None:
        return LocalStore(Path(root))
    url = state_url()
    if url.kind == "postgresql" and url.url is not None:
        # Imported here: SQLAlchemy and the driver load only where a database is used.
        from handover.state.postgres import PostgresStore

        return PostgresStore(url.url)
    return LocalStore(url.folder if url.folder is not None else _home_root())


def _home_root() -> Path:
    return handover_home() / "contracts"


def _name(phase: Phase | str) -> str:
    """The checklist's name: the phase's, or a period's (`operational-2026-11`)."""
    return checklist_name(*parse_checklist_name(phase))


def _is_period_name(name: str) -> bool:
    try:
        return parse_checklist_name(name)[1] is not None
    except UsageError:
        return False


def _dump(checklist: Checklist) -> bytes:
    return checklist.model_dump_json(indent=2).encode("utf-8") + b"\n"


def _item_data(
    checklist: Checklist, item: ChecklistItem, previous: Status | None
) -> dict[str, Any]:
    return {
        "contract": checklist.contract,
        "phase": checklist.name,
        "item": item.id,
        "from": previous.value if previous else None,
        "to": item.status.value,
        "changed_at": item.updated_at.isoformat(timespec="microseconds"),
    }


def _change_record(
    checklist: Checklist,
    item: ChecklistItem,
    previous: Status,
    actor: str,
    dropped: list[str],
    evidence: Sequence[Evidence],
) -> Record:
    """`checklist.<status>` (or `checklist.reopened`): the move, its reason and evidence."""
    to = item.status
    data = _item_data(checklist, item, previous)
    if item.reason:
        data["reason"] = item.reason
    if to is Status.PENDING and dropped:
        data["previous_evidence"] = dropped
    if evidence:
        data["evidence"] = [
            e.model_dump(mode="json", exclude_none=True, exclude={"recorded_at"}) for e in evidence
        ]
    event = "checklist.reopened" if to is Status.PENDING else f"checklist.{to.value}"
    return event, actor, data


def _merge_records(checklist: Checklist, created: bool, merge: TemplateMerge) -> list[Record]:
    """One entry for the opening (or the added and the reworded items), one per waiver move."""
    where: dict[str, Any] = {"contract": checklist.contract, "phase": checklist.name}
    records: list[Record] = []
    if created:
        records.append(
            ("checklist.opened", "playbook", {**where, "items": [i.id for i in checklist.items]})
        )
    else:
        if merge.added:
            records.append(("checklist.items-added", "playbook", {**where, "items": merge.added}))
        if merge.reworded:
            records.append(
                ("checklist.items-reworded", "playbook", {**where, "items": merge.reworded})
            )
    for item, previous in merge.waived:
        records.append(
            (
                "checklist.waived",
                "playbook",
                {**_item_data(checklist, item, previous), "reason": item.reason},
            )
        )
    for item in merge.unwaived:
        records.append(
            (
                "checklist.reopened",
                "playbook",
                {**_item_data(checklist, item, Status.WAIVED), "reason": item.reason},
            )
        )
    return records


class _AuditHistory:
    """What the audit log says of one contract's checklists, for `cross_check`."""

    def __init__(self, contract: str, entries: Sequence[dict[str, Any]]) -> None:
        self.last: dict[tuple[str, str], dict[str, Any]] = {}
        self.listed: dict[str, set[str]] = {}
        self.version: dict[str, int] = {}
        for entry in entries:
            data = entry.get("data")
            if not isinstance(data, dict) or data.get("contract") != contract:
                continue
            phase = data.get("phase")
            event = str(entry.get("event", ""))
            if not isinstance(phase, str) or not event.startswith("checklist."):
                continue
            if isinstance(data.get("version"), int):
                self.version[phase] = max(self.version.get(phase, 0), data["version"])
            if event in ("checklist.opened", "checklist.items-added"):
                self.listed.setdefault(phase, set()).update(str(i) for i in data.get("items", []))
            elif isinstance(data.get("item"), str) and "to" in data:
                self.last[(phase, data["item"])] = entry

    def mentions(self, phase: str) -> bool:
        return phase in self.listed or any(p == phase for p, _ in self.last)

    def compare(self, checklist: Checklist) -> list[str]:
        phase = checklist.name
        where = f"{checklist.contract}/{phase}"
        problems: list[str] = []
        logged = self.version.get(phase)
        if logged is not None and checklist.version != logged:
            state = "behind" if checklist.version < logged else "ahead of"
            problems.append(
                f"{where}: checklist version {checklist.version} is {state} the audit log's "
                f"(version {logged}): a change was lost, or made without its audit entry"
            )
        ids = {item.id for item in checklist.items}
        for p, item_id in sorted(self.last):
            if p == phase and item_id not in ids:
                problems.append(
                    f"{where}/{item_id}: recorded in the audit log, missing from the checklist"
                )
        for item in checklist.items:
            problems.extend(self._compare_item(where, phase, item))
        return problems

    def _compare_item(self, where: str, phase: str, item: ChecklistItem) -> list[str]:
        entry = self.last.get((phase, item.id))
        said = f"{where}/{item.id}: checklist says {item.status.value} by {item.actor}"
        if entry is None:
            if item.id not in self.listed.get(phase, set()):
                return [f"{said}, but the audit log never mentions the item"]
            if item.status is not Status.PENDING or item.actor != "playbook":
                return [f"{said}, but the audit log records no change since it was opened"]
            return []
        data = entry["data"]
        seq = entry.get("seq")
        problems: list[str] = []
        if data.get("to") != item.status.value or entry.get("actor") != item.actor:
            problems.append(
                f"{said}, the audit log's last entry for it (seq {seq}) says "
                f"{data.get('to')} by {entry.get('actor')}"
            )
        elif not _same_time(item.updated_at, data.get("changed_at"), entry.get("at")):
            problems.append(
                f"{said} at {item.updated_at.isoformat()}, the audit log's last entry for it "
                f"(seq {seq}) at {data.get('changed_at') or entry.get('at')}"
            )
        return problems


def _same_time(updated_at: datetime, changed_at: Any, entry_at: Any) -> bool:
    """The item's time is the entry's `changed_at`; older entries: within a minute of `at`."""
    try:
        if isinstance(changed_at, str):
            return datetime.fromisoformat(changed_at) == updated_at
        logged = datetime.fromisoformat(str(entry_at))
    except ValueError:
        return False
    return abs((logged - updated_at).total_seconds()) <= _LEGACY_TIME_SLACK_S
