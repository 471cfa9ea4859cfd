"""Checklist changes as Prefect tasks: each one a task run, an artifact version and an event.

The core `ChecklistStore` persists and audits every change; the listener
registered here publishes the whole checklist as the keyed table artifact
`<contract>-<phase>-checklist` (a new version per change, so the UI shows
its history) and emits `handover.checklist.<status>` with the contract as
the resource.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prefect import task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.events import emit_event

from handover.checklist.model import Checklist, ChecklistItem, Evidence, Status
from handover.checklist.store import ChecklistStore
from handover.phases import PHASES, Phase
from tasks.runtime import flow_run_id, run_actor


def artifact_key(contract: str, phase: str) -> str:
    """`<contract>-<phase>-checklist`: lowercase and dashes, as Prefect keys require."""
    return f"{contract}-{phase}-checklist".lower().replace("_", "-").replace(".", "-")


def _summary(checklist: Checklist) -> str:
    counts = checklist.summary()
    parts = ", ".join(f"{n} {status}" for status, n in counts.items() if n)
    return f"**{checklist.contract}** — {checklist.name} checklist: {parts}"


def publish(checklist: Checklist, item: ChecklistItem, previous: Status | None) -> None:
    """Store listener: publish the artifact version and the event of one change."""
    create_table_artifact(
        checklist.as_rows(),
        key=artifact_key(checklist.contract, checklist.name),
        description=_summary(checklist),
    )
    payload: dict[str, Any] = {
        "phase": str(checklist.phase),
        "checklist": checklist.name,
        "item": item.id,
        "title": item.title,
        "status": str(item.status),
        "previous": str(previous) if previous else None,
        "actor": item.actor,
        "reason": item.reason,
        "evidence": [e.short() for e in item.evidence],
    }
    emit_event(
        f"handover.checklist.{item.status}",
        resource={
            "prefect.resource.id": f"handover.contract.{checklist.contract}",
            "prefect.resource.name": checklist.contract,
        },
        related=[
            {
                "prefect.resource.id": (
                    f"handover.checklist-item.{checklist.contract}.{checklist.name}.{item.id}"
                ),
                "prefect.resource.role": "checklist-item",
                "prefect.resource.name": item.title,
            }
        ],
        payload=payload,
    )


Listener = Callable[[Checklist, ChecklistItem, Status | None], None]
_local_listeners: list[Listener] = []


def watch_checklists(listener: Listener) -> None:
    """Also call `listener` on every change made in this process (the demo prints progress)."""
    _local_listeners.append(listener)


def store() -> ChecklistStore:
    """A store under the current handover home, publishing to Prefect."""
    checklist_store = ChecklistStore()
    checklist_store.add_listener(publish)
    for listener in _local_listeners:
        checklist_store.add_listener(listener)
    return checklist_store


def load_checklist(contract: str, phase: str) -> Checklist:
    """The phase's checklist as stored now (a plain read: no task run, no event)."""
    return ChecklistStore().load(contract, phase)


def phase_checklists(contract: str) -> dict[Phase, Checklist]:
    """The contract's checklists so far, in phase order (phases not started are left out).

    The operational run keeps one checklist per period: its newest stands for the phase.
    """
    checklist_store = store()
    current = {phase: checklist_store.current(contract, phase) for phase in PHASES}
    return {phase: checklist_store.load(contract, name) for phase, name in current.items() if name}


@task(cache_policy=NO_CACHE, task_run_name="open {phase} checklist")
def open_checklist(
    contract: str,
    phase: str,
    template_items: list[dict[str, Any]],
    reopen_done: bool,
    own: list[str] | None = None,
) -> Checklist:
    """Open the phase's checklist; reopen failed (and, for a fresh run, done) items.

    `own`: the only items this run may reopen, when other runs tick the
    same checklist at the same time (the operational tasks share their
    period's checklist): an item another run has `running` is theirs.
    """
    checklist_store = store()
    checklist = checklist_store.open(contract, phase, template_items)
    if own is None:
        checklist = checklist_store.prepare_rerun(contract, phase, run_actor())
    else:
        for item in checklist.items:
            if item.id in own and item.status in (Status.FAILED, Status.RUNNING):
                checklist = checklist_store.reopen(
                    contract, phase, item.id, run_actor(), f"rerun ({item.status.value})"
                )
    if reopen_done:
        for item in checklist.items:
            if item.status == Status.DONE and (own is None or item.id in own):
                checklist = checklist_store.reopen(
                    contract, phase, item.id, run_actor(), reason="phase run again from the start"
                )
    publish_checklist(checklist)
    return checklist


def publish_checklist(checklist: Checklist) -> None:
    """Publish the checklist's current state (first version of a run)."""
    create_table_artifact(
        checklist.as_rows(),
        key=artifact_key(checklist.contract, checklist.name),
        description=_summary(checklist),
    )


@task(cache_policy=NO_CACHE, task_run_name="{item_id}: running")
def start_item(contract: str, phase: str, item_id: str) -> None:
    store().start(contract, phase, item_id, run_actor())


@task(cache_policy=NO_CACHE, task_run_name="{item_id}: done")
def complete_item(
    contract: str, phase: str, item_id: str, evidence: list[Evidence], actor: str | None = None
) -> None:
    """Mark the item done; `actor` names who did it when it is not the run's operator."""
    run_id = flow_run_id()
    stamped = [
        e if e.flow_run_id else e.model_copy(update={"flow_run_id": run_id}) for e in evidence
    ]
    store().complete(contract, phase, item_id, actor or run_actor(), stamped)


@task(cache_policy=NO_CACHE, task_run_name="{item_id}: failed")
def fail_item(
    contract: str, phase: str, item_id: str, reason: str, actor: str | None = None
) -> None:
    store().fail(contract, phase, item_id, actor or run_actor(), reason)


@task(cache_policy=NO_CACHE, task_run_name="{item_id}: waived")
def waive_item(
    contract: str, phase: str, item_id: str, reason: str, actor: str | None = None
) -> None:
    store().waive(contract, phase, item_id, actor or run_actor(), reason)


@task(cache_policy=NO_CACHE, task_run_name="{item_id}: reopened")
def reopen_item(contract: str, phase: str, item_id: str, reason: str) -> None:
    """Bring a done, failed or waived item back to pending, with the reason in the audit log."""
    store().reopen(contract, phase, item_id, run_actor(), reason)
