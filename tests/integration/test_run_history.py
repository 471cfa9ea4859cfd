"""A contract's run history, selected by tag, against a real Prefect server.

Two contracts share the server, one id a prefix of the other
(`demo-estate`, `demo-estate-2`): a selection by name takes both, the
selection by tag `contract:<id>` only its own. Each run comes with its task
runs, its logs (capped, and saying so), and the contract's checklist
artifact versions; `handover history` prints them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from prefect import flow, get_run_logger
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName
from prefect.states import Scheduled

from flows.lifecycle import run_phase_flow
from flows.schedules import task_deployment
from handover.demo.credentials import prepare_vault
from handover.operations.run_history import (
    IN_PROGRESS_PARENT,
    IN_PROGRESS_THIS_EXIT,
    RunHistory,
)
from handover.operations.schedules import TaskSchedule
from handover.phases import Phase
from tasks.documents import run_history
from tasks.run_history import read_run_history
from tasks.tags import phase_tags, tag_flow_run
from tests.workspace import make_workspace

pytestmark = pytest.mark.integration

FAKE_AGE_KEY = "AGE-SECRET-KEY-1" + "QYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQS"


def run_id(state: Any) -> str:
    return str(state.state_details.flow_run_id)


def until(read: Callable[[], RunHistory], ready: Callable[[RunHistory], bool]) -> RunHistory:
    """Read the history until `ready` (logs reach the server in batches), at most 60 s."""
    deadline = time.monotonic() + 60
    history = read()
    while not ready(history) and time.monotonic() < deadline:
        time.sleep(1)
        history = read()
    return history


def test_history_of_one_contract_by_tag_with_tasks_logs_and_checklists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefect_server: str
) -> None:
    ws = make_workspace(tmp_path, monkeypatch)
    other = ws.root / "other.yaml"
    text = ws.playbook.read_text()
    assert "  id: demo-estate\n" in text
    other.write_text(text.replace("  id: demo-estate\n", "  id: demo-estate-2\n", 1))
    prepare_vault("demo-estate-2")

    mine = run_phase_flow(Phase.TAKEOVER, str(ws.playbook), pin_host_keys=False, fresh=True)
    assert mine.is_completed(), mine
    theirs = run_phase_flow(Phase.TAKEOVER, str(other), pin_host_keys=False, fresh=True)
    mine_id, theirs_id = run_id(mine), run_id(theirs)

    # A selection by name would take the other contract's run too.
    with get_client(sync_client=True) as client:
        by_name = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(name=FlowRunFilterName(like_="demo-estate"))
        )
    assert theirs_id in {str(r.id) for r in by_name}

    history = until(
        lambda: read_run_history("demo-estate"),
        lambda h: any(r.id == mine_id and r.logs for r in h.runs),
    )
    ids = {r.id for r in history.runs}
    assert mine_id in ids and theirs_id not in ids
    assert history.selected_by == "contract:demo-estate"
    assert all("contract:demo-estate" in r.tags for r in history.runs)
    assert not any("contract:demo-estate-2" in r.tags for r in history.runs)

    run = next(r for r in history.runs if r.id == mine_id)
    assert run.flow_name == "takeover" and run.phase == "takeover"
    assert {"contract:demo-estate", "phase:takeover", "trigger:direct"} <= set(run.tags)
    assert run.state_type == "COMPLETED" and run.start_time and run.end_time
    assert run.parameters["playbook_path"] == str(ws.playbook)
    assert run.parameters["fresh"] is True
    names = [t.name for t in run.task_runs]
    assert any(name.startswith("inventory") for name in names), names
    assert all(t.state_type == "COMPLETED" for t in run.task_runs)
    assert run.logs and not run.logs_truncated
    assert all(log.level in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"} for log in run.logs)

    # Checklist versions of the contract, this run's among them; none of the other's.
    keys = {a.key for a in history.artifacts}
    assert "demo-estate-takeover-checklist" in keys
    assert not any(key.startswith("demo-estate-2-") for key in keys)
    ours = [a for a in history.artifacts if a.flow_run_id == mine_id]
    assert len(ours) >= 3 and all(a.created and a.description for a in ours)
    assert all(a.phase == "takeover" for a in ours)

    # The other contract's history holds its run, and not ours.
    other_history = read_run_history("demo-estate-2")
    assert theirs_id in {r.id for r in other_history.runs}
    assert mine_id not in {r.id for r in other_history.runs}

    # Logs are capped per run, and the history says so.
    capped = read_run_history("demo-estate", log_cap=3)
    capped_run = next(r for r in capped.runs if r.id == mine_id)
    assert len(capped_run.logs) == 3 and capped_run.logs_truncated and capped.logs_truncated

    # The table needs no log: read without them, the same runs, and it says so.
    quick = read_run_history("demo-estate", include_logs=False)
    assert {r.id for r in quick.runs} == ids
    assert not quick.logs_included and not any(r.logs for r in quick.runs)
    assert next(r for r in quick.runs if r.id == mine_id).task_runs == run.task_runs

    # `handover history` prints the runs; --json writes the whole model.
    env = {**os.environ, "COLUMNS": "300"}
    cli = [sys.executable, "-m", "flows.cli", "history", "demo-estate"]
    shown = subprocess.run(cli, capture_output=True, text=True, env=env, cwd=ws.root, timeout=120)
    assert shown.returncode == 0, shown.stderr
    assert run.name in shown.stdout
    assert next(r for r in by_name if str(r.id) == theirs_id).name not in shown.stdout
    assert "checklist artifact version(s)" in shown.stdout
    dumped = subprocess.run(
        [*cli, "--json"], capture_output=True, text=True, env=env, cwd=ws.root, timeout=120
    )
    assert dumped.returncode == 0, dumped.stderr
    as_json = RunHistory.model_validate_json(dumped.stdout)
    assert mine_id in {r.id for r in as_json.runs}
    assert json.loads(dumped.stdout)["contract"] == "demo-estate"

    bad = subprocess.run(
        [*cli[:-1], "Not_A_Contract"], capture_output=True, text=True, env=env, timeout=120
    )
    assert bad.returncode == 2


@flow(name="history-probe-exit")
def probe_exit(contract: str, note: str) -> RunHistory:
    """Stands in for the exit: tags itself, logs a secret by mistake, takes the history."""
    tag_flow_run(contract, "reversibility")
    logger = get_run_logger()
    logger.info("probe starts")
    logger.warning("leaked %s", FAKE_AGE_KEY)
    return run_history(contract)


@flow(name="history-probe-lifecycle")
def probe_lifecycle(contract: str) -> RunHistory:
    """Stands in for the lifecycle: tagged `phase:lifecycle`, runs the exit as a subflow."""
    tag_flow_run(contract, "lifecycle")
    with phase_tags(contract, "reversibility"):
        return probe_exit(contract, "x" * 1000)


def test_the_running_exit_and_its_parent_show_in_progress_and_secrets_stay_out(
    prefect_server: str,
) -> None:
    contract = f"hist-{uuid.uuid4().hex[:8]}"
    with phase_tags(contract, "lifecycle"):
        state = probe_lifecycle(contract, return_state=True)
    assert state.is_completed(), state
    taken = state.result()
    parent_id = run_id(state)

    by_id = {r.id: r for r in taken.runs}
    assert len(taken.runs) == 2 and parent_id in by_id
    child = next(r for r in taken.runs if r.id != parent_id)
    parent = by_id[parent_id]
    # Taken while both ran: labelled, not a bare RUNNING.
    assert child.state_type == "RUNNING" and child.state_name == IN_PROGRESS_THIS_EXIT
    assert parent.state_type == "RUNNING" and parent.state_name == IN_PROGRESS_PARENT
    assert child.parent_flow_run_id == parent_id
    # The subflow's phase replaces the lifecycle's; each says how it started.
    assert {"phase:reversibility", "trigger:subflow", f"contract:{contract}"} <= set(child.tags)
    assert "phase:lifecycle" not in child.tags
    assert {"phase:lifecycle", "trigger:direct", f"contract:{contract}"} <= set(parent.tags)
    # A long parameter is not copied; its name says it was dropped.
    assert child.parameters == {"contract": contract}
    assert child.parameters_dropped == ["note"]

    # Read again once finished: final states, and the secret logged by mistake withheld.
    later = until(
        lambda: read_run_history(contract),
        lambda h: any("withheld" in log.message for r in h.runs for log in r.logs),
    )
    assert {r.state_type for r in later.runs} == {"COMPLETED"}
    assert {r.state_name for r in later.runs} == {"Completed"}
    text = later.model_dump_json()
    assert "withheld by handover" in text
    assert "SECRET-KEY" not in text and FAKE_AGE_KEY[20:40] not in text


def test_scheduled_runs_of_a_contract_are_in_its_history(prefect_server: str) -> None:
    contract = f"hist-{uuid.uuid4().hex[:8]}"
    schedule = TaskSchedule(task="backups", cron="0 3 1 1 *", timezone="UTC", items=())
    deployment_id = UUID(str(task_deployment(contract, "/nowhere/playbook.yaml", schedule).apply()))
    try:
        with get_client(sync_client=True) as client:
            planned = client.create_flow_run_from_deployment(
                deployment_id, state=Scheduled(scheduled_time=datetime.now(UTC) + timedelta(days=1))
            )
        history = read_run_history(contract)
        entry = next(r for r in history.runs if r.id == str(planned.id))
        assert entry.state_type == "SCHEDULED" and entry.start_time is None
        assert entry.phase == "operational" and entry.flow_name == "operational-backups"
        assert entry.expected_start_time is not None
    finally:
        with get_client(sync_client=True) as client:
            client.delete_deployment(deployment_id)
