"""The operational tasks, one flow each, each on its own clock (`handover.operations.schedules`).

`operational-backups`, `operational-updates`, `operational-sla-report`,
`operational-drill` and `operational-technology-watch` each tick their own
items of the checklist of their period (`operational-2026-11`, or
`operational-2026-q4` for the drill and quarterly reports), in the
contract's time zone, and are complete when those items are: the other
items of the period belong to the other tasks. Each holds its own writer
lease (`contract-<id>-operational-<task>`), so a long drill never makes
the nightly backup wait, while two backups of one contract never overlap.
The health samples are the `health` flow (`flows.health`).

The runs are tagged `contract:<id>` and `phase:operational`: the contract's
run history and status find them like any operational run.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from prefect import flow, get_run_logger

from flows._phase import PhaseOutcome, phase_run_name, phase_task_runner
from flows.notifications import ensure_notifications_quietly
from flows.operational_steps import (
    Seen,
    period_run,
    record_incidents,
    report_updates,
    run_backups,
    run_drill,
    run_health_checks,
    run_restore_check,
    run_technology_watch,
    write_sla_report,
)
from flows.playbook_guard import guard_playbook_path
from flows.writer_lease import one_writer
from handover.contract.loader import load_playbook
from handover.contract.playbook import Playbook
from handover.errors import UsageError
from handover.operations.schedules import (
    TASK_ITEMS,
    period_bounds,
    period_of,
    previous_period,
    reporting_kind,
)
from handover.operations.sla import reporting_period
from handover.phases import PERIOD_PATTERN
from tasks.alerts import alert_exit_deadlines, alert_missed_backups
from tasks.hosts import SSH_SESSIONS_PER_CONTRACT, ssh_limit_name
from tasks.runtime import ensure_concurrency_limit
from tasks.tags import tag_flow_run


def _start(playbook_path: str) -> Playbook:
    """The playbook, checked and read; the run tagged and the contract's SSH limit in place."""
    guard_playbook_path(playbook_path)  # a deployment run: only playbooks in the folders
    playbook = load_playbook(Path(playbook_path))
    tag_flow_run(playbook.contract_id, "operational")
    ensure_concurrency_limit(ssh_limit_name(playbook.contract_id), SSH_SESSIONS_PER_CONTRACT)
    # The contract's alerts (handover.* events) reach people through this automation.
    ensure_notifications_quietly(playbook)
    return playbook


def _month(playbook: Playbook) -> str:
    return period_of(datetime.now(UTC), "month", playbook.contract.timezone)


@flow(
    name="operational-backups",
    flow_run_name=phase_run_name,
    task_runner=phase_task_runner(),
    log_prints=True,
)
@one_writer("operational-backups")
def operational_backups(playbook_path: str) -> PhaseOutcome:
    """Back up every dataset, prune, and restore a sample: the month's backup items."""
    playbook = _start(playbook_path)
    run = period_run(playbook, "backups", _month(playbook))
    seen = Seen()
    run.item("backups", lambda: run_backups(run, playbook_path, playbook, seen))
    run.item(
        "restore-check", lambda: run_restore_check(run, playbook_path, seen), needs=["backups"]
    )
    _nightly_alerts(playbook_path)
    return run.finish(only=TASK_ITEMS["backups"])


def _nightly_alerts(playbook_path: str) -> None:
    """Datasets without a recent backup and exit dates coming: checked with each backup run.

    Telling must never fail the work it tells about: a failure here is a warning.
    """
    for check in (alert_missed_backups, alert_exit_deadlines):
        try:
            check(playbook_path)
        except Exception as exc:
            get_run_logger().warning("%s could not run: %s", check.name, exc)


@flow(
    name="operational-updates",
    flow_run_name=phase_run_name,
    task_runner=phase_task_runner(),
    log_prints=True,
)
@one_writer("operational-updates")
def operational_updates(playbook_path: str) -> PhaseOutcome:
    """The pending security updates of every host: the month's updates item."""
    playbook = _start(playbook_path)
    run = period_run(playbook, "updates", _month(playbook))
    run.item("security-updates", lambda: report_updates(run, playbook_path, playbook))
    return run.finish(only=TASK_ITEMS["updates"])


@flow(
    name="operational-sla-report",
    flow_run_name=phase_run_name,
    task_runner=phase_task_runner(),
    log_prints=True,
)
@one_writer("operational-sla-report")
def operational_sla_report(
    playbook_path: str, period: str | None = None, to_date: bool = False
) -> PhaseOutcome:
    """Measure a reporting period and write its SLA report, in that period's checklist.

    `period`: `2026-11` (monthly reporting) or `2026-q4` (quarterly); by
    default the period that ended last, so the run scheduled on the first
    day after a period reports on it. `to_date`: the reporting window up to
    now instead (`sla.reporting_period` before the run, as `handover run
    operational` reports on demand), in the current period's checklist,
    after one round of the health checks due.
    """
    playbook = _start(playbook_path)
    kind = reporting_kind(playbook)
    zone = playbook.contract.timezone
    now = datetime.now(UTC)
    if to_date:
        name = period_of(now, kind, zone)
        window = reporting_period(now, playbook.sla.reporting_period)
    else:
        name = period or previous_period(now, kind, zone)
        if not PERIOD_PATTERN.match(name) or ("-q" in name) != (kind == "quarter"):
            form = "YYYY-qN" if kind == "quarter" else "YYYY-MM"
            raise UsageError(f"period {name!r}: the SLA is reported by {kind} here ({form})")
        start, end = period_bounds(name, zone)
        if start >= now:
            raise UsageError(f"period {name!r} has not started yet: nothing to report")
        window = (start.astimezone(UTC), min(end, now).astimezone(UTC))
    run = period_run(playbook, "sla-report", name)
    seen = Seen()
    run.item(
        "health-checks",
        lambda: run_health_checks(run, playbook_path, playbook, seen, window, sample=to_date),
    )
    run.item("incidents", lambda: record_incidents(run, playbook, window))
    run.item(
        "sla-report",
        lambda: write_sla_report(run, playbook, seen, window),
        needs=["health-checks", "incidents"],
    )
    return run.finish(only=TASK_ITEMS["sla-report"])


@flow(
    name="operational-drill",
    flow_run_name=phase_run_name,
    task_runner=phase_task_runner(),
    log_prints=True,
)
@one_writer("operational-drill")
def operational_drill(playbook_path: str) -> PhaseOutcome:
    """Seal every dataset, open the bundle in a sandbox, compare: the quarter's drill item."""
    playbook = _start(playbook_path)
    quarter = period_of(datetime.now(UTC), "quarter", playbook.contract.timezone)
    run = period_run(playbook, "drill", quarter)
    run.item("reversibility-drill", lambda: run_drill(run, playbook_path))
    return run.finish(only=TASK_ITEMS["drill"])


@flow(
    name="operational-technology-watch",
    flow_run_name=phase_run_name,
    task_runner=phase_task_runner(),
    log_prints=True,
)
@one_writer("operational-technology-watch")
def operational_technology_watch(playbook_path: str) -> PhaseOutcome:
    """End-of-life software and certificates near expiry: the month's watch item."""
    playbook = _start(playbook_path)
    run = period_run(playbook, "technology-watch", _month(playbook))
    run.item("technology-watch", lambda: run_technology_watch(run, playbook_path, playbook))
    return run.finish(only=TASK_ITEMS["technology-watch"])
