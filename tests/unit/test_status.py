"""`handover status`: the core that gathers and shapes a contract's status, and the command.

The command runs here without any Prefect server (one line says so, the rest
shows) and against an address where nothing answers; the run list against a
real server is tests/integration/test_status.py.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

import flows.commands  # noqa: F401  (registers status)
import handover.cli.init_cmd  # noqa: F401  (registers init)
from handover.checklist.store import ChecklistStore
from handover.cli import app
from handover.contract.deadlines import exit_deadlines
from handover.contract.loader import load_playbook
from handover.contract.playbook import phase_items
from handover.operations.status import (
    EXIT_NOTICE_FILE,
    RunLine,
    contract_deadlines,
    contract_ids,
    current_phase,
    find_playbooks,
    gather_status,
    overview_row,
    phase_progress,
    phase_rows,
    read_checklists,
    read_exit_dates,
    run_rows,
)
from handover.phases import Phase
from handover.state.home import handover_home

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ACME = PROJECT_ROOT / "playbooks" / "examples" / "acme.yaml"
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
runner = CliRunner()


def store_with_takeover(root: Path, contract: str = "acme-2026") -> ChecklistStore:
    """acme's takeover opened: one item done, one failed, the rest pending."""
    store = ChecklistStore(root)
    store.open(contract, Phase.TAKEOVER, phase_items(load_playbook(ACME), "takeover"))
    store.start(contract, "takeover", "parties-confirmed", "t")
    store.complete(contract, "takeover", "parties-confirmed", "t", [])
    store.start(contract, "takeover", "inventory", "t")
    store.fail(contract, "takeover", "inventory", "t", "db01 unreachable")
    return store


def test_phases_counted_and_the_current_one_named(tmp_path: Path) -> None:
    store = store_with_takeover(tmp_path)
    checklists = read_checklists(store, "acme-2026")
    assert checklists[Phase.IMPLEMENTATION] is None
    progress = [phase_progress(phase, c) for phase, c in checklists.items()]
    takeover = progress[0]
    assert (takeover.done, takeover.failed, takeover.pending, takeover.total) == (1, 1, 7, 9)
    assert takeover.failed_items == ["inventory"] and not takeover.complete
    assert current_phase(progress) == "takeover (7 pending, 1 failed)"
    assert current_phase([phase_progress(Phase.TAKEOVER, None)]) == "not started"
    rows = phase_rows(
        gather_status(
            "acme-2026", checklists, playbook=None, exit_dates=None, today=NOW.date(), now=NOW
        )
    )
    assert rows[0][:6] == ("takeover", "1", "0", "7", "0", "1")
    assert (
        rows[0][6] == "inventory (failed), hosts-reachable, credentials-received, "
        "baseline-snapshot, +4"
    )
    assert rows[1] == ("implementation", "—", "—", "—", "—", "—", "not started")


def test_a_complete_phase_says_so(tmp_path: Path) -> None:
    store = ChecklistStore(tmp_path)
    items = phase_items(load_playbook(ACME), "takeover")
    checklist = store.open("acme-2026", Phase.TAKEOVER, items)
    for item in checklist.items:
        store.waive("acme-2026", "takeover", item.id, "t", "not needed")
    progress = phase_progress(Phase.TAKEOVER, store.load("acme-2026", "takeover"))
    assert progress.complete
    assert current_phase([progress]) == "takeover (complete)"


def test_deadlines_from_the_playbook_and_the_exit_calendar() -> None:
    playbook = load_playbook(ACME)  # effective 2026-02-01, 36 months, notice 3 months
    found = contract_deadlines(playbook, None, date(2026, 1, 15))
    assert [(d.what, d.due, d.days_left) for d in found] == [
        ("services start", date(2026, 2, 1), 17),
        ("notice to end at the term, at the latest", date(2028, 11, 1), 1021),
        ("initial term ends", date(2029, 2, 1), 1113),
    ]
    calendar = exit_deadlines(playbook.reversibility.deadlines, date(2026, 3, 1))
    later = contract_deadlines(playbook, calendar, calendar.erasure_by + timedelta(days=2))
    whats = [d.what for d in later]
    # past dates drop out, except the erasure deadline: late erasure is a breach
    assert "services start" not in whats and "switch-over: final export" not in whats
    erasure = next(d for d in later if d.what == "provider copies erased by")
    assert erasure.due == calendar.erasure_by and erasure.days_left < 0


def test_exit_calendar_read_back_from_the_flow_record(tmp_path: Path) -> None:
    assert read_exit_dates(tmp_path) is None
    calendar = exit_deadlines(load_playbook(ACME).reversibility.deadlines, date(2026, 3, 1))
    (tmp_path / EXIT_NOTICE_FILE).write_text(
        json.dumps(calendar.model_dump(mode="json")), encoding="utf-8"
    )
    assert read_exit_dates(tmp_path) == calendar
    (tmp_path / EXIT_NOTICE_FILE).write_text("{", encoding="utf-8")
    assert read_exit_dates(tmp_path) is None


def test_contracts_and_playbooks_found(tmp_path: Path) -> None:
    for name in ("acme-2026", "b2", "Not_A_Contract", "x"):
        (tmp_path / "contracts" / name).mkdir(parents=True)
    assert contract_ids(tmp_path / "contracts") == ["acme-2026", "b2"]
    assert contract_ids(tmp_path / "none") == []
    found = find_playbooks(PROJECT_ROOT / "playbooks")
    assert found["acme-2026"] == ACME and "demo-estate" in found


def test_runs_and_overview_rows() -> None:
    runs = [RunLine(name="brave-fox", phase="takeover", state="Failed", start_time=NOW)]
    status = gather_status(
        "c1", {}, playbook=None, exit_dates=None, today=NOW.date(), now=NOW, runs=runs
    )
    assert run_rows(status) == [("brave-fox", "takeover", "Failed", "2026-03-01 12:00", "—")]
    assert overview_row(status) == ("c1", "not started", "0", "0", "—")


# --------------------------------------------------------------------------- command


@pytest.fixture
def home_with_acme(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A HANDOVER_HOME holding acme's takeover, no Prefect server, run from a folder with
    acme's playbook under playbooks/."""
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    store_with_takeover(handover_home() / "contracts")
    (tmp_path / "playbooks").mkdir()
    (tmp_path / "playbooks" / "acme.yaml").write_bytes(ACME.read_bytes())
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_status_of_a_contract_without_a_server(home_with_acme: Path) -> None:
    result = runner.invoke(app, ["status", "acme-2026"])
    assert result.exit_code == 0, result.stdout + result.stderr
    out = result.stdout
    assert "phase: takeover (7 pending, 1 failed)" in out
    assert "inventory" in out and "(failed)" in out  # the table may wrap the cell
    assert "initial term ends" in out and "2029-02-01" in out
    assert "no Prefect server is running (`handover server start`): last runs not shown" in out


def test_status_json_and_overview(home_with_acme: Path) -> None:
    result = runner.invoke(app, ["status", "acme-2026", "--json"])
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["contract"] == "acme-2026" and data["runs"] is None
    assert data["phases"][0]["failed_items"] == ["inventory"]
    assert data["playbook"] == "playbooks/acme.yaml"
    assert "no Prefect server" in data["runs_note"]
    overview = runner.invoke(app, ["status", "--json"])
    assert [s["contract"] for s in json.loads(overview.stdout)] == ["acme-2026"]
    table = runner.invoke(app, ["status"])
    assert table.exit_code == 0 and "1 contract(s)" in table.stdout
    assert "acme-2026" in table.stdout


def test_status_with_an_api_that_does_not_answer(
    home_with_acme: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")
    result = runner.invoke(app, ["status", "acme-2026"])
    assert result.exit_code == 0, result.stderr
    assert "last runs not shown: the Prefect API at http://127.0.0.1:9/api does not answer" in (
        result.stdout.replace("\n", " ")
    )
    assert "phase: takeover" in result.stdout


def test_status_of_an_unknown_contract_is_a_usage_error(home_with_acme: Path) -> None:
    result = runner.invoke(app, ["status", "nope-1"])
    assert result.exit_code == 2
    assert (
        "no contract 'nope-1' under" in result.stderr and "(contracts: acme-2026)" in result.stderr
    )
    result = runner.invoke(app, ["status", "Bad_Id"])
    assert result.exit_code == 2 and "not a contract id" in result.stderr
