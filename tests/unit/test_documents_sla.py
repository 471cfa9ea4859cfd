"""SLA report: availability per host, findings, incidents against their times, breaches."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from handover.contract.loader import load_playbook
from handover.contract.playbook import Playbook
from handover.documents.sla_report import sla_report
from handover.estate.health import HealthCheckResult
from handover.operations.incidents import Incident
from tests.unit.documents_fixtures import NOW, TEST_PLAYBOOK, check_html, load_test_playbook


@pytest.fixture(scope="module")
def playbook(tmp_path_factory: pytest.TempPathFactory) -> Playbook:
    return load_test_playbook(tmp_path_factory)


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
    assert "2026-11-01 00:00 to 2026-12-01 00:00 Europe/Paris (end excluded;" in md
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
    bare = load_playbook(path)
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
