"""The demo contract's incident journal: two incidents of the past weeks, recorded by the hotline.

The operational run's `incidents` item is done only when the contract has an
incident journal (no journal is not "no incident"), so the demo and the flow
tests record what a hotline would have: one P2 answered and solved within
its times, one P3 solved later, both on a recent working day so the monthly
SLA report measures them. Recorded through the journal (and so the audit
log) like any incident, never written by hand.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from handover.checklist.store import ChecklistStore
from handover.operations.business_calendar import DEFAULT_TIMEZONE, holiday_checker
from handover.operations.incident_journal import IncidentJournal, journal_path

DEMO_HOTLINE = "hotline@handover-demo"


def record_demo_incidents(contract: str, now: datetime | None = None) -> Path:
    """Record the demo incidents in `contract`'s journal, once; return the journal's path."""
    audit = ChecklistStore().audit_log(contract)
    journal = IncidentJournal(journal_path(audit.path.parent), audit)
    if journal.exists():
        return journal.path
    day = _working_day_before((now or datetime.now(UTC)) - timedelta(days=3))
    zone = ZoneInfo(DEFAULT_TIMEZONE)

    def at(hour: int, minute: int = 0) -> datetime:
        return datetime.combine(day, time(hour, minute), tzinfo=zone)

    first = journal.open(
        None, "P2", "Messagerie lente sur le site principal", at(9, 10), DEMO_HOTLINE
    )
    journal.acknowledge(first.id, at(9, 35), DEMO_HOTLINE)
    journal.resolve(first.id, at(14, 0), DEMO_HOTLINE)
    second = journal.open(None, "P3", "Imprimante de l'accueil hors ligne", at(11, 0), DEMO_HOTLINE)
    journal.acknowledge(second.id, at(13, 30), DEMO_HOTLINE)
    journal.resolve(second.id, at(16, 45), DEMO_HOTLINE)
    return journal.path


def _working_day_before(moment: datetime) -> date:
    """The latest Monday-to-Friday day, not a French public holiday, at or before `moment`."""
    is_holiday = holiday_checker("FR")
    day = moment.astimezone(ZoneInfo(DEFAULT_TIMEZONE))
    while day.weekday() >= 5 or is_holiday(day.date()):
        day -= timedelta(days=1)
    return day.date()
