"""Two installations starting their server at the same moment each get their own.

Two processes, two temporary HANDOVER_HOME folders, the same wanted port
(HANDOVER_PREFECT_PORT): both see it free, both spawn a real `prefect
server start`, one loses the bind. The loser must not settle for the
winner's `/health`: it waits for its own nonce, sees its process exit, and
starts again on a free port. Each home's API then answers with its own
nonce, and refuses the other home's auth string.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from flows import server
from tests.conftest import PROJECT_ROOT

pytestmark = pytest.mark.integration

CHILD = """
import json, os, sys, time
from pathlib import Path
from flows import server
go = Path(sys.argv[1])
while not go.exists():
    time.sleep(0.01)
info = server.start()
print(json.dumps({"api_url": info.api_url, "pid": info.pid, "port": info.port}))
"""


@pytest.fixture
def homes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Path]]:
    """Two handover homes (never the session server's); their servers stopped at the end."""
    made = [tmp_path / "home-a", tmp_path / "home-b"]
    try:
        yield made
    finally:
        for home in made:
            monkeypatch.setenv("HANDOVER_HOME", str(home))
            server.stop()


def child_env(home: Path, port: int) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PREFECT_API_URL", "PREFECT_API_AUTH_STRING", "PREFECT_HOME")
    }
    env.update(
        HANDOVER_HOME=str(home), HANDOVER_PREFECT_PORT=str(port), PYTHONPATH=str(PROJECT_ROOT)
    )
    # Faster starts (three per test): no UI build copied into each new home, no block
    # registration before the bind. The race is about the port, not about these.
    env.update(PREFECT_SERVER_UI_ENABLED="false", PREFECT_SERVER_REGISTER_BLOCKS_ON_START="false")
    return env


def test_two_homes_starting_at_once_each_get_their_own_server(
    homes: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = server._free_port()
    go = tmp_path / "go"
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, str(go)],
            env=child_env(home, port),
            cwd=PROJECT_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for home in homes
    ]
    time.sleep(1.0)  # both have imported flows.server and wait for the signal
    go.touch()
    started = []
    for child in children:
        out, err = child.communicate(timeout=200)
        assert child.returncode == 0, err.decode(errors="replace")[-2000:]
        started.append(json.loads(out.decode().strip().splitlines()[-1]))

    assert started[0]["port"] != started[1]["port"]  # one of them lost the wanted port
    assert port in {s["port"] for s in started}  # and the other one has it
    logs = [(home / "prefect" / "server.log").read_text(errors="replace") for home in homes]
    # The race happened: both spawned on the wanted port and one server lost the bind.
    assert sum("address already in use" in log.lower() for log in logs) == 1, logs
    states, auths = [], []
    for home, info in zip(homes, started, strict=True):
        monkeypatch.setenv("HANDOVER_HOME", str(home))
        state = json.loads((server.prefect_home() / "server.json").read_text())
        assert (state["pid"], state["port"]) == (info["pid"], info["port"])
        assert server._answers_with(info["api_url"], state["nonce"])  # the API is ours
        assert server.status() is not None and server.status() == server._info(
            info["port"], info["pid"]
        )
        states.append(state)
        auths.append(server.auth_string())
    assert states[0]["nonce"] != states[1]["nonce"] and auths[0] != auths[1]
    # Home b asking home a's server: refused (another auth string), whatever nonce it holds.
    monkeypatch.setenv("HANDOVER_HOME", str(homes[1]))
    assert not server._answers_with(started[0]["api_url"], states[0]["nonce"])
    assert not server._answers_with(started[0]["api_url"], states[1]["nonce"])
    # Each home stops its own server, and only it.
    assert server.stop() is True
    assert server._healthy(started[0]["api_url"])  # home a's still answers
    monkeypatch.setenv("HANDOVER_HOME", str(homes[0]))
    assert server.stop() is True
    assert not server._healthy(started[0]["api_url"])
