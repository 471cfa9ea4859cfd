"""The incident journal: appended, replayed, checked, audited, and idempotent on re-import."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from handover.checklist.audit import AuditLog
from handover.errors import UsageError
from handover.operations.incident_journal import IncidentJournal, Ticket, journal_path

PARIS_WINTER = timezone(timedelta(hours=1))
OPENED = datetime(2026, 3, 2, 9, 15, tzinfo=PARIS_WINTER)
EARLY = OPENED - timedelta(minutes=1)
TOMORROW = datetime.now(UTC) + timedelta(days=1)


@pytest.fixture
def journal(tmp_path: Path) -> IncidentJournal:
    return IncidentJournal(journal_path(tmp_path), AuditLog(tmp_path / "audit.log"))


def test_open_ack_resolve_are_appended_and_replayed(journal: IncidentJournal) -> None:
    opened = journal.open(None, "P1", "  site down ", OPENED, "Claire")
    assert opened.id == "INC-1"
    assert journal.open(None, "P3", "slow", OPENED, "Claire").id == "INC-2"
    journal.acknowledge("INC-1", OPENED + timedelta(minutes=20), "Hugo")
    journal.resolve("INC-1", OPENED + timedelta(hours=2), "Hugo")
    lines = journal.path.read_text().splitlines()
    assert [json.loads(line)["event"] for line in lines] == [
        "opened", "opened", "acknowledged", "resolved",
    ]  # fmt: skip
    first, second = journal.incidents()
    assert (first.id, first.summary, first.severity) == ("INC-1", "site down", "P1")
    assert first.responded_at == OPENED + timedelta(minutes=20)
    assert first.resolved_at == OPENED + timedelta(hours=2)
    assert (second.responded_at, second.resolved_at) == (None, None)
    assert oct(journal.path.stat().st_mode & 0o777) == "0o600"


def test_each_change_goes_to_the_audit_log_without_the_title(journal: IncidentJournal) -> None:
    journal.open("T-9", "P2", "Mme Durand cannot print", OPENED, "Claire")
    journal.resolve("T-9", OPENED + timedelta(hours=1), "Hugo")
    assert journal.audit is not None
    entries = journal.audit.entries()
    assert [(e["event"], e["actor"]) for e in entries] == [
        ("incident.opened", "Claire"),
        ("incident.resolved", "Hugo"),
    ]
    assert entries[0]["data"]["id"] == "T-9" and entries[0]["data"]["severity"] == "P2"
    assert "Durand" not in journal.audit.path.read_text()
    assert journal.audit.verify() == []


def test_a_resolution_without_acknowledgement_is_the_response_too(
    journal: IncidentJournal,
) -> None:
    journal.open(None, "P2", "x", OPENED, "a")
    journal.resolve("INC-1", OPENED + timedelta(minutes=50), "a")
    (incident,) = journal.incidents()
    assert incident.responded_at == incident.resolved_at == OPENED + timedelta(minutes=50)


@pytest.mark.parametrize(
    ("action", "message"),
    [
        (lambda j: j.acknowledge("INC-7", OPENED, "a"), r"no incident INC-7 in the journal"),
        (lambda j: j.acknowledge("INC-1", EARLY, "a"), "before it was opened"),
        (lambda j: j.open("INC-1", "P1", "again", OPENED, "a"), "already recorded"),
        (lambda j: j.open(None, "P1", "naive", datetime(2026, 3, 2, 9), "a"), "give the time zone"),
        (lambda j: j.open(None, "P1", "later", TOMORROW, "a"), "in the future"),
        (lambda j: j.open(None, "P1", "  ", OPENED, "a"), "say what happened"),
    ],
)  # fmt: skip
def test_wrong_changes_are_refused_and_nothing_is_written(
    journal: IncidentJournal, action: object, message: str
) -> None:
    journal.open(None, "P1", "x", OPENED, "a")
    before = journal.path.read_bytes()
    with pytest.raises(UsageError, match=message):
        action(journal)  # type: ignore[operator]
    assert journal.path.read_bytes() == before


def test_an_incident_is_acknowledged_and_resolved_once(journal: IncidentJournal) -> None:
    journal.open(None, "P1", "x", OPENED, "a")
    journal.acknowledge("INC-1", OPENED, "a")
    with pytest.raises(UsageError, match="already acknowledged"):
        journal.acknowledge("INC-1", OPENED, "a")
    journal.resolve("INC-1", OPENED + timedelta(hours=1), "a")
    with pytest.raises(UsageError, match="already resolved"):
        journal.resolve("INC-1", OPENED + timedelta(hours=2), "a")


def _ticket(number: int, resolved: datetime | None = None) -> Ticket:
    return Ticket(
        id=f"GLPI-{number}",
        source_id=str(number),
        severity="P2",
        title=f"ticket {number}",
        opened_at=OPENED,
        acknowledged_at=OPENED + timedelta(minutes=5),
        resolved_at=resolved,
    )


def test_reimporting_the_same_export_changes_nothing_and_a_later_one_restates(
    journal: IncidentJournal, tmp_path: Path
) -> None:
    export = tmp_path / "tickets.json"
    export.write_text("[]")
    first = journal.import_tickets([_ticket(1), _ticket(2)], "glpi", export, 0, "ops")
    assert (first.added, first.updated, first.unchanged) == (2, 0, 0)
    again = journal.import_tickets([_ticket(1), _ticket(2)], "glpi", export, 1, "ops")
    assert (again.added, again.updated, again.unchanged) == (0, 0, 2)
    assert again.run.rejected == 1 and len(again.run.sha256) == 64
    solved = OPENED + timedelta(hours=3)
    later = journal.import_tickets([_ticket(2, solved)], "glpi", export, 0, "ops")
    assert (later.added, later.updated, later.unchanged) == (0, 1, 0)
    one, two = journal.incidents()
    assert (one.id, one.resolved_at, two.resolved_at, two.source) == (
        "GLPI-1",
        None,
        solved,
        "glpi",
    )
    events = [json.loads(line)["event"] for line in journal.path.read_text().splitlines()]
    assert events == ["imported", "imported", "import", "import", "imported", "import"]


def test_an_empty_export_still_creates_the_journal(
    journal: IncidentJournal, tmp_path: Path
) -> None:
    export = tmp_path / "empty.csv"
    export.write_text("id,opened\n")
    assert not journal.exists()
    journal.import_tickets([], "csv", export, 0, "ops")
    assert journal.exists() and journal.incidents() == []


def test_an_import_does_not_overwrite_an_incident_recorded_by_hand(
    journal: IncidentJournal, tmp_path: Path
) -> None:
    journal.open("GLPI-1", "P1", "by hand", OPENED, "a")
    export = tmp_path / "tickets.json"
    export.write_text("[]")
    with pytest.raises(UsageError, match="recorded by hand"):
        journal.import_tickets([_ticket(1)], "glpi", export, 0, "ops")


def test_a_damaged_line_is_located(journal: IncidentJournal) -> None:
    journal.open(None, "P1", "x", OPENED, "a")
    with journal.path.open("a") as handle:
        handle.write('{"event": "resolved", "id": "INC-1"}\n')
    with pytest.raises(UsageError, match=r"incidents\.jsonl:2: not an incident journal record"):
        journal.incidents()


def test_the_demo_records_two_incidents_of_a_recent_working_day_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from handover.demo.incidents import record_demo_incidents

    monkeypatch.setenv("HANDOVER_HOME", str(tmp_path / "home"))
    now = datetime(2026, 5, 17, 8, 0, tzinfo=UTC)  # 3 days before: Ascension (Thursday 14 May)
    path = record_demo_incidents("demo-estate", now)
    assert record_demo_incidents("demo-estate", now) == path  # once
    first, second = IncidentJournal(path).incidents()
    assert first.opened_at.date().isoformat() == "2026-05-13"  # the working day before
    assert (first.severity, second.severity) == ("P2", "P3")
    assert first.resolved_at is not None and second.resolved_at is not None
    lines = path.read_text().splitlines()
    assert len(lines) == 6
