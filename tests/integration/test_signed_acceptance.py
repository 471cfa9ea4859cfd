"""The exit's acceptance takes only a signed statement; reservations bring a re-delivery.

Real Prefect server, the demo's local hosts, the reversibility flow run in
this process. A thread stands in for people: it first answers the pause
form with a statement signed by a key the playbook does not name (rejected,
nothing changes); then the client signs "accepted with reservations" (the
doors stay closed); the provider declares its correction in the next pause
form, and the exit exports, seals and delivers a second bundle; the client
drops its validly signed acceptance of that one beside the delivery (no
form answer at all), and the incoming team confirms the knowledge transfer.
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


RESERVATIONS = "The mail archive of 2019 is missing from the bundle."
CORRECTION = "Re-exported after adding the 2019 archive to the dataset's paths."
PROVIDER_KEY = "ops@provider-demo"


def provider_keys_installed(ws: Workspace) -> int:
    """How many of the sandbox hosts' authorized_keys still hold the provider's key."""
    return sum(
        PROVIDER_KEY in path.read_text(errors="replace")
        for path in (ws.home / "demo").rglob("authorized_keys")
    )


class People(threading.Thread):
    """Answers the exit's pauses: a forged acceptance, then a dropped signed pair."""

    def __init__(self, ws: Workspace) -> None:
        super().__init__(daemon=True)
        self.ws = ws
        self.keys_seen: list[str] = []
        self.provider_keys_while_correcting = -1
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
        run_id = self._wait("client-acceptance-2")
        reserved = auto_acceptance_input(
            self.ws.playbook, run_id, decision="accepted-with-reservations",
            reservations=RESERVATIONS, early_erasure=False,
        )  # fmt: skip
        resume_flow_run(run_id, run_input=reserved)
        run_id = self._wait("correction-r2")
        self.provider_keys_while_correcting = provider_keys_installed(self.ws)
        resume_flow_run(run_id, run_input={"corrected_by": "Ops lead", "corrections": CORRECTION})
        self._wait("client-acceptance-r2")
        genuine = auto_acceptance_input(self.ws.playbook, run_id)  # the corrected bundle
        state = json.loads(self.exit_state().read_text())
        drop = Path(state["delivery"]["location"]).parent / f"{state['bundle_name']}.exit"
        drop.mkdir(parents=True, exist_ok=True)
        (drop / "acceptance.txt.sig").write_text(genuine["signature"])
        (drop / "acceptance.txt").write_text(genuine["statement"])
        run_id = self._wait("knowledge-transfer")
        resume_flow_run(run_id, run_input={"confirmed_by": "Incoming team", "sessions": "two"})

    def exit_state(self) -> Path:
        return self.ws.home / "contracts" / self.ws.contract / "reversibility" / "exit-state.json"


def test_forged_acceptance_rejected_reservations_redelivered_signed_pair_opens_the_exit(
    workspace: Workspace,
) -> None:
    ws = workspace
    keys_before = provider_keys_installed(ws)
    people = People(ws)
    people.start()
    completed = run_phase(
        "reversibility", ws.playbook, auto_accept=False, notice_date=drill_notice_date(ws.playbook)
    )
    people.join(timeout=10)
    assert people.error is None, people.error
    assert completed
    assert people.keys_seen == [
        "client-acceptance",
        "client-acceptance-2",
        "correction-r2",
        "client-acceptance-r2",
        "knowledge-transfer",
    ]
    # Reservations open no door: the provider's access was still there while correcting.
    assert keys_before > 0 and people.provider_keys_while_correcting == keys_before
    assert provider_keys_installed(ws) == 0

    entries = [json.loads(line) for line in (ws.home / "contracts" / ws.contract / "audit.log")
               .read_text().splitlines()]  # fmt: skip
    rejected = [e for e in entries if e["event"] == "acceptance.rejected"]
    signed = [e for e in entries if e["event"] == "acceptance.signed"]
    assert len(rejected) == 1 and "not in reversibility.client_signers" in json.dumps(rejected[0])
    assert [e["data"]["decision"] for e in signed] == ["accepted-with-reservations", "accepted"]
    signer = SigningKey.load(ws.home / "demo" / "keys" / "client-signing").fingerprint()
    assert all(signer in json.dumps(e) for e in signed)
    assert "acceptance.txt" in json.dumps(signed[1])  # the dropped pair

    exit_state = json.loads(people.exit_state().read_text())
    state = exit_state["acceptance"]
    assert state["decision"] == "accepted" and state["accepted"] is True
    assert state["signer_fingerprint"] == signer
    folder = ws.home / "contracts" / ws.contract / "reversibility"
    assert (folder / "client-acceptance-r2.txt").read_text() == state["statement"]
    assert (folder / "client-acceptance-r2.txt.sig").read_text() == state["signature"]

    # The first delivery, its signed reservations and the correction are kept whole.
    [replaced] = exit_state["redeliveries"]
    first = replaced["bundle_name"]
    assert exit_state["bundle_name"] == f"{first}-r2"
    assert replaced["acceptance"]["decision"] == "accepted-with-reservations"
    assert replaced["acceptance"]["reservations"] == RESERVATIONS
    assert replaced["acceptance"]["signer_fingerprint"] == signer
    assert replaced["correction"]["corrections"] == CORRECTION
    assert "accepted-with-reservations" in (folder / "client-acceptance.txt").read_text()
    delivered = [Path(replaced["delivery"]["location"]), Path(exit_state["delivery"]["location"])]
    assert [p.name for p in delivered] == [first, f"{first}-r2"]
    assert all((p / "SHA256SUMS").is_file() for p in delivered)  # the client has both
    reopened = [e for e in entries if e["event"] == "checklist.reopened"]
    assert {e["data"]["item"] for e in reopened if "corrected re-delivery 2" in json.dumps(e)} == {
        "datasets-exported", "credentials-exported", "documentation-exported",
        "bundle-sealed", "bundle-delivered", "client-acceptance",
    }  # fmt: skip
    report = (folder / "documents" / "exit-report.md").read_text()
    # the demo contract is French: so is its exit report (#15)
    assert "Livraisons remplacées après réserves" in report and CORRECTION in report
    checklist = ChecklistStore().load(ws.contract, "reversibility")
    assert all(item.status is Status.DONE for item in checklist.items)
