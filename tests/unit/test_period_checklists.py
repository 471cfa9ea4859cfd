"""Checklists kept per period (`operational-2026-11`): stored, audited and cross-checked apart."""

from __future__ import annotations

from pathlib import Path

import pytest

from handover.checklist.model import Status
from handover.checklist.store import ChecklistStore
from handover.errors import UsageError
from handover.phases import Phase, checklist_name, parse_checklist_name

ITEMS = [{"id": "backups", "title": "Backups"}, {"id": "sla-report", "title": "SLA report"}]


def test_names_round_trip() -> None:
    assert parse_checklist_name("operational") == (Phase.OPERATIONAL, None)
    assert parse_checklist_name("operational-2026-11") == (Phase.OPERATIONAL, "2026-11")
    assert parse_checklist_name("operational-2026-q4") == (Phase.OPERATIONAL, "2026-q4")
    assert checklist_name("operational", "2026-q4") == "operational-2026-q4"
    for bad in ("operational-2026-13", "operational-2026-q5", "takeover-2026-11", "operational-x"):
        with pytest.raises(UsageError):
            parse_checklist_name(bad)


def test_each_period_has_its_own_checklist_and_log_entries(tmp_path: Path) -> None:
    store = ChecklistStore(tmp_path)
    store.open("acme", "operational-2026-10", ITEMS)
    store.open("acme", "operational-2026-11", ITEMS)
    store.start("acme", "operational-2026-11", "backups", "tester")
    store.complete("acme", "operational-2026-11", "backups", "tester")

    november = store.load("acme", "operational-2026-11")
    october = store.load("acme", "operational-2026-10")
    assert (november.phase, november.period, november.name) == (
        Phase.OPERATIONAL,
        "2026-11",
        "operational-2026-11",
    )
    assert november.item("backups").status is Status.DONE
    assert october.item("backups").status is Status.PENDING  # another period, untouched
    assert store.path("acme", "operational-2026-11").name == "operational-2026-11.json"
    assert store.periods("acme") == ["operational-2026-10", "operational-2026-11"]
    assert store.current("acme", "operational") == "operational-2026-11"  # last updated
    assert store.current("acme", "takeover") is None
    entries = store.audit_log("acme").readable_entries()
    done = [e for e in entries if e["event"] == "checklist.done"]
    assert [e["data"]["phase"] for e in done] == ["operational-2026-11"]
    assert store.cross_check("acme") == []


def test_cross_check_sees_a_period_checklist_changed_behind_the_store(tmp_path: Path) -> None:
    store = ChecklistStore(tmp_path)
    store.open("acme", "operational-2026-11", ITEMS)
    path = store.path("acme", "operational-2026-11")
    path.write_text(path.read_text().replace('"pending"', '"done"', 1))
    problems = store.cross_check("acme")
    assert any("acme/operational-2026-11/backups" in p for p in problems), problems


def test_people_tick_the_newest_period_or_the_one_they_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from handover.cli import _register, app

    _register()
    monkeypatch.setenv("HANDOVER_HOME", str(tmp_path / "home"))
    store = ChecklistStore()
    items = [{"id": "steering", "title": "Steering committee"}]
    store.open("acme", "operational-2026-10", items)
    store.open("acme", "operational-2026-11", items)
    proof = tmp_path / "minutes.txt"
    proof.write_text("held")
    runner = CliRunner()
    result = runner.invoke(
        app, ["item", "done", "acme", "operational", "steering", "--evidence", str(proof)]
    )
    assert result.exit_code == 0, result.output
    assert "acme/operational-2026-11: steering done" in result.output
    result = runner.invoke(
        app, ["item", "waive", "acme", "operational-2026-10", "steering", "--reason", "no meeting"]
    )
    assert result.exit_code == 0, result.output
    assert store.load("acme", "operational-2026-10").item("steering").status is Status.WAIVED
    done = store.load("acme", "operational-2026-11").item("steering")
    assert done.status is Status.DONE
    assert "/operational/manual/steering/minutes.txt" in str(done.evidence[0].path)  # phase folder
    result = runner.invoke(
        app, ["item", "fail", "acme", "operational-2026-13", "x", "--reason", "r"]
    )
    assert result.exit_code == 2 and "operational-YYYY-MM" in result.output
