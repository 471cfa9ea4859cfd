"""Operational run (exploitation): every operational task once, now.

On a schedule each task runs on its own clock (`flows.operational_tasks`,
deployed by `handover schedules deploy` or the implementation phase); this
flow runs them all at once, as subflows, for the demo, the lifecycle and an
operator who wants the whole round now: backups with pruning and a sample
restore check, pending security updates, the health checks, incidents and
SLA report of the reporting window up to now, the technology watch and the
reversibility drill.

Each subflow ticks its own items in the checklist of its period (the month,
`operational-2026-11`, or the quarter for the drill and quarterly reports).
The run then reads the month's checklist back (asking people for the items
the playbook adds), and is complete only when every task was.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from prefect import flow
from prefect.client.schemas.objects import State

from flows._phase import (
    PhaseIncomplete,
    PhaseOutcome,
    PhaseRun,
    phase_run_name,
    phase_task_runner,
)
from flows.operational_tasks import (
    operational_backups,
    operational_drill,
    operational_sla_report,
    operational_technology_watch,
    operational_updates,
)
from flows.playbook_guard import guard_playbook_path
from flows.writer_lease import one_writer
from handover.contract.loader import load_playbook
from handover.contract.playbook import phase_items
from handover.operations.schedules import (
    period_checklist,
    period_items,
    period_of,
    reporting_kind,
)
from tasks.tags import tag_flow_run


@flow(
    name="operational",
    flow_run_name=phase_run_name,
    task_runner=phase_task_runner(),
    log_prints=True,
)
@one_writer("operational")
def operational(playbook_path: str, fresh: bool = True) -> PhaseOutcome:
    """Exploitation, everything once: backups, updates, SLA report to date, watch, drill.

    Every task reopens its own items of its period's checklist (a new round
    of the same obligations). `fresh` is kept for the callers that pass it:
    an operational run is always a new round.
    """
    del fresh  # every task run is fresh (see `flows.operational_steps.period_run`)
    guard_playbook_path(playbook_path)  # a deployment run: only playbooks in the folders
    playbook = load_playbook(Path(playbook_path))
    tag_flow_run(playbook.contract_id, "operational")
    states: dict[str, State[PhaseOutcome]] = {
        "backups": operational_backups(playbook_path, return_state=True),
        "updates": operational_updates(playbook_path, return_state=True),
        "sla-report": operational_sla_report(playbook_path, to_date=True, return_state=True),
        "technology-watch": operational_technology_watch(playbook_path, return_state=True),
        "drill": operational_drill(playbook_path, return_state=True),
    }
    month = period_of(datetime.now(UTC), "month", playbook.contract.timezone)
    items = period_items(phase_items(playbook, "operational"), month, reporting_kind(playbook))
    # The items the playbook adds are people's: asked again in each round, like the tasks'.
    added = [spec.id for spec in playbook.phases.of("operational").add]
    run = PhaseRun(
        playbook,
        "operational",
        fresh=True,
        checklist=period_checklist(month),
        items=items,
        own=added,
    )
    failed = [
        f"{task}: {state.message or state.name}"
        for task, state in states.items()
        if not state.is_completed()
    ]
    try:
        outcome = run.finish()  # the month's checklist, items the playbook adds included
    except PhaseIncomplete as incomplete:
        failed.append(str(incomplete))
    if failed:
        raise PhaseIncomplete(f"{playbook.contract_id} operational: " + "; ".join(failed))
    return outcome
