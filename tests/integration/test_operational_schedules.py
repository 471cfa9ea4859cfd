"""Each operational task on its own clock, against the shared Prefect server (#13, #14).

`handover schedules deploy --pool` puts one deployment per task into a work
pool (schedules in the contract's zone, tags, the playbook as the only
parameter, the working directory as job variable); a real process worker
of that pool picks up a run; one task flow ticks only its own items of its
period's checklist.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.client.schemas.filters import WorkPoolFilter, WorkPoolFilterName
from prefect.client.schemas.objects import StateType
from prefect.states import Scheduled

from handover.checklist.model import Status
from handover.checklist.store import ChecklistStore
from handover.errors import UsageError
from handover.operations.schedules import load_schedules, period_of, previous_period
from tests.workspace import Workspace, make_workspace

pytestmark = pytest.mark.integration

TASKS = {"health", "backups", "updates", "sla-report", "drill", "technology-watch"}


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefect_server: str) -> Workspace:
    from handover.demo.credentials import prepare_vault
    from handover.demo.incidents import record_demo_incidents

    ws = make_workspace(tmp_path, monkeypatch)
    # Each test its own contract id: the server is shared, deployments are named by contract.
    contract = f"sched-{uuid.uuid4().hex[:8]}"
    ws.playbook.write_text(ws.playbook.read_text().replace("id: demo-estate", f"id: {contract}"))
    ws.contract = contract
    prepare_vault(contract)
    record_demo_incidents(contract)
    return ws


@pytest.fixture
def pool(prefect_server: str) -> str:
    name = f"handover-{uuid.uuid4().hex[:8]}"
    with get_client(sync_client=True) as client:
        client.create_work_pool(WorkPoolCreate(name=name, type="process"))
    return name


def _cli(workspace: Workspace, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "flows.cli", *args],
        cwd=workspace.root,
        env={**os.environ},
        capture_output=True,
        text=True,
        timeout=240,
    )


def test_schedules_deploy_puts_one_deployment_per_task_into_the_work_pool(
    workspace: Workspace, pool: str
) -> None:
    missing = _cli(workspace, "schedules", "deploy", str(workspace.playbook), "--pool", "nopool")
    assert missing.returncode == 2, missing.stderr
    assert "work pool 'nopool' does not exist" in missing.stderr + missing.stdout

    done = _cli(workspace, "schedules", "deploy", str(workspace.playbook), "--pool", pool)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"work pool {pool}" in done.stdout

    with get_client(sync_client=True) as client:
        deployments = client.read_deployments(
            work_pool_filter=WorkPoolFilter(name=WorkPoolFilterName(any_=[pool]))
        )
        ours = {d.name: d for d in deployments}
        flows = {d.name: client.read_flow(d.flow_id).name for d in ours.values()}
    contract = workspace.contract
    assert set(ours) == {f"{contract}-{task}" for task in TASKS}
    playbook = str(workspace.playbook.resolve())
    for name, deployment in ours.items():
        assert deployment.parameters == {"playbook_path": playbook}, name  # a reference only
        assert deployment.job_variables == {"working_dir": str(workspace.root.resolve())}
        assert deployment.entrypoint and deployment.entrypoint.startswith("flows."), name
        assert deployment.path is None and not deployment.pull_steps
        [schedule] = deployment.schedules
        assert schedule.active
        phase = "health" if name.endswith("-health") else "operational"
        assert deployment.tags == [f"contract:{contract}", f"phase:{phase}"], name
    crons = {
        name.removeprefix(f"{contract}-"): d.schedules[0].schedule.model_dump()
        for name, d in ours.items()
    }
    assert crons["sla-report"]["cron"] == "0 6 1 * *"
    assert crons["sla-report"]["timezone"] == "Europe/Paris"
    assert crons["backups"]["cron"] == "0 2 * * *"
    assert crons["drill"]["cron"] == "0 3 15 2,5,8,11 *"
    assert crons["health"]["interval"] == timedelta(minutes=5)
    assert flows[f"{contract}-sla-report"] == "operational-sla-report"
    assert flows[f"{contract}-health"] == "health"
    assert load_schedules()[contract].work_pool == pool

    # Deploying again updates the same deployments (no duplicates), still in the pool.
    again = _cli(workspace, "schedules", "deploy", str(workspace.playbook), "--pool", pool)
    assert again.returncode == 0, again.stderr
    with get_client(sync_client=True) as client:
        for name, deployment in ours.items():
            reread = client.read_deployment(deployment.id)
            assert reread.work_pool_name == pool and len(reread.schedules) == 1, name


def test_a_process_worker_of_the_pool_runs_a_scheduled_task(
    workspace: Workspace, pool: str
) -> None:
    """A scheduled run of the updates task, picked up by `prefect worker start --pool`."""
    from flows.schedules import deploy_schedules

    deployed = {
        d.task: d
        for d in deploy_schedules(
            str(workspace.playbook), pool=pool, workdir=str(workspace.root.resolve())
        )
    }
    with get_client(sync_client=True) as client:
        run = client.create_flow_run_from_deployment(
            uuid.UUID(deployed["updates"].deployment_id),
            state=Scheduled(scheduled_time=datetime.now(UTC) - timedelta(seconds=1)),
        )
    started = time.monotonic()
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "prefect",
            "worker",
            "start",
            "--pool",
            pool,
            "--type",
            "process",
            "--run-once",
        ],
        cwd=workspace.root,
        # The worker's environment reaches its runs: the workspace keeps its playbook at its
        # root, which the runs may read once it is a playbook folder (deployments/README.md).
        env={**os.environ, "HANDOVER_PLAYBOOK_DIRS": str(workspace.root)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        output, _ = worker.communicate(timeout=300)
    finally:
        worker.kill()
    elapsed = time.monotonic() - started
    with get_client(sync_client=True) as client:
        final = client.read_flow_run(run.id)
    assert final.state is not None and final.state.type == StateType.COMPLETED, output[-3000:]
    assert final.work_queue_name == "default"
    month = period_of(datetime.now(UTC), "month", "Europe/Paris")
    checklist = ChecklistStore().load(workspace.contract, f"operational-{month}")
    assert checklist.item("security-updates").status is Status.DONE
    print(f"worker picked up and finished the scheduled run in {elapsed:.1f} s")


def test_one_task_flow_ticks_only_its_own_items_of_its_period(workspace: Workspace) -> None:
    from flows.operational_tasks import operational_sla_report, operational_updates

    outcome = operational_updates(str(workspace.playbook))
    month = period_of(datetime.now(UTC), "month", "Europe/Paris")
    assert outcome.checklist == f"operational-{month}"
    store = ChecklistStore()
    checklist = store.load(workspace.contract, f"operational-{month}")
    states = {item.id: item.status for item in checklist.items}
    assert states.pop("security-updates") is Status.DONE
    assert "reversibility-drill" not in states  # the quarter's checklist holds it
    assert set(states.values()) == {Status.PENDING}, states
    assert store.periods(workspace.contract) == [f"operational-{month}"]

    # The report of the month just ended ticks that month's checklist, its own items only.
    last = previous_period(datetime.now(UTC), "month", "Europe/Paris")
    report = operational_sla_report(str(workspace.playbook))
    assert report.checklist == f"operational-{last}"
    earlier = {i.id: i.status for i in store.load(workspace.contract, f"operational-{last}").items}
    for item in ("health-checks", "incidents", "sla-report"):
        assert earlier.pop(item) is Status.DONE, item
    assert set(earlier.values()) == {Status.PENDING}, earlier
    again = store.load(workspace.contract, f"operational-{month}")
    assert {i.id: i.status for i in again.items} == {i.id: i.status for i in checklist.items}

    # A second run of the same task reopens its own item and ticks it again (a new round).
    operational_updates(str(workspace.playbook))
    entries = store.audit_log(workspace.contract).readable_entries()
    moves = [
        e["event"]
        for e in entries
        if e["data"].get("item") == "security-updates"
        and e["data"].get("phase") == f"operational-{month}"
    ]
    assert moves[-3:] == ["checklist.reopened", "checklist.running", "checklist.done"], moves
    assert store.cross_check(workspace.contract) == []

    # A period the SLA is not reported by, or one not started, is refused before any item.
    with pytest.raises(UsageError, match="reported by month"):
        operational_sla_report(str(workspace.playbook), period="2026-q4")
    with pytest.raises(UsageError, match="has not started"):
        operational_sla_report(str(workspace.playbook), period="2999-01")
