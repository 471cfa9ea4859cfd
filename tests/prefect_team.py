"""A team's Prefect setup for tests: processes, environments and runs (deployments/README.md).

Shared by the tests that follow the README (`test_deployments_readme`) and
that spread one contract over two workers (`test_two_workers`).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import PROJECT_ROOT
from tests.workspace import Workspace

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def base_env(tmp: Path, name: str) -> dict[str, str]:
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


def read_env_file(path: Path) -> dict[str, str]:
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


def wait_healthy(url: str, server: subprocess.Popen[bytes], log: Path, timeout_s: float) -> None:
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


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


def run(env: dict[str, str], *argv: str, cwd: Path = PROJECT_ROOT) -> str:
    done = subprocess.run(
        list(argv), env=env, cwd=cwd, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, f"{' '.join(argv)}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout + done.stderr


def start_run(team: Team, phase: str, *params: str) -> str:
    out = run(
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


def wait_final(team: Team, run_id: str, timeout_s: float) -> str:
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


def start_server(
    tmp_path: Path,
    database_url: str,
    auth: str,
    *,
    name: str = "server",
    env_lines: str = "",
    extra_args: tuple[str, ...] = (),
) -> tuple[subprocess.Popen[bytes], str]:
    """`prefect server start --host 127.0.0.1` on PostgreSQL, its auth string from a 0600 file.

    `name` keeps the environment file, PREFECT_HOME and log of each of several
    servers (replicas) apart; `env_lines` are more `KEY=value` lines for its
    environment file (the replicas' Redis settings, which hold a password),
    `extra_args` more arguments (`--no-services`).
    Returns the process (its own session: stop it with `stop`) and the API URL.
    """
    env_file = tmp_path / f"prefect-{name}.env"
    env_file.touch(mode=0o600)
    env_file.write_text(f"PREFECT_SERVER_API_AUTH_STRING={auth}\n{env_lines}")
    assert env_file.stat().st_mode & 0o777 == 0o600
    port = free_port()
    server_env = {
        **base_env(tmp_path, name),
        **read_env_file(env_file),
        "PREFECT_API_DATABASE_CONNECTION_URL": database_url,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    server_log = tmp_path / f"{name}.log"
    with server_log.open("wb") as log:
        server = subprocess.Popen(
            [
                *(str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1"),
                *("--port", str(port), "--no-background", *extra_args),
            ],
            env=server_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    api_url = f"http://127.0.0.1:{port}/api"
    try:
        wait_healthy(api_url, server, server_log, timeout_s=240)
    except BaseException:
        stop(server)
        raise
    return server, api_url


def team_playbook(workspace: Workspace) -> tuple[Workspace, Path]:
    """The workspace's playbook in a playbook folder of its own, its paths made absolute.

    The workers' runs work in the checkout, not in the workspace, so every
    path must resolve the same way from anywhere.
    """
    folder = workspace.root / "playbooks"
    folder.mkdir()
    text = workspace.playbook.read_text().replace(
        ".handover/demo/", f"{workspace.root}/.handover/demo/"
    )
    playbook = folder / "demo.yaml"
    playbook.write_text(text)
    return Workspace(workspace.root, playbook, workspace.client_key), folder


def deploy_all(client_env: dict[str, str]) -> str:
    """`prefect --no-prompt deploy --prefect-file deployments/prefect.yaml --all`, from the root."""
    deploy_env = {**client_env, "HANDOVER_WORKDIR": str(PROJECT_ROOT)}
    out = run(
        deploy_env,
        str(BIN / "prefect"),
        "--no-prompt",
        "deploy",
        "--prefect-file",
        "deployments/prefect.yaml",
        "--all",
    )
    assert "takeover/takeover" in out and "reversibility/reversibility" in out, out
    return out


def start_worker(env: dict[str, str], log_path: Path, limit: int) -> subprocess.Popen[bytes]:
    """`prefect worker start --pool handover --limit N`, in a session of its own (for killpg)."""
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [str(BIN / "prefect"), "worker", "start", "--pool", "handover", "--limit", str(limit)],
            env=env,
            cwd=PROJECT_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def start_acceptance_answers(
    env: dict[str, str], playbook: Path, cwd: Path
) -> subprocess.Popen[bytes]:
    """The exit's human steps (the client's signed acceptance), answered through the API.

    A process of its own, as the client and the incoming team act from the
    UI; stop it with `stop`.
    """
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, threading; from pathlib import Path;"
            "from flows.lifecycle import answer_acceptance_when_paused as answer;"
            "answer(Path(sys.argv[1]), threading.Event()).join()",
            str(playbook),
        ],
        env={
            **env,
            "HANDOVER_TEST_SIGNER_KEY": os.environ["HANDOVER_TEST_SIGNER_KEY"],
            "PYTHONPATH": str(PROJECT_ROOT),
        },
        cwd=cwd,
        start_new_session=True,
    )
