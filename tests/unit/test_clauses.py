"""Contract clauses counted: the contract year, hotline quota (and its 80 % alert), on-site
delays, maintenance visits pro rata; and the two journals behind them."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from handover.checklist.audit import AuditLog
from handover.contract.playbook import Playbook
from handover.errors import UsageError
from handover.operations.business_calendar import contract_calendar
from handover.operations.clauses import (
    QUOTA_AUDIT_EVENT,
    HotlineUsage,
    Intervention,
    Visit,
    alerted_years,
    contract_year,
    hotline_usage,
    onsite_delay_hours,
    onsite_times,
    quota_alert_due,
    visit_count,
)
from handover.operations.incidents import Incident
from handover.operations.onsite_journal import OnsiteJournal
from handover.operations.visit_journal import VisitJournal
from tests.unit.documents_fixtures import load_test_playbook

PARIS = ZoneInfo("Europe/Paris")


@pytest.fixture(scope="module")
def playbook(tmp_path_factory: pytest.TempPathFactory) -> Playbook:
    return load_test_playbook(tmp_path_factory)  # effective 2026-02-01, Mon-Fri 08-18 Paris


def with_hotline(playbook: Playbook, **hotline: Any) -> Playbook:
    services = playbook.services
    new = services.hotline.model_copy(update=hotline)
    return playbook.model_copy(update={"services": services.model_copy(update={"hotline": new})})


def with_onsite(playbook: Playbook, **onsite: Any) -> Playbook:
    services = playbook.services
    assert services.onsite is not None
    new = services.onsite.model_copy(update=onsite)
    return playbook.model_copy(update={"services": services.model_copy(update={"onsite": new})})


def paris(*args: int) -> datetime:
    return datetime(*args, tzinfo=PARIS)  # type: ignore[misc]


def incident(n: int, opened: datetime, resolved: datetime | None = None) -> Incident:
    return Incident(id=f"T-{n}", severity="P2", summary="x", opened_at=opened, resolved_at=resolved)


# -- contract year ----------------------------------------------------------------------


def test_the_contract_year_runs_from_the_effective_date_in_the_contract_zone() -> None:
    start, end = contract_year(date(2026, 2, 1), datetime(2027, 1, 31, 23, 30, tzinfo=UTC), PARIS)
    # 2027-01-31 23:30 UTC is already 1 February in Paris: the second contract year
    assert (start, end) == (paris(2027, 2, 1).astimezone(UTC), paris(2028, 2, 1).astimezone(UTC))
    before = contract_year(date(2026, 2, 1), datetime(2025, 6, 1, tzinfo=UTC), PARIS)
    assert before[0] == paris(2026, 2, 1).astimezone(UTC)  # before the start: the first year
    leap = contract_year(date(2024, 2, 29), datetime(2025, 3, 1, tzinfo=UTC), UTC)
    assert leap == (datetime(2025, 2, 28, tzinfo=UTC), datetime(2026, 2, 28, tzinfo=UTC))


@settings(max_examples=150, deadline=None)
@given(
    st.dates(min_value=date(2000, 1, 1), max_value=date(2040, 12, 31)),
    st.integers(min_value=0, max_value=20 * 366 * 24),
)
def test_the_contract_year_holds_the_moment_and_lasts_a_year(effective: date, hours: int) -> None:
    at = datetime.combine(effective, datetime.min.time(), tzinfo=PARIS) + timedelta(hours=hours)
    start, end = contract_year(effective, at, PARIS)
    assert start <= at < end
    hours_long = (end - start).total_seconds() / 3600
    assert 365 * 24 - 1 <= hours_long <= 366 * 24 + 1  # a DST change may fall inside


# -- hotline ----------------------------------------------------------------------------


def test_a_ticket_quota_counts_the_incidents_opened_in_the_contract_year(
    playbook: Playbook,
) -> None:
    book = with_hotline(playbook, mode="tickets", quota=5)
    incidents = [
        incident(1, paris(2026, 1, 20, 10)),  # previous contract year: not counted
        incident(2, paris(2026, 2, 2, 10)),
        incident(3, paris(2026, 3, 2, 10)),
        incident(4, paris(2026, 4, 2, 10)),
        incident(5, paris(2026, 6, 2, 10)),  # after as_of: not yet
    ]
    usage = hotline_usage(book, incidents, paris(2026, 5, 1), contract_calendar(book))
    assert (usage.used, usage.tickets, usage.remaining, usage.percent) == (3.0, 3, 2.0, 60.0)
    assert usage.year_key == paris(2026, 2, 1).astimezone(UTC).isoformat()
    assert not usage.exceeded


def test_an_hours_quota_counts_business_time_open_ones_up_to_the_end(playbook: Playbook) -> None:
    book = with_hotline(playbook, mode="hours", quota=10)
    incidents = [
        # Friday 17:00 to Monday 09:00: one hour on Friday, one on Monday
        incident(1, paris(2026, 3, 6, 17), paris(2026, 3, 9, 9)),
        # still open at as_of (Tuesday 11:30, opened 08:00): 3.5 hours so far
        incident(2, paris(2026, 3, 10, 8)),
    ]
    usage = hotline_usage(book, incidents, paris(2026, 3, 10, 11, 30), contract_calendar(book))
    assert usage.used == pytest.approx(5.5)
    assert usage.remaining == pytest.approx(4.5)


def test_unlimited_hotline_counts_tickets_without_quota(playbook: Playbook) -> None:
    usage = hotline_usage(
        playbook,
        [incident(1, paris(2026, 3, 2, 9))],
        paris(2026, 4, 1),
        contract_calendar(playbook),
    )
    assert (usage.quota, usage.percent, usage.remaining, usage.tickets) == (None, None, None, 1)
    assert not quota_alert_due(usage, [])


def _usage(used: float, quota: int | None, year: int = 2026) -> HotlineUsage:
    start = datetime(year, 2, 1, tzinfo=UTC)
    mode = "tickets" if quota is not None else "unlimited"
    return HotlineUsage(mode, quota, used, int(used), start, start + timedelta(days=365), start)


def test_the_80_percent_alert_fires_at_80_percent_once_per_contract_year() -> None:
    assert not quota_alert_due(_usage(7, 10), [])
    assert quota_alert_due(_usage(8, 10), [])
    assert quota_alert_due(_usage(1, 0), [])  # a zero quota is used up by the first ticket
    first = _usage(9, 10)
    entries: list[dict[str, object]] = [
        {"event": "incident.opened", "data": {"year_start": first.year_key}},
        {"event": QUOTA_AUDIT_EVENT, "data": {"year_start": first.year_key}},
    ]
    assert alerted_years(entries) == [first.year_key]
    assert not quota_alert_due(first, alerted_years(entries))
    assert quota_alert_due(_usage(9, 10, year=2027), alerted_years(entries))


def test_the_flow_side_alert_is_audited_then_emitted_once(
    playbook: Playbook, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tasks.clauses

    emitted: list[dict[str, Any]] = []
    monkeypatch.setattr(
        tasks.clauses, "emit_event", lambda event, **kw: emitted.append(kw | {"event": event})
    )
    monkeypatch.setenv("HANDOVER_ACTOR", "ops@provider")
    book = with_hotline(playbook, mode="tickets", quota=5)
    audit = AuditLog(tmp_path / "audit.log")
    incidents = [incident(n, paris(2026, 3, n, 10)) for n in range(1, 5)]  # 4 of 5: 80 %
    at = paris(2026, 4, 1)
    assert tasks.clauses.alert_hotline_quota(book, audit, incidents[:3], at) is None
    assert tasks.clauses.alert_hotline_quota(book, audit, incidents, at) is not None
    assert tasks.clauses.alert_hotline_quota(book, audit, incidents, at) is None  # once
    assert [e["event"] for e in emitted] == ["handover.hotline.quota-80"]
    assert emitted[0]["payload"]["percent"] == 80.0
    assert emitted[0]["resource"]["prefect.resource.id"] == "handover.contract.demo-estate"
    (entry,) = [e for e in audit.entries() if e["event"] == QUOTA_AUDIT_EVENT]
    assert (entry["actor"], entry["data"]["used"], entry["data"]["quota"]) == (
        "ops@provider",
        4.0,
        5,
    )


# -- on-site ----------------------------------------------------------------------------


def _intervention(requested: datetime, arrived: datetime | None = None) -> Intervention:
    return Intervention(id="OS-1", reason="disk", requested_at=requested, arrived_at=arrived)


def test_the_onsite_delay_counts_business_hours_unless_the_wall_clock(playbook: Playbook) -> None:
    cal = contract_calendar(playbook)
    # Friday 16:00 to Monday 12:00: 2 h on Friday + 4 h on Monday; 68 h on the wall
    i = _intervention(paris(2026, 3, 6, 16), paris(2026, 3, 9, 12))
    assert onsite_delay_hours(i, paris(2026, 4, 1), "business", cal) == pytest.approx(6)
    assert onsite_delay_hours(i, paris(2026, 4, 1), "wall", cal) == pytest.approx(68)
    (met,) = onsite_times(playbook, [i], paris(2026, 3, 1), paris(2026, 4, 1), cal)
    assert (met.arrived, met.late, met.target_hours) == (True, False, 8)
    (late,) = onsite_times(
        with_onsite(playbook, clock="wall"), [i], paris(2026, 3, 1), paris(2026, 4, 1), cal
    )
    assert late.late


def test_a_technician_still_awaited_past_the_delay_is_late_already(playbook: Playbook) -> None:
    cal = contract_calendar(playbook)
    waiting = _intervention(paris(2026, 3, 2, 8))
    (row,) = onsite_times(playbook, [waiting], paris(2026, 3, 1), paris(2026, 3, 3, 9), cal)
    assert (row.arrived, row.hours, row.late) == (False, pytest.approx(11), True)
    fixed = waiting.model_copy(update={"closed_at": paris(2026, 3, 2, 10)})  # fixed remotely
    (row,) = onsite_times(playbook, [fixed], paris(2026, 3, 1), paris(2026, 3, 3, 9), cal)
    assert (row.arrived, row.hours, row.late) == (False, pytest.approx(2), False)
    outside = onsite_times(playbook, [waiting], paris(2026, 3, 3), paris(2026, 4, 1), cal)
    assert outside == []  # requested before the period: reported in its own period


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=0, max_value=24 * 30), st.integers(min_value=0, max_value=24 * 20))
def test_business_delay_never_exceeds_the_wall_clock(
    playbook: Playbook, start_hours: int, length: int
) -> None:
    start = paris(2026, 3, 1).astimezone(UTC) + timedelta(hours=start_hours)
    i = _intervention(start, start + timedelta(hours=length))
    cal = contract_calendar(playbook)
    business = onsite_delay_hours(i, start, "business", cal)
    assert 0 <= business <= onsite_delay_hours(i, start, "wall", cal) == pytest.approx(length)


# -- visits -----------------------------------------------------------------------------


def test_visits_count_against_the_year_pro_rata(playbook: Playbook) -> None:
    visits = [
        Visit(id="V-1", on=date(2026, 1, 20), technician="a", work="w"),  # previous year
        Visit(id="V-2", on=date(2026, 3, 10), technician="a", work="w"),
        Visit(id="V-3", on=date(2026, 6, 2), technician="a", work="w"),
    ]
    # period: June 2026 (Paris days); 4 visits a year, four months in: 1 due
    count = visit_count(playbook, visits, paris(2026, 6, 1), paris(2026, 7, 1), PARIS)
    assert (count.per_year, count.in_year, count.in_period, count.due_to_date) == (4, 2, 1, 1)
    assert count.expected_in_period == pytest.approx(4 * 30 / 365)
    assert (count.year_start, count.year_end) == (date(2026, 2, 1), date(2027, 2, 1))
    assert not count.behind
    late = visit_count(playbook, visits[:1], paris(2026, 11, 1), paris(2026, 12, 1), PARIS)
    assert (late.in_year, late.due_to_date, late.behind) == (0, 3, True)


# -- journals ---------------------------------------------------------------------------


def test_the_onsite_journal_keeps_the_steps_in_order(tmp_path: Path) -> None:
    audit = AuditLog(tmp_path / "audit.log")
    journal = OnsiteJournal(tmp_path / "onsite.jsonl", audit)
    t0 = paris(2026, 3, 2, 9)
    journal.request(None, "Disque HS", t0, "a", host="db01")
    with pytest.raises(UsageError, match="before it was requested"):
        journal.step("OS-1", "arrived", t0 - timedelta(hours=1), "a")
    with pytest.raises(UsageError, match="name who is sent"):
        journal.step("OS-1", "dispatched", t0, "a", " ")
    journal.step("OS-1", "dispatched", t0 + timedelta(hours=1), "a", "Paul")
    journal.step("OS-1", "arrived", t0 + timedelta(hours=3), "a")
    with pytest.raises(UsageError, match="already arrived"):
        journal.step("OS-1", "arrived", t0 + timedelta(hours=4), "a")
    journal.request("OS-7", "Onduleur", t0, "a")
    journal.step("OS-7", "arrived", t0 + timedelta(hours=2), "a")  # sent by phone: no dispatch
    with pytest.raises(
        UsageError, match=r"already arrived at .*: too late to record it dispatched"
    ):
        journal.step("OS-7", "dispatched", t0 + timedelta(hours=1), "a", "Paul")
    with pytest.raises(UsageError, match="no intervention OS-9"):
        journal.step("OS-9", "closed", t0, "a")
    i, _ = journal.interventions()
    assert (i.technician, i.host, i.arrived_at, i.closed_at) == (
        "Paul",
        "db01",
        t0 + timedelta(hours=3),
        None,
    )
    events = [e["event"] for e in audit.entries()]
    assert events == [
        "onsite.requested",
        "onsite.dispatched",
        "onsite.arrived",
        "onsite.requested",
        "onsite.arrived",
    ]
    assert "Paul" not in audit.path.read_text() and "Disque" not in audit.path.read_text()


def test_a_broken_journal_line_is_one_located_error(tmp_path: Path) -> None:
    path = tmp_path / "visits.jsonl"
    journal = VisitJournal(path)
    journal.log(date(2026, 3, 10), "Paul", "patches", "a", today=date(2026, 3, 10))
    with path.open("a") as handle:
        handle.write('{"event": "logged", "id": "V-2"}\n')
    with pytest.raises(UsageError, match=r"visits.jsonl:2: not a visit journal record"):
        journal.visits()


def test_concurrent_logs_get_distinct_ids_and_whole_lines(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    journal = VisitJournal(tmp_path / "visits.jsonl", AuditLog(tmp_path / "audit.log"))

    def log(n: int) -> str:
        return journal.log(date(2026, 3, 1 + n), "Paul", f"work {n}", "a", date(2026, 3, 31)).id

    with ThreadPoolExecutor(max_workers=8) as pool:
        ids = list(pool.map(log, range(16)))
    assert sorted(ids) == sorted(f"V-{n}" for n in range(1, 17))
    assert len(journal.visits()) == 16  # every line parses: no interleaved writes
    assert len(AuditLog(tmp_path / "audit.log").entries()) == 16
