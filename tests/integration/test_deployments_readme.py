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
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from handover.state.postgres import close_engine
from tests.conftest import PROJECT_ROOT
from tests.fixtures.postgres import PostgresServer
from tests.workspace import Workspace, make_workspace

pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent
PHASES = ("takeover", "implementation", "operational", "reversibility")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _base_env(tmp: Path, name: str) -> dict[str, str]:
    """The caller's environment without any Prefect or handover setting, and a PREFECT_HOME."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PREFECT_", "HANDOVER_", "AWS_"))
    }
    home = tmp / f"prefect-home-{name}"
    home.mkdir(mode=0o700, exist_ok=True)
    env["PREFECT_HOME"] = str(home)
    return env


def _read_env_file(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {key: value for key, value in pairs}


@dataclass
class Team:
    api_url: str
    auth_string: str
    client_env: dict[str, str]
    worker_env: dict[str, str]
    state_url: str
    workspace: Workspace

    def headers(self) -> dict[str, str]:
        import base64

        token = base64.b64encode(self.auth_string.encode()).decode()
        return {"Authorization": f"Basic {token}"}


def _wait_healthy(url: str, server: subprocess.Popen[bytes], log: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"prefect server exited ({server.returncode}):\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    pytest.fail(f"prefect server not healthy after {timeout_s:.0f} s:\n{log.read_text()[-3000:]}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


def _run(env: dict[str, str], *argv: str, cwd: Path = PROJECT_ROOT) -> str:
    done = subprocess.run(
        list(argv), env=env, cwd=cwd, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, f"{' '.join(argv)}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout + done.stderr


@pytest.fixture
def team(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, postgres_server: PostgresServer
) -> Iterator[Team]:
    prefect_db = postgres_server.create_database()
    state_db = postgres_server.create_database()
    processes: list[subprocess.Popen[bytes]] = []
    try:
        # 1. The server, on PostgreSQL, loopback only, its auth string in a 0600 file.
        env_file = tmp_path / "prefect-server.env"
        env_file.touch(mode=0o600)
        auth = f"handover:{secrets.token_urlsafe(33)}"
        env_file.write_text(f"PREFECT_SERVER_API_AUTH_STRING={auth}\n")
        assert env_file.stat().st_mode & 0o777 == 0o600
        port = _free_port()
        pg = postgres_server
        server_env = {
            **_base_env(tmp_path, "server"),
            **_read_env_file(env_file),
            "PREFECT_API_DATABASE_CONNECTION_URL": (
                f"postgresql+asyncpg://{pg.role}:{pg.password}@{pg.host}:{pg.port}/{prefect_db}"
            ),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        }
        server_log = tmp_path / "server.log"
        with server_log.open("wb") as log:
            server = subprocess.Popen(
                [
                    *(str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1"),
                    *("--port", str(port), "--no-background"),
                ],
                env=server_env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        processes.append(server)
        api_url = f"http://127.0.0.1:{port}/api"
        _wait_healthy(api_url, server, server_log, timeout_s=240)

        # 3. Operators and workers: the string from a file of their own, never from Prefect.
        client_env = {
            **_base_env(tmp_path, "operator"),
            "PREFECT_API_URL": api_url,
            "PREFECT_API_AUTH_STRING": auth,
        }
        # 2. The work pool.
        prefect = str(BIN / "prefect")
        _run(client_env, prefect, "work-pool", "create", "handover", "--type", "process")

        # The demo estate, its playbook in a playbook folder of its own, paths made absolute
        # (the worker's runs work in the checkout, not in the workspace).
        # The operator prepares the contract (vault, incident journal) against the team's
        # state database, as the workers will read it: a worker refuses a local journal
        # the database has never seen.
        state_url = pg.url(state_db)
        monkeypatch.setenv("HANDOVER_STATE_URL", state_url)
        workspace = make_workspace(tmp_path, monkeypatch)
        folder = workspace.root / "playbooks"
        folder.mkdir()
        text = workspace.playbook.read_text().replace(
            ".handover/demo/", f"{workspace.root}/.handover/demo/"
        )
        playbook = folder / "demo.yaml"
        playbook.write_text(text)
        workspace = Workspace(workspace.root, playbook, workspace.client_key)

        worker_env = {
            **client_env,
            **_base_env(tmp_path, "worker"),
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
        deploy_env = {**client_env, "HANDOVER_WORKDIR": str(PROJECT_ROOT)}
        out = _run(
            deploy_env,
            str(BIN / "prefect"),
            "--no-prompt",
            "deploy",
            "--prefect-file",
            "deployments/prefect.yaml",
            "--all",
        )
        assert "takeover/takeover" in out and "reversibility/reversibility" in out, out

        # 5. A worker of the pool, at most two runs at once.
        worker_log = tmp_path / "worker.log"
        with worker_log.open("wb") as log:
            worker = subprocess.Popen(
                [str(BIN / "prefect"), "worker", "start", "--pool", "handover", "--limit", "2"],
                env=worker_env,
                cwd=PROJECT_ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        processes.append(worker)
        yield Team(api_url, auth, client_env, worker_env, state_url, workspace)
    finally:
        for process in reversed(processes):
            _stop(process)
        close_engine(postgres_server.url(state_db))  # this process's connections, first
        postgres_server.drop_database(prefect_db)
        postgres_server.drop_database(state_db)


def _start(team: Team, phase: str, *params: str) -> str:
    out = _run(
        team.client_env,
        str(BIN / "prefect"),
        "deployment",
        "run",
        f"{phase}/{phase}",
        "--param",
        f"playbook_path={team.workspace.playbook}",
        *params,
    )
    match = re.search(r"UUID:\s*([0-9a-f-]{36})", out)
    assert match, out
    return match.group(1)


def _wait_final(team: Team, run_id: str, timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    state = "?"
    while time.monotonic() < deadline:
        response = httpx.get(f"{team.api_url}/flow_runs/{run_id}", headers=team.headers())
        response.raise_for_status()
        state = response.json()["state"]["type"]
        if state in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
            return str(state)
        time.sleep(2)
    return f"still {state} after {timeout_s:.0f} s"


def test_the_team_setup_runs_each_phase_on_a_worker(team: Team, tmp_path: Path) -> None:
    from flows.lifecycle import drill_notice_date

    # The exit's human steps, answered through the API by a process of their own.
    answers = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, threading; from pathlib import Path;"
            "from flows.lifecycle import answer_acceptance_when_paused as answer;"
            "answer(Path(sys.argv[1]), threading.Event()).join()",
            str(team.workspace.playbook),
        ],
        env={
            **team.worker_env,
            "HANDOVER_TEST_SIGNER_KEY": os.environ["HANDOVER_TEST_SIGNER_KEY"],
            "PYTHONPATH": str(PROJECT_ROOT),
        },
        cwd=team.workspace.root,
        start_new_session=True,
    )
    runs: dict[str, str] = {}
    try:
        for phase in PHASES:
            params = []
            if phase == "reversibility":
                notice = drill_notice_date(team.workspace.playbook).isoformat()
                params = ["--param", f"notice_date={notice}"]
            run_id = runs[phase] = _start(team, phase, *params)
            final = _wait_final(team, run_id, timeout_s=600)
            assert final == "COMPLETED", (
                f"{phase}: {final}\n{(tmp_path / 'worker.log').read_text()[-4000:]}"
            )
    finally:
        _stop(answers)

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
    audit = _run(
        {**team.worker_env, "PYTHONPATH": str(PROJECT_ROOT)},
        str(BIN / "handover"),
        "audit",
        str(team.workspace.playbook),
        "--verify",
        cwd=team.workspace.root,
    )
    assert "hash chain intact" in audit, audit
