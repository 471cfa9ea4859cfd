"""`handover run` against a Prefect API that does not answer: one line, exit 1, in seconds.

The CLI runs as a real subprocess (the console entry point, `flows.cli`),
with PREFECT_API_URL pointing at a loopback port where nothing listens, or
where a socket accepts connections and never answers.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from flows import server
from tests.conftest import PROJECT_ROOT

pytestmark = pytest.mark.integration

PLAYBOOK = "playbooks/examples/demo.yaml"
LIMIT_S = 15.0


def run_cli(api_url: str, home: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    env = {**os.environ, "PREFECT_API_URL": api_url, "HANDOVER_HOME": str(home)}
    env.pop("PREFECT_UI_URL", None)
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "flows.cli", *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done, time.monotonic() - started


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port whose listener accepts connections and never says a word."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stop.set()
        thread.join()
        for conn in [*accepted, listener]:
            conn.close()


def test_run_with_nothing_listening_fails_in_one_line_within_seconds(tmp_path: Path) -> None:
    port = server._free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    done, elapsed = run_cli(api_url, tmp_path / "home", "run", "takeover", PLAYBOOK)
    assert elapsed < LIMIT_S
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"error: the Prefect API at {api_url} does not answer (connection refused); "
        f"start it with 'handover server start --port {port}' or fix PREFECT_API_URL"
    ]
    assert "Traceback" not in done.stdout + done.stderr
    assert "Prefect UI" not in done.stdout  # nothing started before the check


def test_run_against_a_silent_listener_gives_up_after_the_check_timeout(
    tmp_path: Path, silent_port: int
) -> None:
    api_url = f"http://127.0.0.1:{silent_port}/api"
    done, elapsed = run_cli(api_url, tmp_path / "home", "run", "operational", PLAYBOOK)
    assert server.API_CHECK_TIMEOUT_S <= elapsed < LIMIT_S
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"error: the Prefect API at {api_url} does not answer "
        f"(no answer within {server.API_CHECK_TIMEOUT_S:g} s); "
        f"start it with 'handover server start --port {silent_port}' or fix PREFECT_API_URL"
    ]


def test_an_api_url_that_is_no_url_is_a_usage_error(tmp_path: Path) -> None:
    done, elapsed = run_cli("localhost:4200", tmp_path / "home", "run", "takeover", PLAYBOOK)
    assert done.returncode == 2 and elapsed < LIMIT_S
    assert done.stderr.splitlines() == [
        "error: PREFECT_API_URL='localhost:4200' is not an http(s) URL "
        "(expected http://HOST:PORT/api)"
    ]
