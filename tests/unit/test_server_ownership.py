"""A server belongs to the home that started it: `status` and `stop` check pid and nonce.

The "servers" here are `sleep` processes (carrying a nonce in their
environment or not) and a small HTTP API on loopback that answers /health to
anyone and /api/admin/settings with a nonce only to the right auth string,
as Prefect does; tests/integration/test_server_ownership.py starts real
servers.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from typer.testing import CliRunner

import flows.commands  # noqa: F401 (registers the server commands on the app)
from flows import server
from handover.cli import app
from handover.errors import HandoverError, UsageError


class SettingsApi(BaseHTTPRequestHandler):
    auth = ""  # the auth string it accepts (set by the fixture)
    nonce = ""  # the nonce its settings show

    def do_GET(self) -> None:
        if self.path == "/api/health":
            self._answer(200, b"true")
        elif (
            self.headers.get("Authorization")
            != "Basic " + base64.b64encode(SettingsApi.auth.encode()).decode()
        ):
            self._answer(401, b"{}")
        elif self.path == "/api/admin/settings":
            name = f"handover-{SettingsApi.nonce}"
            body = {"server": {"database": {"sqlalchemy": {"connect_args": {}}}}}
            body["server"]["database"]["sqlalchemy"]["connect_args"]["application_name"] = name
            self._answer(200, json.dumps(body).encode())
        else:
            self._answer(200, b"{}")

    def _answer(self, code: int, body: bytes) -> None:
        self.send_response(code)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def api_port() -> Iterator[int]:
    SettingsApi.auth = server.auth_string()
    SettingsApi.nonce = "n-ours"
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), SettingsApi)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(httpd.server_address[1])
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    """An unrelated process leading its own session: what `killpg` would hit hardest."""
    env = {k: v for k, v in os.environ.items() if k != server.NONCE_ENV}
    process = subprocess.Popen(["sleep", "60"], start_new_session=True, env=env)
    try:
        yield process
    finally:
        process.kill()
        process.wait()


@pytest.fixture
def our_process() -> Iterator[subprocess.Popen[bytes]]:
    """A process started as the server is: its own session, the nonce in its environment."""
    env = {**os.environ, server.NONCE_ENV: "n-ours"}
    process = subprocess.Popen(["sleep", "60"], start_new_session=True, env=env)
    try:
        yield process
    finally:
        process.kill()
        process.wait()


def write_state(pid: int, port: int = 1, nonce: str | None = "n-ours") -> None:
    state: dict[str, object] = {"pid": pid, "port": port, "host": "127.0.0.1"}
    if nonce is not None:
        state["nonce"] = nonce
    (server.prefect_home() / "server.json").write_text(json.dumps(state))


@pytest.mark.parametrize("nonce", ["n-ours", None], ids=["with-nonce", "older-state"])
def test_stop_never_signals_a_process_it_did_not_start(
    sleeper: subprocess.Popen[bytes], nonce: str | None
) -> None:
    write_state(sleeper.pid, nonce=nonce)
    assert server.stop_server() == (server.StopOutcome.NOT_OURS, sleeper.pid)
    with pytest.raises(subprocess.TimeoutExpired):
        sleeper.wait(timeout=0.5)  # still alive, and its group too
    assert sleeper.poll() is None
    assert not (server.prefect_home() / "server.json").exists()  # stale: removed


def test_the_cli_says_the_process_was_left_alone(sleeper: subprocess.Popen[bytes]) -> None:
    write_state(sleeper.pid)
    result = CliRunner().invoke(app, ["server", "stop"])
    assert result.exit_code == 0, result.output
    assert f"named pid {sleeper.pid}" in result.output and "left alone" in result.output
    assert sleeper.poll() is None


def test_stop_signals_the_process_carrying_our_nonce(our_process: subprocess.Popen[bytes]) -> None:
    write_state(our_process.pid)
    assert server.stop_server() == (server.StopOutcome.STOPPED, our_process.pid)
    our_process.wait(timeout=5)  # reaped by stop already, or now
    with pytest.raises(ProcessLookupError):
        os.kill(our_process.pid, 0)  # terminated by the signal


def test_a_nonce_of_another_start_is_not_ours(our_process: subprocess.Popen[bytes]) -> None:
    write_state(our_process.pid, nonce="n-earlier")
    assert server.stop() is False
    assert our_process.poll() is None


def test_status_needs_our_process_and_our_nonce_in_the_api(
    api_port: int, our_process: subprocess.Popen[bytes], sleeper: subprocess.Popen[bytes]
) -> None:
    write_state(our_process.pid, port=api_port)
    info = server.status()
    assert info is not None and info.pid == our_process.pid and info.port == api_port
    SettingsApi.nonce = "n-someone-else"  # another server answers on that port
    assert server.status() is None
    SettingsApi.nonce = "n-ours"
    SettingsApi.auth = "handover:another-home"  # another home's server refuses our string
    assert server.status() is None
    SettingsApi.auth = server.auth_string()
    write_state(sleeper.pid, port=api_port)  # the API answers, but the pid is not ours
    assert server.status() is None


def test_a_server_from_before_the_nonce_is_restarted_not_doubled() -> None:
    """A state without nonce whose process is this home's `prefect server`: say to restart."""
    older = subprocess.Popen(  # what an older handover started: no nonce, this PREFECT_HOME
        [sys.executable, "-c", "import time; time.sleep(60)", "prefect", "server", "start"],
        start_new_session=True,
        env={**os.environ, "PREFECT_HOME": str(server.prefect_home())},
    )
    try:
        write_state(older.pid, nonce=None)
        assert server.status() is None  # `handover status` just says no server runs
        with pytest.raises(HandoverError, match="started by an older handover: restart it"):
            server.start()
        assert older.poll() is None
        assert server.stop_server() == (server.StopOutcome.STOPPED, older.pid)  # it is ours
        older.wait(timeout=5)
    finally:
        older.kill()
        older.wait()


def test_the_server_is_given_its_nonce_and_host() -> None:
    env = server._server_environment(4321, "n-1", "10.0.0.5")
    assert env[server.NONCE_ENV] == "n-1"
    assert env[server.NONCE_SETTING] == "handover-n-1"
    assert env["PREFECT_SERVER_API_HOST"] == "10.0.0.5"
    assert env["PREFECT_UI_API_URL"] == "http://10.0.0.5:4321/api"
    assert server._info(4321, None, "0.0.0.0").api_url == "http://127.0.0.1:4321/api"


@pytest.mark.parametrize("host", ["192.0.2.1", "no-such-host.invalid"])
def test_a_host_that_is_not_of_this_machine_is_a_usage_error(host: str) -> None:
    with pytest.raises(UsageError, match=f"--host {host}: the server cannot listen there"):
        server.start(host=host)
    assert not (server.prefect_home() / "server.json").exists()  # nothing was spawned


def test_the_start_lock_is_exclusive_per_home() -> None:
    """A second starter of the same home waits for the first (fcntl on server.lock)."""
    import fcntl

    with server._home_lock():
        fd = os.open(server.prefect_home() / server.LOCK_FILE, os.O_RDWR)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)
    fd = os.open(server.prefect_home() / server.LOCK_FILE, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released at the end
    finally:
        os.close(fd)
