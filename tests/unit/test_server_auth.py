"""The embedded server's auth string: made once, private, reused; sent only to that server.

The API side is faked with a small HTTP server on loopback that answers
/health to anyone and /api/admin/version only with the right Basic header
(what Prefect's middleware does); tests/integration/test_api_auth.py checks
the real server.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import stat
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from flows import server
from handover.errors import HandoverError, UsageError

GOOD = "handover:the-right-one"
NONCE = "n-test"
#: What /api/admin/settings shows of the server started with NONCE (flows.server reads it).
SETTINGS = json.dumps(
    {
        "server": {
            "database": {"sqlalchemy": {"connect_args": {"application_name": f"handover-{NONCE}"}}}
        }
    }
).encode()


class FakeApi(BaseHTTPRequestHandler):
    seen: list[str | None] = []  # noqa: RUF012 (per-test list, reset by the fixture)
    open_to_all = False  # a server started without an auth string

    def do_GET(self) -> None:
        FakeApi.seen.append(self.headers.get("Authorization"))
        expected = "Basic " + base64.b64encode(GOOD.encode()).decode()
        ok = (
            FakeApi.open_to_all
            or self.path == "/api/health"
            or self.headers.get("Authorization") == expected
        )
        self.send_response(200 if ok else 401)
        self.end_headers()
        self.wfile.write(SETTINGS if ok and self.path == "/api/admin/settings" else b"{}")

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def fake_api() -> Iterator[str]:
    FakeApi.seen = []
    FakeApi.open_to_all = False
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), FakeApi)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/api"
    finally:
        httpd.shutdown()
        httpd.server_close()


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_auth_string_is_made_once_private_and_reused() -> None:
    old = os.umask(0o022)
    try:
        first = server.auth_string()
    finally:
        os.umask(old)
    assert first.startswith("handover:") and len(first) >= 40
    assert mode(server.auth_file()) == 0o600
    assert mode(server.prefect_home()) == 0o700
    assert server.auth_string() == first  # every later start, and every command
    assert server.stop() is False  # nothing ran; stopping keeps the string for the restart
    assert server.auth_string() == first
    names = sorted(p.name for p in server.prefect_home().iterdir())
    assert names == ["api-auth", "server.lock"]  # no temp left (stop took the start lock)


def test_an_existing_string_is_kept_and_its_file_made_private() -> None:
    home = server.prefect_home()
    os.chmod(home, 0o755)
    (home / "api-auth").write_text("handover:chosen-by-the-site\n")
    os.chmod(home / "api-auth", 0o644)
    assert server.auth_string() == "handover:chosen-by-the-site"
    assert mode(home / "api-auth") == 0o600 and mode(home) == 0o700


def test_the_server_requires_it_and_clients_of_other_servers_never_get_it() -> None:
    env = server._server_environment(4321)
    assert env["PREFECT_SERVER_API_AUTH_STRING"] == server.auth_string()
    assert env["PREFECT_API_AUTH_STRING"] == server.auth_string()
    assert "PREFECT_API_AUTH_STRING" not in server.client_environment()


def test_require_auth_passes_the_right_string(fake_api: str) -> None:
    server.require_auth(fake_api, GOOD, managed=False)
    assert FakeApi.seen == ["Basic " + base64.b64encode(GOOD.encode()).decode()]


@pytest.mark.parametrize("auth", [None, "handover:wrong"])
def test_require_auth_says_what_to_set_on_a_401(fake_api: str, auth: str | None) -> None:
    with pytest.raises(UsageError) as refused:
        server.require_auth(fake_api, auth, managed=False)
    message = str(refused.value)
    assert "HTTP 401" in message and "PREFECT_API_AUTH_STRING" in message and "\n" not in message
    assert "wrong" not in message  # the string given is never echoed
    with pytest.raises(UsageError, match="handover server stop"):
        server.require_auth(fake_api, auth, managed=True)


def test_a_users_server_gets_the_users_string_not_ours(
    fake_api: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ours = server.auth_string()
    monkeypatch.setenv("PREFECT_API_URL", fake_api)
    monkeypatch.delenv("PREFECT_API_AUTH_STRING", raising=False)
    with pytest.raises(UsageError, match="HTTP 401"):
        server.ensure_server()
    sent = [header for header in FakeApi.seen if header]
    assert not any(base64.b64encode(ours.encode()).decode() in header for header in sent)
    monkeypatch.setenv("PREFECT_API_AUTH_STRING", GOOD)
    info = server.ensure_server()
    assert info.managed is False and os.environ["PREFECT_API_AUTH_STRING"] == GOOD


def test_a_running_server_without_an_auth_string_is_not_used(fake_api: str) -> None:
    """One left running by an older handover: the commands say to restart it."""
    port = int(fake_api.removesuffix("/api").rsplit(":", 1)[1])
    server.auth_file().write_text(GOOD + "\n")  # the string this fake API accepts
    ours = subprocess.Popen(  # started as the server is: the nonce in its environment
        ["sleep", "60"], start_new_session=True, env={**os.environ, server.NONCE_ENV: NONCE}
    )
    # Until the child has exec'd, /proc shows the parent's environment, without the nonce
    # (a loaded machine made start() take it for a stranger and start a real server).
    deadline = time.monotonic() + 30
    while b"sleep" not in Path(f"/proc/{ours.pid}/cmdline").read_bytes():
        assert time.monotonic() < deadline, "sleep never started"
        time.sleep(0.01)
    try:
        state = {"pid": ours.pid, "port": port, "nonce": NONCE}  # status() sees it running
        (server.prefect_home() / "server.json").write_text(json.dumps(state))
        assert server.start().port == port  # it requires the string: reused as it is
        FakeApi.open_to_all = True
        with pytest.raises(HandoverError, match="answers without an auth string: restart it"):
            server.start()
    finally:
        ours.kill()
        ours.wait()
        with contextlib.suppress(HandoverError, OSError):
            server.stop()  # a real server, had start() not taken ours for ours
