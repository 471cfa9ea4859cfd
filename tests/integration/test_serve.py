"""`handover serve`: the phase flows become deployments that the Prefect UI (or API) starts.

Runs started that way may only use playbooks inside the playbook folders
(here the default, `playbooks/` under the serving process's working
directory): one pointed elsewhere fails at once, saying so, and runs nothing.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.deployments import run_deployment

from handover.checklist.store import ChecklistStore
from tests.workspace import Workspace, make_workspace

pytestmark = pytest.mark.integration


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefect_server: str) -> Workspace:
    return make_workspace(tmp_path, monkeypatch)


def test_served_flows_start_from_a_deployment_with_a_playbook_form(workspace: Workspace) -> None:
    log = open(workspace.root / "serve.log", "wb")  # noqa: SIM115
    serve = subprocess.Popen(
        [sys.executable, "-m", "flows.cli", "serve"],
        cwd=workspace.root,
        env={**os.environ},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 180
        names: set[str] = set()
        while time.monotonic() < deadline and not {"takeover", "reversibility"} <= names:
            assert serve.poll() is None, (workspace.root / "serve.log").read_text()[-2000:]
            with get_client(sync_client=True) as client:
                names = {d.name for d in client.read_deployments()}
            time.sleep(1)
        assert {"takeover", "implementation", "operational", "reversibility"} <= names
        with get_client(sync_client=True) as client:
            deployment = client.read_deployment_by_name("takeover/takeover")
        # The UI's run form is built from this schema: references only, no secret field.
        properties = deployment.parameter_openapi_schema["properties"]
        assert "playbook_path" in properties
        assert not any("secret" in name or "password" in name for name in properties)

        # A playbook outside the folders (the workspace root): refused before it is read.
        refused = run_deployment(
            "takeover/takeover", parameters={"playbook_path": str(workspace.playbook)}, timeout=300
        )
        assert refused.state is not None and refused.state.is_failed(), refused.state
        message = refused.state.message or ""
        assert "outside the playbook folders" in message, message
        assert str((workspace.root / "playbooks").resolve()) in message, message
        with get_client(sync_client=True) as client:
            task_runs = client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[refused.id]))
            )
            refused_run = client.read_flow_run(refused.id)
        assert task_runs == [], [t.name for t in task_runs]
        assert not any(tag.startswith("contract:") for tag in refused_run.tags), refused_run.tags
        assert not ChecklistStore().exists(workspace.contract, "takeover")

        # The same playbook inside playbooks/: the run completes.
        inside = workspace.root / "playbooks" / "demo.yaml"
        inside.parent.mkdir()
        inside.write_bytes(workspace.playbook.read_bytes())
        flow_run = run_deployment(
            "takeover/takeover", parameters={"playbook_path": "playbooks/demo.yaml"}, timeout=600
        )
        assert flow_run.state is not None and flow_run.state.is_completed(), flow_run.state
    finally:
        os.killpg(serve.pid, signal.SIGINT)
        try:
            serve.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(serve.pid, signal.SIGKILL)
        log.close()
