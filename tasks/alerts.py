"""Alerts as Prefect events: `handover.<kind>` on the contract's resource.

The tasks that learn a fact (a health round, a backup, a drill, the SLA
figures) call `emit_alerts` with the core's `Alert` values; the contract's
automation (`flows.notifications`) turns each event into a notification.
An alert is claimed in the contract's ledger before it is emitted, so the
same fact is told once per `operations.notifications.repeat_hours` (24 h by
default), whichever flow saw it. Telling must never break the work: an
event that cannot be emitted costs a warning in the log, never the task.

The two checks that have no task of their own (a backup that did not
happen, an exit date coming) are tasks here, for a flow to call.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.events import emit_event

from handover.contract.loader import load_playbook
from handover.contract.playbook import Playbook
from handover.exit.progress import ExitProgress
from handover.operations.alert_ledger import claim
from handover.operations.alerts import (
    Alert,
    backups_missed_alerts,
    exit_deadline_alerts,
)
from handover.operations.backup import list_backups
from handover.operations.backup_target import playbook_backup_store
from handover.operations.business_calendar import contract_zone
from handover.phases import Phase
from handover.state.layout import ContractPaths

__all__ = ["alert_exit_deadlines", "alert_missed_backups", "emit_alerts", "ledger_path"]

DEFAULT_REPEAT = timedelta(hours=24)
DEFAULT_EXIT_WARNING_DAYS = 14
DEFAULT_BACKUP_MAX_AGE = timedelta(hours=36)
_log = logging.getLogger(__name__)


def ledger_path(contract: str) -> Path:
    """The contract's record of alerts sent: `operational/alerts-sent.json`."""
    return ContractPaths(contract).phase_dir(Phase.OPERATIONAL) / "alerts-sent.json"


def _repeat(playbook: Playbook) -> timedelta:
    settings = playbook.operations.notifications
    return timedelta(hours=settings.repeat_hours) if settings else DEFAULT_REPEAT


def resource(alert: Alert) -> dict[str, str]:
    """The event's resource: the contract, labelled with the alert's kind and subject."""
    return {
        "prefect.resource.id": f"handover.contract.{alert.contract}",
        "prefect.resource.name": alert.contract,
        "handover.alert.kind": alert.kind,
        "handover.alert.subject": alert.subject,
        "handover.alert.severity": alert.severity,
    }


def emit_alerts(
    playbook: Playbook, alerts: Iterable[Alert], now: datetime | None = None
) -> list[Alert]:
    """Emit the alerts not told within the repeat interval; returns those emitted. Never raises."""
    wanted = list(alerts)
    if not wanted:
        return []
    try:
        due = claim(
            ledger_path(playbook.contract_id), wanted, now or datetime.now(UTC), _repeat(playbook)
        )
        for alert in due:
            emit_event(alert.event, resource=resource(alert), payload=alert.model_dump(mode="json"))
            _log.warning("alert %s: %s", alert.event, alert.message)
        return due
    except Exception as exc:  # telling must not break the work it tells about
        _log.warning("alerts could not be emitted (%s: %s)", type(exc).__name__, exc)
        return []


@task(cache_policy=NO_CACHE, task_run_name="alert on missed backups")
def alert_missed_backups(playbook_path: str) -> list[Alert]:
    """Alert on every dataset whose newest backup is older than the playbook allows."""
    playbook = load_playbook(Path(playbook_path))
    if playbook.backups is None:
        return []
    settings = playbook.operations.notifications
    max_age = timedelta(hours=settings.backup_max_age_hours) if settings else DEFAULT_BACKUP_MAX_AGE
    store = playbook_backup_store(playbook)
    latest: dict[str, datetime | None] = {}
    for dataset in playbook.datasets:
        records = list_backups(store, playbook.contract_id, dataset.name)
        latest[dataset.name] = max((r.created_at for r in records), default=None)
    now = datetime.now(UTC)
    return emit_alerts(playbook, backups_missed_alerts(playbook.contract_id, latest, now, max_age))


@task(cache_policy=NO_CACHE, task_run_name="alert on exit deadlines")
def alert_exit_deadlines(playbook_path: str) -> list[Alert]:
    """Alert on the recorded exit calendar's dates coming soon (none before a notice)."""
    playbook = load_playbook(Path(playbook_path))
    state = ExitProgress(playbook.contract_id).load()
    if state is None or state.deadlines is None:
        return []
    dates = state.deadlines
    settings = playbook.operations.notifications
    warning = settings.exit_warning_days if settings else DEFAULT_EXIT_WARNING_DAYS
    pending: dict[str, date] = {}
    if state.sealed is None:
        pending["switch_over"] = dates.switch_over
    if state.erasure is None:
        pending["erasure_by"] = dates.erasure_by
    today = datetime.now(contract_zone(playbook)).date()  # the contract's calendar day
    return emit_alerts(
        playbook, exit_deadline_alerts(playbook.contract_id, pending, today, warning)
    )
