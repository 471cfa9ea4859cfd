"""The exit's one-way doors open only when everything before them holds; its calendar holds.

Real Prefect server, the demo's local hosts, the reversibility flow run in
this process (gates) or as a `handover run` subprocess (calendar waits,
answered and killed from outside as an operator would).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.flow_runs import resume_flow_run

from flows.acceptance import auto_acceptance_input
from flows.lifecycle import pause_key, paused_flow_runs, run_phase
from handover.checklist.model import Status
from handover.checklist.store import ChecklistStore
from tests.workspace import Workspace, make_workspace

pytestmark = pytest.mark.integration

BEFORE_EXIT = ("takeover", "implementation", "operational")
PROVIDER_KEY = "ops@provider-demo"


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefect_server: str) -> Workspace:
    ws = make_workspace(tmp_path, monkeypatch)
    for phase in BEFORE_EXIT:
        assert run_phase(phase, ws.playbook), f"{phase} did not complete"
    return ws


def provider_keys_installed(ws: Workspace) -> list[Path]:
    """The sandbox hosts' authorized_keys files that still hold the provider's key."""
    hosts = ws.home / "demo"
    return [
        path
        for path in hosts.rglob("authorized_keys")
        if PROVIDER_KEY in path.read_text(errors="replace")
    ]


def statuses(ws: Workspace) -> dict[str, Status]:
    checklist = ChecklistStore().load(ws.contract, "reversibility")
    return {item.id: item.status for item in checklist.items}


def test_failed_export_stops_the_exit_before_delivery_and_the_one_way_doors(
    workspace: Workspace,
) -> None:
    ws = workspace
    installed = provider_keys_installed(ws)
    assert installed, "implementation should have installed the provider's key"
    vault = ws.home / "contracts" / ws.contract / "vault.age"
    good = ws.playbook.read_text()
    ws.playbook.write_text(good.replace("paths: [/srv/shares]", "paths: [/srv/missing]"))

    assert not run_phase("reversibility", ws.playbook, auto_accept=True)

    status = statuses(ws)
    assert status["datasets-exported"] is Status.FAILED
    # Nothing after the failure ran: no seal, no delivery, access and copies untouched.
    after = list(status)[list(status).index("datasets-exported") + 1 :]
    assert after and all(status[item] is Status.PENDING for item in after), status
    assert provider_keys_installed(ws) == installed
    assert vault.exists()
    deliveries = ws.home / "demo" / "deliveries"
    assert not deliveries.exists() or not any(deliveries.iterdir())
    phase_dir = ws.home / "contracts" / ws.contract / "reversibility"
    assert not (phase_dir / "erasure-certificate.md").exists()
    state = json.loads((phase_dir / "exit-state.json").read_text())
    assert "delivery" not in state and "erasure" not in state

    # The volumes that were finished are recorded; the rerun adopts them as they are.
    bundle = ws.home / "contracts" / ws.contract / "bundles" / state["bundle_name"]
    volumes = {p.name: p.stat().st_ino for p in (bundle / "volumes").glob("*.tar.age")}
    assert len(volumes) == 3, volumes  # www, etc, db; shares failed
    assert not (bundle / "SHA256SUMS.sig").exists()

    ws.playbook.write_text(good)
    assert run_phase("reversibility", ws.playbook, auto_accept=True)
    status = statuses(ws)
    assert all(s is Status.DONE for s in status.values()), status
    assert not provider_keys_installed(ws)
    assert not vault.exists()
    listing = json.loads((phase_dir / "volumes.json").read_text())
    assert sorted(d for d, v in listing.items() if v["adopted"]) == ["db", "etc", "www"]
    assert not listing["shares"]["adopted"]
    delivered = next(p for p in deliveries.iterdir() if p.is_dir() and p.suffix != ".exit")
    assert delivered.name == state["bundle_name"]
    subprocess.run(["sha256sum", "-c", "--quiet", "SHA256SUMS"], cwd=delivered, check=True)
    # The sealed checklists point into the bundle: every evidence path is an index name.
    assert ChecklistStore().audit_log(ws.contract).verify() == []


def _wait_for_pause(contract: str, key: str, timeout_s: float = 120) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for run in paused_flow_runs(contract):
            if pause_key(run) == key:
                return str(run.id)
        time.sleep(0.5)
    raise AssertionError(f"the exit never paused at {key}")


def _state_name(run_id: str) -> str:
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(run_id)  # type: ignore[arg-type]
    return run.state.name if run.state else ""


def test_exit_waits_for_switch_over_and_retrieval_period(workspace: Workspace) -> None:
    """Notice today: the export waits for the switch-over; erasure waits for the end of the
    retrieval period, whoever resumes early; a kill while waiting loses nothing."""
    ws = workspace
    command = [
        sys.executable,
        "-m",
        "flows.cli",
        "run",
        "reversibility",
        str(ws.playbook),
        "--notice-date",
        date.today().isoformat(),
    ]
    proc = subprocess.Popen(command, cwd=ws.root, env={**os.environ}, start_new_session=True)
    try:
        run_id = _wait_for_pause(ws.contract, "switch-over-1")
        status = statuses(ws)
        assert status["exit-notice"] is Status.DONE
        assert status["final-inventory"] is Status.PENDING  # nothing exported on notice day
        resume_flow_run(run_id, run_input={"reason": "client asked to switch over early"})

        run_id = _wait_for_pause(ws.contract, "client-acceptance")
        resume_flow_run(
            run_id, run_input=auto_acceptance_input(ws.playbook, run_id, early_erasure=False)
        )
        run_id = _wait_for_pause(ws.contract, "knowledge-transfer")
        resume_flow_run(
            run_id, run_input={"confirmed_by": "Incoming team", "sessions": "2 sessions"}
        )
        run_id = _wait_for_pause(ws.contract, "erasure-1")
        assert statuses(ws)["access-revoked"] is Status.DONE
        vault = ws.home / "contracts" / ws.contract / "vault.age"
        assert vault.exists()
        # Resuming the erasure wait before its date changes nothing: it pauses again.
        resume_flow_run(run_id)
        _wait_for_pause(ws.contract, "erasure-2")
        assert vault.exists() and statuses(ws)["copies-erased"] is Status.PENDING
        assert not (
            ws.home / "contracts" / ws.contract / "reversibility" / "erasure-certificate.md"
        ).exists()
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    state_file = ws.home / "contracts" / ws.contract / "reversibility" / "exit-state.json"
    state = json.loads(state_file.read_text())
    assert state["waits"]["switch-over"].endswith("client asked to switch over early")
    assert "erasure" not in state["waits"]
    assert state["acceptance"]["early_erasure"] is False

    # A rerun after the kill goes back to waiting for the same date, redoing nothing.
    proc = subprocess.Popen(command, cwd=ws.root, env={**os.environ}, start_new_session=True)
    try:
        _wait_for_pause(ws.contract, "erasure-1")
        status = statuses(ws)
        assert status["access-revoked"] is Status.DONE
        assert status["copies-erased"] is Status.PENDING
        assert json.loads(state_file.read_text())["bundle_name"] == state["bundle_name"]
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
