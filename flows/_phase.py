"""How a phase flow walks its checklist: one item at a time, evidence in, failures recorded.

`PhaseRun.item(item_id, step, needs=...)` marks the item running, calls
`step()`, and marks it done with the evidence the step returns, or failed
with the reason of the exception it raised. An item runs only when the
items it needs are done or waived: one whose prerequisite failed (or is
still pending, like a manual item nobody ticked) stays pending, and the
reason is logged. A sequential phase (the exit) makes every item need all
the items before it, so a failure stops the phase before its one-way doors.
Independent items still run after a failure (an unreachable host must not
hide what the others gave). `finish()` reads the checklist back and raises
`PhaseIncomplete` unless every item is done or waived, so a flow run is
Completed only when its checklist has nothing pending or failed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar, cast

from prefect import get_run_logger
from prefect.futures import PrefectFuture
from prefect.runtime import flow_run
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner
from pydantic import BaseModel, ConfigDict

from flows import manual_items
from flows.evidence_sync import sync_point
from flows.playbook_guard import playbook_allowed
from handover.checklist.model import Checklist, Evidence, Status, evidence_for_file
from handover.contract.loader import read_contract_id
from handover.contract.playbook import Playbook, phase_items
from handover.documents.document import Document
from handover.errors import HandoverError
from handover.estate.inventory import Inventory
from handover.state.atomic import ensure_private_dir, write_atomic
from handover.state.layout import ContractPaths
from tasks.audit import anchor_audit
from tasks.checklist import (
    complete_item,
    fail_item,
    load_checklist,
    open_checklist,
    reopen_item,
    start_item,
    waive_item,
)
from tasks.runtime import flow_run_id

T = TypeVar("T")
R = TypeVar("R")


class PhaseIncomplete(HandoverError):
    """Some checklist items of the phase failed; the message lists them with their reasons."""


class StepFailed(HandoverError):
    """A step that gathered some evidence but cannot call its item done."""


class PhaseOutcome(BaseModel):
    """What a phase flow returns when every item of its checklist is done or waived."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    contract: str
    phase: str
    status: Literal["complete"] = "complete"
    checklist: str | None = None  # a period's checklist (`operational-2026-11`), if not the phase's


class ExitOutcome(PhaseOutcome):
    """The reversibility flow's result: the phase summary and where the bundle was delivered."""

    bundle: str | None = None  # None when no bundle was delivered


@dataclass
class Step(Generic[T]):
    """What a step gives back: evidence for the checklist and a value for the next steps."""

    evidence: list[Evidence] = field(default_factory=list)
    value: T | None = None
    # Who did it, when not the run's operator: the client's key that signed the
    # acceptance, the person who confirmed a session in a pause form.
    actor: str | None = None


def phase_task_runner() -> TaskRunner[PrefectFuture[Any]]:
    """A thread pool for one phase flow: its hosts and datasets are worked on four at a time.

    The flow decorator types its parameter as the invariant `TaskRunner[PrefectFuture[Any]]`,
    which Prefect's own ThreadPoolTaskRunner (futures of a subclass) does not match: cast.
    """
    return cast(TaskRunner[PrefectFuture[Any]], ThreadPoolTaskRunner(max_workers=4))


def describe_error(exc: BaseException) -> str:
    """A one-line reason for a checklist item: our messages as they are, others with their type."""
    if isinstance(exc, HandoverError):
        return str(exc).replace("\n", "; ")
    return f"{type(exc).__name__}: {exc}".replace("\n", "; ")


class PhaseRun:
    """The checklist of one phase during one flow run."""

    def __init__(
        self,
        playbook: Playbook,
        phase: str,
        *,
        fresh: bool = False,
        sequential: bool = False,
        checklist: str | None = None,
        items: list[dict[str, Any]] | None = None,
        own: list[str] | None = None,
    ) -> None:
        """`checklist` and `items`: a period's checklist of the phase and its items.

        The operational tasks tick the checklist of their period
        (`operational-2026-11`, see `handover.operations.schedules`), each
        only its `own` items (reopened for a fresh run; the others belong to
        runs that may be at work at the same time); evidence still goes to
        the phase's folder.
        """
        self.playbook = playbook
        self.sequential = sequential
        self.contract = playbook.contract_id
        self.phase = phase
        self.name = checklist or phase  # the checklist the store knows it by
        self.paths = ContractPaths(self.contract)
        self.folder = self.paths.phase_dir(phase)
        ensure_private_dir(self.folder)
        template = items if items is not None else phase_items(playbook, phase)
        self.checklist: Checklist = open_checklist(self.contract, self.name, template, fresh, own)
        self.failures: list[tuple[str, str]] = []
        self.blocked: dict[str, str] = {}
        self.log = get_run_logger()

    def status(self, item_id: str) -> Status:
        return self.checklist.item(item_id).status

    def item(
        self, item_id: str, step: Callable[[], Step[T]], *, needs: Sequence[str] = ()
    ) -> T | None:
        """Run `step` for a pending item whose prerequisites hold; skip done or waived items.

        `needs`: the items that must be done or waived first (in a sequential
        phase, every earlier item of the checklist as well).
        """
        status = self.status(item_id)
        if status != Status.PENDING:
            self.log.info("%s: %s, skipped", item_id, status.value)
            return None
        waiting = self.unmet(item_id, needs)
        if waiting:
            reason = "not started: waiting for " + ", ".join(waiting)
            self.log.warning("%s %s", item_id, reason)
            self.blocked[item_id] = reason
            return None
        start_item(self.contract, self.name, item_id)
        try:
            result = step()
        except Exception as exc:  # every failure lands on the item, with its reason
            reason = describe_error(exc)
            self.log.error("%s failed: %s", item_id, reason)
            fail_item(self.contract, self.name, item_id, reason)
            self.failures.append((item_id, reason))
            self._mark(item_id, Status.FAILED)
            return None
        sync_point(self.contract)  # its evidence in the evidence store before the item is done
        complete_item(self.contract, self.name, item_id, result.evidence, result.actor)
        self._mark(item_id, Status.DONE)
        return result.value

    def unmet(self, item_id: str, needs: Sequence[str] = ()) -> list[str]:
        """The prerequisites of `item_id` not done or waived, as `id (status)`.

        Read from the store, not from memory: a manual item ticked from the
        CLI while the flow waited counts.
        """
        checklist = load_checklist(self.contract, self.name)
        self.checklist = checklist
        ids = [entry.id for entry in checklist.items]
        required = list(needs)
        if self.sequential and item_id in ids:
            required = ids[: ids.index(item_id)] + required
        finished = (Status.DONE, Status.WAIVED)
        return [
            f"{need} ({checklist.item(need).status.value})"
            for need in dict.fromkeys(required)
            if checklist.item(need).status not in finished
        ]

    def waive(self, item_id: str, reason: str, actor: str | None = None) -> None:
        if self.status(item_id) == Status.PENDING:
            waive_item(self.contract, self.name, item_id, reason, actor)
            self._mark(item_id, Status.WAIVED)

    def reopen(self, item_id: str, reason: str) -> None:
        """Bring a finished or failed item back to pending (audited, with the reason)."""
        self.checklist = load_checklist(self.contract, self.name)
        if self.status(item_id) != Status.PENDING:
            reopen_item(self.contract, self.name, item_id, reason)
            self._mark(item_id, Status.PENDING)

    def _mark(self, item_id: str, status: Status) -> None:
        self.checklist.item(item_id).status = status

    def finish(self, only: Sequence[str] | None = None) -> PhaseOutcome:
        """A short summary for the flow's result, or PhaseIncomplete naming every open item.

        Reads the checklist back: the run is complete only when every item is
        done or waived, whatever this run did (a manual item left pending, a
        prerequisite that failed in an earlier run). `only`: the items this
        run answers for (an operational task ticks its own items of the
        period's checklist; the others are other tasks' and nobody is asked).
        """
        if only is None:
            self.ask_people()
        checklist = load_checklist(self.contract, self.name)
        open_items = [
            entry
            for entry in checklist.items
            if not _finished(entry.status) and (only is None or entry.id in only)
        ]
        self.anchor(f"{self.name} run end ({'incomplete' if open_items else 'complete'})")
        if open_items:
            reasons = dict(self.failures)
            lines = "; ".join(
                f"{entry.id}: {entry.status.value}"
                + (
                    f" ({reasons.get(entry.id) or self.blocked.get(entry.id) or entry.reason})"
                    if reasons.get(entry.id) or self.blocked.get(entry.id) or entry.reason
                    else ""
                )
                for entry in open_items
            )
            raise PhaseIncomplete(
                f"{self.contract} {self.name}: {len(open_items)} item(s) not done — {lines}"
            )
        return PhaseOutcome(
            contract=self.contract,
            phase=self.phase,
            checklist=self.name if self.name != self.phase else None,
        )

    def ask_people(self) -> None:
        """Pause for each item the playbook adds that this run reaches still pending.

        People do those items (`flows.manual_items`): the form's answer, or
        a tick from the CLI while the run waits, is what finishes them.
        """
        for spec in self.playbook.phases.of(self.phase).add:
            waiting = self.unmet(spec.id)  # reads the store: a CLI tick counts
            if self.status(spec.id) is not Status.PENDING:
                continue
            if waiting:
                self.blocked[spec.id] = "not started: waiting for " + ", ".join(waiting)
                continue
            answer = manual_items.ask(
                self.contract, self.phase, spec, self._status_reader(spec.id), self.log
            )
            if answer is not None and answer.outcome != "later":
                self._record_answer(spec.id, answer)

    def _status_reader(self, item_id: str) -> Callable[[], Status]:
        """The item's status as stored now (read from another thread while the run waits)."""

        def status_now() -> Status:
            return load_checklist(self.contract, self.name).item(item_id).status

        return status_now

    def _record_answer(self, item_id: str, answer: manual_items.ManualItemAnswer) -> None:
        """The form's answer on the checklist, under the name given, its text kept as evidence."""
        by, details = answer.by.strip(), answer.details.strip()
        who = f"{by} (declared in the pause form)"
        record = (
            f"# {item_id}: {answer.outcome}\n\nBy: {by}\n"
            f"At: {datetime.now(UTC).isoformat(timespec='seconds')}\n"
            f"Flow run: {flow_run_id()}\n\n{details}\n"
        )
        kept = self.paths.phase_dir(self.phase) / "manual" / item_id / "pause-form.md"
        evidence = self.write_file(kept, record.encode("utf-8"), "human")
        if answer.outcome == "waived":
            self.waive(item_id, f"{details} (declared by {by} in the pause form)", who)
            return
        start_item(self.contract, self.name, item_id)
        if answer.outcome == "done":
            sync_point(self.contract)
            complete_item(self.contract, self.name, item_id, [evidence], who)
            self._mark(item_id, Status.DONE)
        else:
            reason = f"{details} (declared by {by} in the pause form)"
            fail_item(self.contract, self.name, item_id, reason, who)
            self.failures.append((item_id, reason))
            self._mark(item_id, Status.FAILED)

    def anchor(self, reason: str) -> None:
        """Sign the audit chain's head and publish it outside the file (`tasks.audit`).

        A run whose items are recorded but whose checkpoint cannot be signed
        (the signing key unreadable, e.g. kept in a vault the exit erased) is
        not undone for it: the failure is logged loudly, and the next
        checkpoint covers these entries.
        """
        if self.playbook.source is None:
            return
        try:
            anchor_audit(str(self.playbook.source), reason)
        except HandoverError as exc:
            self.log.error("audit checkpoint not signed (%s): %s", reason, describe_error(exc))

    # -- evidence files ---------------------------------------------------------------

    def write_file(self, where: str | Path, data: bytes, kind: str) -> Evidence:
        """Write an evidence file; return its evidence.

        `where`: a file name inside the phase folder, or a path of the contract's map
        (`self.paths`) for the files others read or erase.
        """
        path = where if isinstance(where, Path) else self.folder / where
        write_atomic(path, data)
        return evidence_for_file(path, kind, flow_run_id())

    def write_json(self, where: str | Path, value: Any, kind: str) -> Evidence:
        """Write `value` as sorted, indented JSON; task results (pydantic models) as they dump."""
        data = json.dumps(value, indent=2, ensure_ascii=False, default=_jsonable, sort_keys=True)
        return self.write_file(where, (data + "\n").encode("utf-8"), kind)

    def write_inventories(self, inventories: dict[str, Inventory]) -> list[Evidence]:
        """Each host's inventory in the phase's inventory folder, by host name."""
        folder = self.paths.inventories_dir(self.phase)
        return [
            self.write_json(folder / f"{name}.json", inventory.model_dump(mode="json"), "inventory")
            for name, inventory in sorted(inventories.items())
        ]

    def write_document(self, doc: Document, kind: str = "document") -> list[Evidence]:
        """Write a report as Markdown and HTML in the phase's documents; return both evidences."""
        folder = self.paths.documents_dir(self.phase)
        return [
            self.write_file(folder / f"{doc.name}.md", doc.markdown.encode("utf-8"), kind),
            self.write_file(folder / f"{doc.name}.html", doc.html.encode("utf-8"), kind),
        ]


def _finished(status: Status) -> bool:
    return status in (Status.DONE, Status.WAIVED)


def _jsonable(value: object) -> Any:
    """JSON for what `json` cannot write: models as their JSON dump, anything else as text."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    return str(value)


def hosts_failed(errors: dict[str, str]) -> None:
    """Raise StepFailed naming each host that failed and why."""
    if errors:
        raise StepFailed("; ".join(f"{host}: {why}" for host, why in sorted(errors.items())))


def gather(
    futures: Sequence[PrefectFuture[R]], names: Sequence[str]
) -> tuple[dict[str, R], dict[str, str]]:
    """Wait for task futures; split results and errors by name (one host never stops the others)."""
    results: dict[str, R] = {}
    errors: dict[str, str] = {}
    for name, future in zip(names, futures, strict=True):
        try:
            results[name] = future.result()
        except Exception as exc:
            errors[name] = describe_error(exc)
    return results, errors


def phase_run_name() -> str:
    """`<phase>-<contract>-<UTC time>`: the name auditors read in the run list.

    The run history of a contract finds its runs by this name. Only the id is
    read, and a playbook without one is named by its file: a playbook with
    other problems still names its run after its contract, and the flow
    itself then reports the problems.
    """
    path = str(flow_run.parameters.get("playbook_path", ""))
    allowed = playbook_allowed(path)  # never open what a deployment run may not read
    contract = (read_contract_id(Path(path)) if allowed else None) or Path(path).stem or "contract"
    return f"{flow_run.flow_name}-{contract}-{datetime.now(UTC):%Y%m%d-%H%M%S}"
