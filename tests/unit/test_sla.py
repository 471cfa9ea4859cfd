"""SLA figures: the period's bounds, availability per host, the verdict, late incidents."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from handover.contract.playbook import Playbook
from handover.estate.health import HealthCheckResult
from handover.operations.incidents import Incident
from handover.operations.sla import (
    measure_incidents,
    period_bounds,
    reporting_period,
    sla_figures,
)
from tests.unit.documents_fixtures import NOW, load_test_playbook


@pytest.fixture(scope="module")
def playbook(tmp_path_factory: pytest.TempPathFactory) -> Playbook:
    return load_test_playbook(tmp_path_factory)


def _check(host: str, ok: bool, at: datetime, check: str = "reachable") -> HealthCheckResult:
    return HealthCheckResult(host=host, check=check, ok=ok, detail="x", at=at)


def test_period_bounds_cover_whole_days_for_dates_and_are_exact_for_datetimes() -> None:
    start, end = period_bounds(date(2026, 2, 1), date(2026, 2, 28))
    assert (start, end) == (datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC))
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
    (times,) = sla_figures(playbook, NOW, NOW, [], [incident]).incidents
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
