"""One writer per contract and phase, through Prefect concurrency leases on a real server.

A second run of a phase someone holds fails before touching anything, and
names the holder; a lease left by a process killed with -9 on this machine
is released by the next run at once; the limit is created race-safely and
an operator's change to it is kept.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from uuid import UUID

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitUpdate
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags
from prefect.client.schemas.sorting import FlowRunSort

from flows.lifecycle import run_phase
from flows.writer_lease import LEASE_FILE, LEASE_S, limit_name, process_start, writer_lease
from handover.checklist.store import ChecklistStore
from handover.state.layout import ContractPaths
from tasks.runtime import ensure_concurrency_limit
from tests.workspace import Workspace, make_workspace

pytestmark = pytest.mark.integration


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefect_server: str) -> Workspace:
    monkeypatch.setenv("HANDOVER_WRITER_WAIT_SECONDS", "2")
    return make_workspace(tmp_path, monkeypatch)


def active_slots(name: str) -> int:
    with get_client(sync_client=True) as client:
        return client.read_global_concurrency_limit_by_name(name).active_slots


def test_a_second_run_of_a_held_phase_fails_naming_why_and_changes_nothing(
    workspace: Workspace,
) -> None:
    name = limit_name(workspace.contract, "takeover")
    with writer_lease(workspace.contract, "takeover"):
        assert active_slots(name) == 1
        assert not run_phase("takeover", workspace.playbook)
        assert not ChecklistStore().exists(workspace.contract, "takeover")
    assert active_slots(name) == 0
    with get_client(sync_client=True) as client:
        [run] = client.read_flow_runs(  # this test's run: the contract's newest takeover
            flow_run_filter=FlowRunFilter(
                tags=FlowRunFilterTags(all_=[f"contract:{workspace.contract}", "phase:takeover"])
            ),
            sort=FlowRunSort.EXPECTED_START_TIME_DESC,
            limit=1,
        )
        assert run.state is not None and run.state.is_failed(), run.state
        assert "another run holds this phase" in (run.state.message or "")


def test_a_lease_left_by_a_killed_process_is_released_at_once(workspace: Workspace) -> None:
    contract, phase = workspace.contract, "operational"
    name = limit_name(contract, phase)
    ensure_concurrency_limit(name, 1)
    with get_client(sync_client=True) as client:
        response = client.increment_concurrency_slots_with_lease(
            names=[name], slots=1, mode="concurrency", lease_duration=LEASE_S
        )
    orphan = UUID(response.json()["lease_id"])
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    record = ContractPaths(contract).phase_dir(phase) / LEASE_FILE
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps({
        "lease_id": str(orphan), "host": os.uname().nodename, "pid": dead.pid,
        "started": "1", "flow_run_id": None,
    }))  # fmt: skip
    assert active_slots(name) == 1
    with writer_lease(contract, phase):  # would wait 2 s and fail if the orphan were kept
        assert active_slots(name) == 1
        assert json.loads(record.read_text())["pid"] == os.getpid()
        assert json.loads(record.read_text())["started"] == process_start(os.getpid())
    assert active_slots(name) == 0 and not record.exists()


def test_limits_are_created_race_safely_and_never_reset(prefect_server: str) -> None:
    name = "contract-race-test-ssh"
    errors: list[BaseException] = []

    def create() -> None:
        try:
            ensure_concurrency_limit(name, 4)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=create) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with get_client(sync_client=True) as client:
        client.update_global_concurrency_limit(name, GlobalConcurrencyLimitUpdate(limit=2))
    ensure_concurrency_limit(name, 4)  # the next run: the operator's 2 stays
    with get_client(sync_client=True) as client:
        assert client.read_global_concurrency_limit_by_name(name).limit == 2
