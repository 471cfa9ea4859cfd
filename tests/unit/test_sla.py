"""SLA figures: the period's bounds, availability per host, the verdict, late incidents."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from handover.contract.loader import load_playbook
from handover.contract.playbook import Playbook
from handover.estate.health import HealthCheckResult
from handover.operations.incident_journal import IncidentJournal, journal_path
from handover.operations.incidents import Incident
from handover.operations.sla import (
    measure_incidents,
    period_bounds,
    reporting_period,
    sla_figures,
)
from handover.state.layout import ContractPaths
from tests.unit.documents_fixtures import NOW, TEST_PLAYBOOK, load_test_playbook


@pytest.fixture(scope="module")
def playbook(tmp_path_factory: pytest.TempPathFactory) -> Playbook:
    return load_test_playbook(tmp_path_factory)


def _check(host: str, ok: bool, at: datetime, check: str = "reachable") -> HealthCheckResult:
    return HealthCheckResult(host=host, check=check, ok=ok, detail="x", at=at)


def test_period_bounds_cover_whole_days_for_dates_and_are_exact_for_datetimes() -> None:
    start, end = period_bounds(date(2026, 2, 1), date(2026, 2, 28))
    assert (start, end) == (datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC))
    paris = period_bounds(date(2026, 7, 1), date(2026, 7, 31), ZoneInfo("Europe/Paris"))
    assert paris == (datetime(2026, 6, 30, 22, tzinfo=UTC), datetime(2026, 7, 31, 22, tzinfo=UTC))
    start, end = period_bounds(datetime(2026, 2, 1, 9, 30), NOW)
    assert start == datetime(2026, 2, 1, 9, 30, tzinfo=UTC)  # naive: read as UTC
    assert end == NOW


def test_hosts_not_measured_breach_and_hosts_outside_the_perimeter_are_counted(
    playbook: Playbook,
) -> None:
    checks = [
        _check("web01", True, NOW),
        _check("web01", True, NOW + timedelta(hours=1)),
        _check("zz99", False, NOW),
        _check("db01", True, NOW - timedelta(days=30)),  # before the period
        _check("files01", False, NOW, "disk:/srv"),
    ]
    figures = sla_figures(playbook, date(2026, 2, 1), date(2026, 2, 28), checks)
    assert [h.host for h in figures.hosts] == ["web01", "db01", "files01", "zz99"]
    web, db, files, stray = figures.hosts
    assert (web.checks, web.passed, web.percent, web.met) == (2, 2, 100.0, True)
    assert (db.checks, db.percent, db.met) == (0, None, False)
    assert files.percent is None  # a full disk is a finding, not a sample
    assert (stray.percent, stray.met) == (0.0, False)
    assert figures.overall == pytest.approx(200 / 3)
    assert figures.verdict == "breached"
    assert [c.check for c in figures.findings] == ["disk:/srv"]
    assert len(figures.checks) == 4


def test_verdict_is_met_only_when_every_host_is_measured_and_at_target(
    playbook: Playbook,
) -> None:
    hosts = ("web01", "db01", "files01")
    figures = sla_figures(
        playbook, NOW, NOW + timedelta(days=1), [_check(h, True, NOW) for h in hosts]
    )
    assert figures.verdict == "met"
    assert sla_figures(playbook, NOW, NOW + timedelta(days=1), []).verdict == "not measured"


def test_incidents_are_late_for_a_missing_or_slow_answer_and_ordered_by_opening(
    playbook: Playbook,
) -> None:
    incidents = [
        Incident(
            id="late",
            severity="P1",
            summary="s",
            opened_at=NOW,
            responded_at=NOW + timedelta(minutes=31),
            resolved_at=NOW + timedelta(hours=4),
        ),
        Incident(id="open", severity="P2", summary="s", opened_at=NOW - timedelta(hours=1)),
        Incident(id="odd", severity="P9", summary="s", opened_at=NOW + timedelta(hours=1)),
    ]
    figures = sla_figures(playbook, date(2026, 2, 1), date(2026, 2, 28), [], incidents)
    opened, late, odd = figures.incidents
    assert (opened.incident.id, opened.late) == ("open", ("response", "unresolved"))
    assert (late.response_minutes, late.resolution_minutes) == (31, 240)
    assert late.late == ("response",)  # 4 h is within the 4 h resolution time
    assert (odd.severity, odd.late) == (None, ())


def test_naive_incident_times_are_read_as_utc(playbook: Playbook) -> None:
    incident = Incident(
        id="n",
        severity="P1",
        summary="s",
        opened_at=datetime(2026, 2, 3, 10, 0),
        responded_at=NOW + timedelta(minutes=10),
    )
    (times,) = sla_figures(playbook, NOW, NOW + timedelta(hours=1), [], [incident]).incidents
    assert times.response_minutes == 10


def test_reporting_period_is_the_window_before_the_run() -> None:
    assert reporting_period(NOW, "monthly") == (NOW - timedelta(days=30), NOW)
    assert reporting_period(NOW, "quarterly") == (NOW - timedelta(days=91), NOW)


def test_measured_incidents_follow_the_sla_rule_in_file_order(playbook: Playbook) -> None:
    incidents = [
        Incident(
            id="fast",
            severity="P1",
            summary="s",
            opened_at=NOW,
            responded_at=NOW + timedelta(minutes=10),
            resolved_at=NOW + timedelta(hours=5),
        ),
        Incident(id="open", severity="P2", summary="s", opened_at=NOW - timedelta(hours=1)),
        Incident(id="odd", severity="P9", summary="s", opened_at=NOW),
    ]
    measured = measure_incidents(playbook, incidents, "incidents.json")
    assert (measured.count, measured.source) == (3, "incidents.json")
    fast, still_open, odd = measured.incidents
    assert (fast.id, fast.response_minutes, fast.resolution_hours) == ("fast", 10, 5)
    assert (fast.response_met, fast.resolution_met) == (True, False)
    # No answer yet is not within the SLA's times (the SLA report's rule).
    assert (still_open.response_minutes, still_open.resolution_hours) == (None, None)
    assert (still_open.response_met, still_open.resolution_met) == (False, False)
    # A level the SLA does not define cannot be measured.
    assert (odd.response_met, odd.resolution_met) == (None, None)


PARIS = ZoneInfo("Europe/Paris")


def _incident(name: str, opened: datetime, **times: datetime) -> Incident:
    return Incident(id=name, severity="P2", summary="s", opened_at=opened, **times)


def test_only_incidents_opened_in_the_period_are_measured_and_open_ones_carry_over(
    playbook: Playbook,
) -> None:
    march = _incident("march", datetime(2026, 3, 10, 9, tzinfo=PARIS))
    october = _incident(
        "october",
        datetime(2026, 10, 30, 10, tzinfo=PARIS),
        resolved_at=datetime(2026, 11, 2, 10, tzinfo=PARIS),
    )
    straddling = _incident(
        "straddling",
        datetime(2026, 10, 31, 23, tzinfo=UTC),
        resolved_at=datetime(2026, 11, 3, 10, tzinfo=PARIS),
    )
    inside = _incident("inside", datetime(2026, 11, 5, 9, tzinfo=PARIS))
    after = _incident("after", datetime(2026, 12, 1, 0, 0, tzinfo=UTC))
    figures = sla_figures(
        playbook, date(2026, 11, 1), date(2026, 11, 30), [], [after, inside, march, october]
    )
    assert [t.incident.id for t in figures.incidents] == ["inside"]
    # the March P1 still open and the October one resolved in November: carried over, not measured
    assert [t.incident.id for t in figures.carried_over] == ["march", "october"]
    # the report's days are the contract's (Paris) days: 00:00 Paris on 1 November is
    # 23:00 UTC on 31 October, and November's; a minute earlier is October's
    earlier = straddling.model_copy(
        update={"id": "earlier", "opened_at": datetime(2026, 10, 31, 22, 59, tzinfo=UTC)}
    )
    figures = sla_figures(
        playbook, date(2026, 11, 1), date(2026, 11, 30), [], [straddling, earlier]
    )
    assert [t.incident.id for t in figures.incidents] == ["straddling"]
    assert [t.incident.id for t in figures.carried_over] == ["earlier"]
    assert figures.start == datetime(2026, 10, 31, 23, tzinfo=UTC)
    assert figures.end == datetime(2026, 11, 30, 23, tzinfo=UTC)


def test_incident_times_are_business_time_on_the_hotline_hours(playbook: Playbook) -> None:
    # P2 opened on Friday 6 February 17:50 Paris, answered Monday 08:20, solved Monday 15:50
    incident = _incident(
        "weekend",
        datetime(2026, 2, 6, 17, 50, tzinfo=PARIS),
        responded_at=datetime(2026, 2, 9, 8, 20, tzinfo=PARIS),
        resolved_at=datetime(2026, 2, 9, 15, 50, tzinfo=PARIS),
    )
    (times,) = sla_figures(playbook, date(2026, 2, 1), date(2026, 2, 28), [], [incident]).incidents
    assert (times.response_minutes, times.resolution_minutes) == (30, 8 * 60)
    assert times.late == ()  # 30 min <= 60, 8 h <= 8 h: met, although 70 h passed on the clock
    assert sla_figures(playbook, NOW, NOW, []).calendar == (
        "hotline hours Mon-Fri 08:00-18:00 (Europe/Paris), FR public holidays excluded"
    )


def test_without_an_sla_section_there_is_no_target(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    start, rest = TEST_PLAYBOOK.split("sla:\n", 1)
    path = tmp_path_factory.mktemp("no-sla") / "p.yaml"
    path.write_text(start + "security:\n" + rest.split("security:\n", 1)[1], encoding="utf-8")
    bare = load_playbook(path)
    late = _incident("slow", NOW, responded_at=NOW + timedelta(hours=5))
    checks = [_check("web01", False, NOW)]
    figures = sla_figures(bare, date(2026, 2, 1), date(2026, 2, 28), checks, [late])
    assert (figures.target, figures.sla_set, figures.verdict) == (None, False, "no target")
    assert figures.hosts[0].percent == 0.0 and not figures.hosts[0].breached
    assert (figures.incidents[0].severity, figures.incidents[0].late) == (None, ())


def test_measured_incidents_of_a_period_name_their_source_even_when_there_is_none(
    playbook: Playbook,
) -> None:
    period = (datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC))
    march = _incident("march", datetime(2026, 3, 10, 9, tzinfo=PARIS))
    measured = measure_incidents(playbook, [march], "incidents.jsonl", period)
    assert (measured.count, measured.period_start, measured.period_end) == (0, *period)
    assert measured.statement == (
        "No incident recorded in the incident journal (incidents.jsonl) between "
        "2026-11-01T00:00:00+00:00 and 2026-12-01T00:00:00+00:00 (end excluded)."
    )
    assert measured.calendar is not None and "Europe/Paris" in measured.calendar


class _Run:
    """What `record_incidents` uses of a PhaseRun: the contract's paths and a JSON writer."""

    def __init__(self, root: Path) -> None:
        self.paths = ContractPaths("demo-estate", root)
        self.written: dict[str, Any] = {}

    def write_json(self, where: Path, value: Any, kind: str) -> str:
        self.written[str(where)] = value
        return kind


def test_the_incidents_item_needs_the_journal_and_reads_its_period(
    playbook: Playbook, tmp_path: Path
) -> None:
    from flows._phase import StepFailed
    from flows.operational_steps import record_incidents

    run = _Run(tmp_path)
    period = (datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC))
    with pytest.raises(StepFailed, match=r"no incident journal \(incidents\.jsonl\)"):
        record_incidents(run, playbook, period)  # type: ignore[arg-type]
    assert run.written == {}
    export = tmp_path / "none.json"
    export.write_text("[]")
    journal = IncidentJournal(journal_path(run.paths.root))
    journal.import_tickets([], "glpi", export, 0, "ops")  # the tool had no ticket
    record_incidents(run, playbook, period)  # type: ignore[arg-type]
    (measured,) = run.written.values()
    assert measured.count == 0 and measured.source == "incidents.jsonl"
    assert measured.statement.startswith(
        "No incident recorded in the incident journal (incidents.jsonl) between 2026-11-01"
    )
