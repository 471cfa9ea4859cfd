"""The contract's clauses for the SLA report, and the hotline quota alert (Prefect side).

The counts are pure (`handover.operations.clauses`); this module reads the
on-site and visit journals the report shows, and emits
`handover.hotline.quota-80` when the hotline has used 80 % of its quota.
The alert fires once per contract year: it is recorded in the contract's
audit log (`hotline.quota-80`, with the year) before the event is emitted,
and a later run that finds that entry stays silent. An automation on the
event (mail, chat) tells the account manager before the quota runs out.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from prefect.events import emit_event

from handover.checklist.audit import AuditLog
from handover.checklist.store import ChecklistStore
from handover.contract.playbook import Playbook
from handover.operations.alerts import incident_breach_alerts
from handover.operations.business_calendar import contract_calendar
from handover.operations.clauses import (
    QUOTA_AUDIT_EVENT,
    QUOTA_EVENT,
    ClauseRecords,
    HotlineUsage,
    alerted_years,
    hotline_usage,
    quota_alert_due,
)
from handover.operations.incidents import Incident
from handover.operations.onsite_journal import OnsiteJournal
from handover.operations.onsite_journal import journal_path as onsite_path
from handover.operations.sla import measure_incidents, reporting_period, sla_set
from handover.operations.visit_journal import VisitJournal
from handover.operations.visit_journal import journal_path as visit_path
from handover.state.layout import ContractPaths
from tasks.alerts import emit_alerts
from tasks.runtime import run_actor


def clause_records(contract_root: Path) -> ClauseRecords:
    """The on-site interventions and visits of the contract, with the journals they came from."""
    onsite = OnsiteJournal(onsite_path(contract_root))
    visits = VisitJournal(visit_path(contract_root))
    return ClauseRecords(
        interventions=onsite.interventions(),
        onsite_source=onsite.path.name if onsite.exists() else None,
        visits=visits.visits(),
        visit_source=visits.path.name if visits.exists() else None,
    )


def alert_hotline_quota(
    playbook: Playbook, audit: AuditLog, incidents: Sequence[Incident], as_of: datetime
) -> HotlineUsage | None:
    """Emit `handover.hotline.quota-80` if due (80 % used, not yet alerted this contract year).

    Returns the usage when the alert fired, None otherwise.
    """
    usage = hotline_usage(playbook, incidents, as_of, contract_calendar(playbook))
    if not quota_alert_due(usage, alerted_years(audit.readable_entries())):
        return None
    contract = playbook.contract_id
    payload = {
        "year_start": usage.year_key,
        "mode": usage.mode,
        "quota": usage.quota,
        "used": round(usage.used, 2),
        "remaining": round(usage.remaining or 0.0, 2),
        "percent": round(usage.percent or 0.0, 1),
    }
    audit.append(QUOTA_AUDIT_EVENT, run_actor(), **payload)
    emit_event(
        QUOTA_EVENT,
        resource={
            "prefect.resource.id": f"handover.contract.{contract}",
            "prefect.resource.name": contract,
        },
        payload=payload,
    )
    return usage


def clauses_for_report(
    playbook: Playbook, paths: ContractPaths, incidents: Sequence[Incident], as_of: datetime
) -> ClauseRecords:
    """What the SLA report shows of the clauses; raises the hotline quota alert on the way,
    and `handover.sla-breach` for each incident of the period past its times."""
    audit = ChecklistStore(paths.contracts_root).audit_log(paths.contract_id)  # the state store's
    alert_hotline_quota(playbook, audit, incidents, as_of)
    alert_late_incidents(playbook, incidents, as_of)
    return clause_records(paths.root)


def alert_late_incidents(
    playbook: Playbook, incidents: Sequence[Incident], as_of: datetime
) -> None:
    """Incidents of the report's period past their severity's response or resolution time."""
    if not sla_set(playbook):
        return
    period = reporting_period(as_of, playbook.sla.reporting_period)
    measured = measure_incidents(playbook, incidents, "journal", period)
    rows = [(m.id, m.severity, m.response_met, m.resolution_met) for m in measured.incidents]
    emit_alerts(playbook, incident_breach_alerts(playbook.contract_id, rows))
