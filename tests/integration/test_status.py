"""`handover status` lists a contract's last runs from a real Prefect server, by tag.

One tagged run of a probe flow is enough: the checklists and dates are the
unit tests' (tests/unit/test_status.py); here the status must find the run
by `contract:<id>` (not another contract's, whose id extends this one) and
show it, on the screen and in --json.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from prefect import flow
from typer.testing import CliRunner

import flows.commands  # noqa: F401  (registers status)
from handover.checklist.store import ChecklistStore
from handover.cli import app
from handover.contract.checklists import load_phase_template
from handover.phases import Phase
from handover.state.home import handover_home
from tasks.tags import phase_tags

pytestmark = pytest.mark.integration
runner = CliRunner()


@flow(name="status-probe")
def probe() -> int:
    return 1


def test_status_shows_the_contracts_last_runs(
    prefect_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no playbooks/ here: dates are not shown, and it says why
    contract = f"st-{uuid.uuid4().hex[:8]}"
    ChecklistStore(handover_home() / "contracts").open(
        contract, Phase.TAKEOVER, load_phase_template("takeover")
    )
    with phase_tags(contract, "takeover"):
        mine = probe(return_state=True)
    with phase_tags(f"{contract}-2", "takeover"):
        probe(return_state=True)  # another contract, whose id starts with this one
    assert mine.is_completed()

    result = runner.invoke(app, ["status", contract, "--json"])
    assert result.exit_code == 0, result.stdout + result.stderr
    data = json.loads(result.stdout)
    assert data["runs_note"] is None
    assert [(r["phase"], r["state"]) for r in data["runs"]] == [("takeover", "Completed")]
    assert data["phase"] == "takeover (8 pending)"
    assert data["playbook_note"].startswith(f"no playbook of {contract} under playbooks/")

    screen = runner.invoke(app, ["status", contract])
    assert screen.exit_code == 0, screen.stderr
    assert "last runs" in screen.stdout and "Completed" in screen.stdout
    assert "not shown" not in screen.stdout
