"""The exit's acceptance takes only a signed statement; a forged answer changes nothing.

Real Prefect server, the demo's local hosts, the reversibility flow run in
this process. A thread stands in for people: it first answers the pause
form with a statement signed by a key the playbook does not name, then,
when the flow pauses again, drops the client's validly signed pair beside
the delivery (no form answer at all) and confirms the knowledge transfer.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from prefect.flow_runs import resume_flow_run

from flows.acceptance import auto_acceptance_input
from flows.lifecycle import drill_notice_date, pause_key, paused_flow_runs, run_phase
from handover.bundle.sshsig import SigningKey, sign
from handover.checklist.model import Status
from handover.checklist.store import ChecklistStore
from handover.exit.acceptance import NAMESPACE
from tests.workspace import Workspace, make_workspace

pytestmark = pytest.mark.integration


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefect_server: str) -> Workspace:
    ws = make_workspace(tmp_path, monkeypatch)
    for phase in ("takeover", "implementation", "operational"):
        assert run_phase(phase, ws.playbook), f"{phase} did not complete"
    return ws


class People(threading.Thread):
    """Answers the exit's pauses: a forged acceptance, then a dropped signed pair."""

    def __init__(self, ws: Workspace) -> None:
        super().__init__(daemon=True)
        self.ws = ws
        self.keys_seen: list[str] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._answer()
        except BaseException as exc:  # reported by the test
            self.error = exc

    def _wait(self, key: str, timeout_s: float = 300) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for run in paused_flow_runs(self.ws.contract):
                if pause_key(run) == key:
                    self.keys_seen.append(key)
                    return str(run.id)
            time.sleep(0.5)
        raise AssertionError(f"the exit never paused at {key}")

    def _answer(self) -> None:
        run_id = self._wait("client-acceptance")
        genuine = auto_acceptance_input(self.ws.playbook, run_id)
        intruder = SigningKey.generate()
        forged = sign(genuine["statement"].encode(), intruder, NAMESPACE)
        resume_flow_run(run_id, run_input={"statement": genuine["statement"], "signature": forged})
        self._wait("client-acceptance-2")
        state = json.loads(self.exit_state().read_text())
        drop = Path(state["delivery"]["location"]).parent / f"{state['bundle_name']}.exit"
        drop.mkdir(parents=True, exist_ok=True)
        (drop / "acceptance.txt.sig").write_text(genuine["signature"])
        (drop / "acceptance.txt").write_text(genuine["statement"])
        run_id = self._wait("knowledge-transfer")
        resume_flow_run(run_id, run_input={"confirmed_by": "Incoming team", "sessions": "two"})

    def exit_state(self) -> Path:
        return self.ws.home / "contracts" / self.ws.contract / "reversibility" / "exit-state.json"


def test_forged_acceptance_is_rejected_and_a_dropped_signed_pair_opens_the_exit(
    workspace: Workspace,
) -> None:
    ws = workspace
    people = People(ws)
    people.start()
    completed = run_phase(
        "reversibility", ws.playbook, auto_accept=False, notice_date=drill_notice_date(ws.playbook)
    )
    people.join(timeout=10)
    assert people.error is None, people.error
    assert completed
    assert people.keys_seen == ["client-acceptance", "client-acceptance-2", "knowledge-transfer"]

    entries = [json.loads(line) for line in (ws.home / "contracts" / ws.contract / "audit.log")
               .read_text().splitlines()]  # fmt: skip
    rejected = [e for e in entries if e["event"] == "acceptance.rejected"]
    signed = [e for e in entries if e["event"] == "acceptance.signed"]
    assert len(rejected) == 1 and "not in reversibility.client_signers" in json.dumps(rejected[0])
    assert len(signed) == 1
    signer = SigningKey.load(ws.home / "demo" / "keys" / "client-signing").fingerprint()
    assert signer in json.dumps(signed[0]) and "acceptance.txt" in json.dumps(signed[0])

    state = json.loads(people.exit_state().read_text())["acceptance"]
    assert state["decision"] == "accepted" and state["accepted"] is True
    assert state["signer_fingerprint"] == signer
    folder = ws.home / "contracts" / ws.contract / "reversibility"
    assert (folder / "client-acceptance.txt").read_text() == state["statement"]
    assert (folder / "client-acceptance.txt.sig").read_text() == state["signature"]
    checklist = ChecklistStore().load(ws.contract, "reversibility")
    assert all(item.status is Status.DONE for item in checklist.items)
