"""deployments/README.md, followed as written: a team's setup, then one contract through it.

Each step runs the command the README gives, as a separate process with only
the environment the README says it needs:

1. `prefect server start --host 127.0.0.1 --port P --no-background` on
   PostgreSQL (`PREFECT_API_DATABASE_CONNECTION_URL`), analytics off, its auth
   string read from a 0600 environment file;
2. `prefect work-pool create handover --type process`;
3. operators and the worker take the auth string from a file of their own;
4. `prefect --no-prompt deploy --prefect-file deployments/prefect.yaml --all`
   from the repository root;
5. `prefect worker start --pool handover --limit 2`;
6. `HANDOVER_STATE_URL=postgresql://...`: the checklists and the audit chain
   are rows of one database.

Then a run of each phase deployment (takeover, implementation, operational,
reversibility) on the demo estate, started with `prefect deployment run`
like an operator would from the UI, must complete on the worker; the exit's
human steps are answered through the API by a separate process (what the
client and the incoming team do in the UI). The bundle delivered verifies
with `sha256sum -c`, and `handover audit --verify` finds one intact chain.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from handover.state.postgres import close_engine
from tests.conftest import PROJECT_ROOT
from tests.fixtures.postgres import PostgresServer
from tests.prefect_team import (
    BIN,
    Team,
    base_env,
    deploy_all,
    run,
    start_acceptance_answers,
    start_run,
    start_server,
    start_worker,
    stop,
    team_playbook,
    wait_final,
)
from tests.workspace import make_workspace

pytestmark = pytest.mark.integration

PHASES = ("takeover", "implementation", "operational", "reversibility")


@pytest.fixture
def team(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, postgres_server: PostgresServer
) -> Iterator[Team]:
    prefect_db = postgres_server.create_database()
    state_db = postgres_server.create_database()
    processes: list[subprocess.Popen[bytes]] = []
    try:
        # 1. The server, on PostgreSQL, loopback only, its auth string in a 0600 file.
        auth = f"handover:{secrets.token_urlsafe(33)}"
        pg = postgres_server
        server, api_url = start_server(
            tmp_path,
            f"postgresql+asyncpg://{pg.role}:{pg.password}@{pg.host}:{pg.port}/{prefect_db}",
            auth,
        )
        processes.append(server)

        # 3. Operators and workers: the string from a file of their own, never from Prefect.
        client_env = {
            **base_env(tmp_path, "operator"),
            "PREFECT_API_URL": api_url,
            "PREFECT_API_AUTH_STRING": auth,
        }
        # 2. The work pool.
        prefect = str(BIN / "prefect")
        run(client_env, prefect, "work-pool", "create", "handover", "--type", "process")

        # The demo estate, its playbook in a playbook folder of its own, paths made absolute
        # (the worker's runs work in the checkout, not in the workspace).
        # The operator prepares the contract (vault, incident journal) against the team's
        # state database, as the workers will read it: a worker refuses a local journal
        # the database has never seen.
        state_url = pg.url(state_db)
        monkeypatch.setenv("HANDOVER_STATE_URL", state_url)
        workspace = make_workspace(tmp_path, monkeypatch)
        workspace, folder = team_playbook(workspace)

        worker_env = {
            **client_env,
            **base_env(tmp_path, "worker"),
            "PREFECT_API_URL": api_url,
            "PREFECT_API_AUTH_STRING": auth,
            "HANDOVER_WORKDIR": str(PROJECT_ROOT),
            "HANDOVER_PLAYBOOK_DIRS": str(folder),
            "HANDOVER_HOME": str(workspace.home),
            "HANDOVER_VAULT_KEY_FILE": os.environ["HANDOVER_VAULT_KEY_FILE"],
            "HANDOVER_STATE_URL": state_url,
            "HANDOVER_PAUSE_POLL_SECONDS": "1",
        }
        # 4. The deployments, from the repository root.
        deploy_all(client_env)

        # 5. A worker of the pool, at most two runs at once.
        processes.append(start_worker(worker_env, tmp_path / "worker.log", limit=2))
        yield Team(api_url, auth, client_env, worker_env, state_url, workspace)
    finally:
        for process in reversed(processes):
            stop(process)
        close_engine(postgres_server.url(state_db))  # this process's connections, first
        postgres_server.drop_database(prefect_db)
        postgres_server.drop_database(state_db)


def test_the_team_setup_runs_each_phase_on_a_worker(team: Team, tmp_path: Path) -> None:
    from flows.lifecycle import drill_notice_date

    # The exit's human steps, answered through the API by a process of their own.
    answers = start_acceptance_answers(
        team.worker_env, team.workspace.playbook, team.workspace.root
    )
    runs: dict[str, str] = {}
    try:
        for phase in PHASES:
            params = []
            if phase == "reversibility":
                notice = drill_notice_date(team.workspace.playbook).isoformat()
                params = ["--param", f"notice_date={notice}"]
            run_id = runs[phase] = start_run(team, phase, *params)
            final = wait_final(team, run_id, timeout_s=600)
            assert final == "COMPLETED", (
                f"{phase}: {final}\n{(tmp_path / 'worker.log').read_text()[-4000:]}"
            )
    finally:
        stop(answers)

    # The runs ran on the pool's worker, each in a process of its own, not in this process
    # (what the server recorded; the worker's log may still be flushing their last lines).
    worker_log = (tmp_path / "worker.log").read_text()
    assert "Worker 'ProcessWorker" in worker_log, worker_log[-3000:]
    for phase, run_id in runs.items():
        response = httpx.get(f"{team.api_url}/flow_runs/{run_id}", headers=team.headers())
        recorded = response.json()
        assert recorded["work_pool_name"] == "handover", (phase, recorded["work_pool_name"])
        assert recorded["infrastructure_pid"], f"{phase}: no process recorded by the worker"

    # The client's bundle, checked with standard tools only.
    deliveries = team.workspace.home / "demo" / "deliveries"
    sums = sorted(deliveries.rglob("SHA256SUMS"))
    assert sums, f"no bundle delivered under {deliveries}"
    subprocess.run(["sha256sum", "-c", "--quiet", "SHA256SUMS"], cwd=sums[0].parent, check=True)

    # One chain, in the team's database, intact.
    audit = run(
        {**team.worker_env, "PYTHONPATH": str(PROJECT_ROOT)},
        str(BIN / "handover"),
        "audit",
        str(team.workspace.playbook),
        "--verify",
        cwd=team.workspace.root,
    )
    assert "hash chain intact" in audit, audit
