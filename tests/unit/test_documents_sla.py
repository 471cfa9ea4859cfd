"""SLA report: availability per host, findings, incidents against their times, breaches."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from handover.contract.loader import load_playbook
from handover.contract.playbook import Playbook
from handover.documents.sla_report import sla_report
from handover.estate.health import HealthCheckResult
from handover.operations.clauses import ClauseRecords, Intervention, Visit
from handover.operations.incidents import Incident
from tests.unit.documents_fixtures import (
    HOSTILE,
    NOW,
    TEST_PLAYBOOK,
    check_html,
    in_language,
    load_test_playbook,
)


@pytest.fixture(scope="module")
def playbook(tmp_path_factory: pytest.TempPathFactory) -> Playbook:
    """In English, in the contract's zone (the French rendering: test_documents_language)."""
    return in_language(load_test_playbook(tmp_path_factory), "en", "Europe/Paris")


def _check(host: str, ok: bool, hours: int, check: str = "reachable") -> HealthCheckResult:
    return HealthCheckResult(
        host=host, check=check, ok=ok, detail="x", at=NOW + timedelta(hours=hours)
    )


def test_sla_report_computes_availability_and_breaches(playbook: Playbook) -> None:
    checks = [_check("web01", True, h) for h in range(199)] + [_check("web01", False, 199)]
    checks += [_check("db01", h % 10 != 0, h) for h in range(100)]  # 90 %
    checks += [_check("files01", True, 1), _check("files01", False, 2, "disk:/srv")]
    checks += [_check("web01", False, -24 * 10)]  # before the period: ignored
    incidents = [
        Incident(
            id="T-1",
            severity="P1",
            summary="site down",
            opened_at=NOW,
            responded_at=NOW + timedelta(minutes=45),
            resolved_at=NOW + timedelta(hours=3),
        ),
        Incident(
            id="T-2",
            severity="P2",
            summary="slow",
            opened_at=NOW,
            responded_at=NOW + timedelta(minutes=20),
            resolved_at=NOW + timedelta(hours=2),
        ),
    ]
    doc = sla_report(playbook, date(2026, 2, 1), date(2026, 2, 28), checks, incidents, NOW)
    md = doc.markdown
    assert "| `web01` | 200 | 199 | 99.50% | **met** |" in md
    assert "| `db01` | 100 | 90 | 90.00% | **breach** |" in md
    assert "| `files01` | 1 | 1 | 100.00% | **met** |" in md
    assert "- **Measured availability:** 96.35%" in md  # 290 / 301 samples
    assert "- **Verdict:** **breached**" in md
    assert "`db01`: availability 90.00% below the 99.5% target" in md
    assert "| `files01` | `disk:/srv` | x |" in md
    assert "45 min (target 30 min) | 3 h (target 4 h) | **breach: response** |" in md
    assert "| `T-2` | P2 | slow |" in md and "2 h (target 8 h) | **met** |" in md
    assert "incident T-1 (P1): response beyond the SLA" in md
    assert "2026-02-01 to 2026-02-28" in doc.title
    checker = check_html(doc)
    assert 'class="status status-breach"' in doc.html
    assert "99.50%" in "".join(checker.text)


def test_sla_report_without_checks_is_not_measured(playbook: Playbook) -> None:
    md = sla_report(playbook, date(2026, 2, 1), date(2026, 2, 28), []).markdown
    assert "- **Measured availability:** not measured" in md
    assert "- **Verdict:** **not measured**" in md
    assert "`web01`: availability not measured" in md


def test_a_period_without_incident_says_so_naming_the_journal(playbook: Playbook) -> None:
    doc = sla_report(
        playbook, date(2026, 11, 1), date(2026, 11, 30), [], incident_source="incidents.jsonl"
    )
    md = doc.markdown
    assert (
        "No incident recorded in the incident journal (incidents.jsonl) between "
        "2026-11-01 and 2026-11-30." in md
    )
    assert "- **Incidents read from:** incidents.jsonl" in md
    assert "Mon-Fri 08:00-18:00 (Europe/Paris), FR public holidays excluded" in md
    assert (
        "- **Period:** 2026-11-01 00:00 (UTC+01:00) to 2026-12-01 00:00 (UTC+01:00) "
        "(end excluded)" in md
    )
    assert "2026-11-01 to 2026-11-30" in doc.title
    # without a source read, the report does not claim there was no incident
    md = sla_report(playbook, date(2026, 11, 1), date(2026, 11, 30), []).markdown
    assert "No incident source was read for this report" in md
    assert "No incident recorded" not in md


def test_an_incident_of_an_earlier_period_is_not_measured_again(playbook: Playbook) -> None:
    march = Incident(id="M-1", severity="P1", summary="mars", opened_at=NOW.replace(month=3))
    november = Incident(id="N-1", severity="P2", summary="nov", opened_at=NOW.replace(month=11))
    md = sla_report(
        playbook, date(2026, 11, 1), date(2026, 11, 30), [], [march, november], NOW, "j.jsonl"
    ).markdown
    incidents, carried = md.split("### Opened before the period, still open at its start")
    assert "`N-1`" in incidents and "`M-1`" not in incidents
    assert "`M-1`" in carried.split("## Breaches")[0]
    assert "incident M-1" not in md  # not a breach of November


def test_without_an_sla_section_targets_are_not_set_in_the_contract(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    start, rest = TEST_PLAYBOOK.split("sla:\n", 1)
    path = tmp_path_factory.mktemp("no-sla") / "p.yaml"
    path.write_text(start + "security:\n" + rest.split("security:\n", 1)[1], encoding="utf-8")
    bare = in_language(load_playbook(path), "en", "Europe/Paris")
    checks = [_check("web01", h % 2 == 0, h) for h in range(10)]
    incident = Incident(id="T-1", severity="P1", summary="down", opened_at=NOW)
    md = sla_report(
        bare, date(2026, 2, 1), date(2026, 2, 28), checks, [incident], NOW, "j"
    ).markdown
    assert "- **Availability target:** not set in the contract" in md
    assert "99" not in md.split("## Availability per host")[0].replace("2026", "")
    assert "- **Verdict:** **no target: not set in the contract**" in md
    assert "| `web01` | 10 | 5 | 50.00% | **no target: not set in the contract** |" in md
    assert "No breach of the service levels in the period." in md


def _hotline(playbook: Playbook, **hotline: object) -> Playbook:
    services = playbook.services
    new = services.hotline.model_copy(update=hotline)
    return playbook.model_copy(update={"services": services.model_copy(update={"hotline": new})})


def test_the_contract_clauses_are_counted_with_their_breaches(playbook: Playbook) -> None:
    book = _hotline(playbook, mode="tickets", quota=2)
    incidents = [
        Incident(id=f"T-{n}", severity="P4", summary="q", opened_at=NOW + timedelta(days=30 * n))
        for n in range(3)
    ]  # Feb, Mar, Apr 2026: three tickets of a quota of two by the end of April
    late = Intervention(
        id="OS-1",
        reason="disque",
        host="db01",
        requested_at=datetime(2026, 4, 13, 9, tzinfo=UTC),  # Monday 11:00 in Paris
        arrived_at=datetime(2026, 4, 14, 12, tzinfo=UTC),  # 7 h + 6 h of business time
    )
    early = Intervention(id="OS-2", reason="x", requested_at=NOW)  # another period
    visits = [Visit(id="V-1", on=date(2026, 4, 2), technician="Paul", work=HOSTILE)]
    clauses = ClauseRecords([late, early], "onsite.jsonl", visits, "visits.jsonl")
    doc = sla_report(
        book, date(2026, 4, 1), date(2026, 6, 30), [], incidents, NOW, "incidents.jsonl", clauses
    )
    md = doc.markdown
    hotline = md.split("## Hotline quota")[1].split("## On-site interventions")[0]
    assert "- **Used:** 3 ticket(s) (3 incident(s))" in hotline
    assert "- **Remaining:** 0 ticket(s)" in hotline
    assert "- **Contract year:** 2026-02-01 to 2027-02-01" in hotline
    assert "**exceeded**" in hotline
    onsite = md.split("## On-site interventions")[1].split("## Maintenance visits")[0]
    assert (
        "| `OS-1` | `db01` | 2026-04-13 11:00 (UTC+02:00) | — | 2026-04-14 14:00 (UTC+02:00) "
        "| 13 h |" in onsite
    )
    assert "**breach**" in onsite and "`OS-2`" not in onsite
    visits_md = md.split("## Maintenance visits")[1].split("## Breaches")[0]
    assert "- **Visits in the contract year:** 1 (1 due by now)" in visits_md
    assert "- **Visits in the period:** 1 (pro rata 1.0)" in visits_md
    breaches = md.split("## Breaches")[1]
    assert "hotline quota exceeded: 3 ticket(s) used of 2 ticket(s)" in breaches
    assert "`OS-1`: on site after 13 h, beyond 8 h" in breaches
    assert "maintenance visits" not in breaches  # 1 done, 1 due
    check_html(doc)  # the hostile work text is escaped


def test_clauses_without_journals_say_they_were_not_read(playbook: Playbook) -> None:
    md = sla_report(playbook, date(2026, 11, 1), date(2026, 11, 30), []).markdown
    assert "- **Used:** not measured: no incident source was read" in md
    assert "No on-site journal was read for this report" in md
    assert "No visit journal was read for this report" in md
    md = sla_report(
        playbook,
        date(2026, 11, 1),
        date(2026, 11, 30),
        [],
        incident_source="incidents.jsonl",
        clauses=ClauseRecords(onsite_source="onsite.jsonl", visit_source="visits.jsonl"),
    ).markdown
    assert "- **Hotline:** unlimited" in md
    assert "No on-site intervention requested in the period (onsite.jsonl)." in md
    assert "No visit logged in the period (visits.jsonl)." in md
    # ten months into the contract year, none of 4 visits: 3 due
    assert "maintenance visits: 0 in the contract year, 3 due by now (4 per year)" in md


# -- availability per service, from the stored health samples (#14 H) ----------------------


def _samples(check: str, service: str, start: datetime, hours: int, down: set[int]) -> list[Any]:
    from handover.estate.health_checks import HealthSample

    return [
        HealthSample(
            at=start + timedelta(minutes=5 * i),
            check=check,
            service=service,
            host=None,
            kind="http",
            ok=i not in down,
            detail="",
            interval_s=300,
        )
        for i in range(hours * 12)
    ]


def _services(playbook: Playbook, start: datetime, end: datetime, samples: list[Any]) -> list[Any]:
    from zoneinfo import ZoneInfo

    from handover.operations.availability import (
        CheckRef,
        maintenance_calendar,
        service_availability,
    )

    window = maintenance_calendar(playbook.services.maintenance.window, ZoneInfo("Europe/Paris"))
    refs = [CheckRef("web-http", "web", 300), CheckRef("db-pg", "db", 300)]
    return service_availability(refs, samples, start, end, window)


def test_sla_report_per_service_from_samples(playbook: Playbook) -> None:
    start = datetime(2026, 2, 2, tzinfo=UTC)  # a Monday: the window is Tue 20:00-23:00 Paris
    end = start + timedelta(days=7)
    samples = _samples("web-http", "web", start, 24 * 7, down={5})
    samples += _samples("db-pg", "db", start, 24 * 7, down=set())
    services = _services(playbook, start, end, samples)
    doc = sla_report(playbook, start, end, [], generated_at=NOW, services=services)
    md = doc.markdown
    assert "## Availability per service" in md and "## Availability per host" not in md
    # 3 h of window (36 samples) not counted; one failed sample among 2016 - 36 = 1980.
    assert "| `web` | web-http | 1980 (1980) | 5 min | 3 h | 99.95% | **met** |" in md
    assert "| `db` | db-pg | 1980 (1980) | 5 min | 3 h | 100.00% | **met** |" in md
    assert "- **Measured availability:** 99.95%" in md
    assert "No breach of the service levels in the period." in md
    check_html(doc)


def test_sla_report_thin_samples_are_not_measured_never_100(playbook: Playbook) -> None:
    """The issue: one check in the run gave 'Measured availability 100.00 % — met'."""
    start = datetime(2026, 1, 5, tzinfo=UTC)
    end = start + timedelta(days=30)
    samples = _samples("web-http", "web", end - timedelta(hours=1), 1, down=set())
    samples += _samples("db-pg", "db", start, 24 * 30, down=set())
    services = _services(playbook, start, end, samples)
    md = sla_report(playbook, start, end, [], generated_at=NOW, services=services).markdown
    assert "- **Measured availability:** not measured" in md
    assert "- **Verdict:** **not measured**" in md
    assert "not measured: web-http: 12 of " in md
    assert "`web`: availability not measured (web-http: 12 of" in md
    assert "| `db` |" in md and "**met**" in md
