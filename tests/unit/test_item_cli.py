"""`handover item`: people record the items they did, with evidence kept in the contract."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from handover.checklist.model import Status
from handover.checklist.store import ChecklistStore
from handover.cli import _register, app

_register()
runner = CliRunner()

ITEMS = [
    {"id": "knowledge-transfer-sessions", "title": "Sessions held", "owner": "client"},
    {"id": "meeting", "title": "Steering committee", "owner": "provider"},
]


def invoke(*args: str | Path) -> tuple[int, str]:
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, result.output


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ChecklistStore:
    monkeypatch.setenv("HANDOVER_HOME", str(tmp_path / "home"))
    checklist_store = ChecklistStore()
    checklist_store.open("acme", "reversibility", ITEMS)
    return checklist_store


def test_done_with_evidence_copied_into_the_contract_and_the_name_recorded(
    store: ChecklistStore, tmp_path: Path
) -> None:
    minutes = tmp_path / "minutes.pdf"
    minutes.write_bytes(b"%PDF sessions 1 and 2")
    code, out = invoke(
        "item", "done", "acme", "reversibility", "knowledge-transfer-sessions",
        "--evidence", minutes, "--as", "Claire Martin (incoming team)",
    )  # fmt: skip
    assert code == 0, out
    item = store.load("acme", "reversibility").item("knowledge-transfer-sessions")
    assert item.status is Status.DONE
    assert item.actor == "Claire Martin (incoming team)"
    [evidence] = item.evidence
    kept = Path(evidence.path or "")
    assert kept.read_bytes() == minutes.read_bytes()
    assert kept.is_relative_to(tmp_path / "home" / "contracts" / "acme" / "reversibility")
    minutes.unlink()  # the person's copy may go: the contract keeps its own
    assert kept.exists()
    events = [e["event"] for e in store.audit_log("acme").entries()]
    assert events[-2:] == ["checklist.running", "checklist.done"]
    assert store.audit_log("acme").entries()[-1]["actor"] == "Claire Martin (incoming team)"


def test_done_needs_evidence_and_an_existing_item(store: ChecklistStore, tmp_path: Path) -> None:
    code, out = invoke("item", "done", "acme", "reversibility", "meeting")
    assert code == 2
    proof = tmp_path / "p.txt"
    proof.write_text("x")
    code, out = invoke("item", "done", "acme", "reversibility", "nope", "--evidence", proof)
    assert code != 0 and "nope" in out
    code, out = invoke(
        "item", "done", "acme", "reversibility", "meeting", "--evidence", tmp_path / "missing"
    )
    assert code == 2 and "missing" in out
    assert store.load("acme", "reversibility").item("meeting").status is Status.PENDING


def test_waive_and_fail_need_a_reason(store: ChecklistStore) -> None:
    code, _ = invoke("item", "waive", "acme", "reversibility", "meeting", "--reason", " ")
    assert code != 0
    code, out = invoke(
        "item", "waive", "acme", "reversibility", "meeting", "--reason", "no committee in contract"
    )
    assert code == 0, out
    assert store.load("acme", "reversibility").item("meeting").status is Status.WAIVED
    code, out = invoke(
        "item", "fail", "acme", "reversibility", "knowledge-transfer-sessions",
        "--reason", "incoming team absent",
    )  # fmt: skip
    assert code == 0, out
    item = store.load("acme", "reversibility").item("knowledge-transfer-sessions")
    assert item.status is Status.FAILED and item.reason == "incoming team absent"
