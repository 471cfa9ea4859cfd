"""SSH connections that fail before a session: each says what and where, in its own time.

Real TCP listeners on loopback: one that accepts and stays silent (no SSH
banner), one that closes at once, a port where nothing listens, and a
paramiko server that never answers authentication.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator

import paramiko
import pytest

from handover.connectors.ssh.connector import SSHConnector
from handover.connectors.ssh.known_hosts import fetch_host_key, fingerprint
from handover.connectors.ssh.target import SSHTarget
from handover.errors import PermanentConnectorError, TransientConnectorError

Handler = Callable[[socket.socket], None]


@pytest.fixture
def listen() -> Iterator[Callable[[Handler], int]]:
    """Start a loopback listener whose connections go to a handler thread; give its port."""
    listeners: list[socket.socket] = []
    servers: list[threading.Thread] = []
    stop = threading.Event()

    def start(handler: Handler) -> int:
        listener = socket.create_server(("127.0.0.1", 0))
        listener.settimeout(0.1)
        listeners.append(listener)

        def serve() -> None:
            while not stop.is_set():
                try:
                    conn, _ = listener.accept()
                except TimeoutError:
                    continue
                threading.Thread(target=handler, args=(conn,), daemon=True).start()

        servers.append(threading.Thread(target=serve, daemon=True))
        servers[-1].start()
        return int(listener.getsockname()[1])

    yield start
    stop.set()
    for thread in servers:
        thread.join()
    for listener in listeners:
        listener.close()


def silent(conn: socket.socket) -> None:
    """Accept and say nothing until the client leaves."""
    with conn:
        while conn.recv(4096):
            pass


def hang_up(conn: socket.socket) -> None:
    conn.close()


def target(port: int, **fields: object) -> SSHTarget:
    return SSHTarget(name="db1", address="127.0.0.1", port=port, use_agent=True, **fields)  # type: ignore[arg-type]


def test_a_silent_listener_fails_once_within_the_banner_timeout(
    listen: Callable[[Handler], int],
) -> None:
    port = listen(silent)
    started = time.monotonic()
    with pytest.raises(PermanentConnectorError) as caught:
        # Retries are offered, and refused: a silence already waited for is not retried.
        SSHConnector.connect(target(port), known_hosts=None, banner_timeout_s=0.5, retries=3)
    elapsed = time.monotonic() - started
    assert 0.5 <= elapsed < 1.5
    assert str(caught.value) == (
        f"db1: root@[127.0.0.1]:{port}: no SSH banner within 0.5 s: "
        "is an SSH server listening there?"
    )
    assert caught.value.host == "db1"
    assert not isinstance(caught.value, TransientConnectorError)


def test_a_listener_that_hangs_up_is_transient_and_says_so(
    listen: Callable[[Handler], int],
) -> None:
    port = listen(hang_up)
    with pytest.raises(TransientConnectorError) as caught:
        SSHConnector.connect(target(port), known_hosts=None, retries=1, retry_delay_s=0.01)
    message = str(caught.value)
    assert message.startswith(f"db1: root@[127.0.0.1]:{port}: connection closed before")
    assert message.endswith("(gave up after 2 attempts)") and "\n" not in message


def test_nothing_listening_is_a_refused_connection_naming_host_and_port() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, never listening: refused
        started = time.monotonic()
        with pytest.raises(TransientConnectorError) as caught:
            SSHConnector.connect(target(port), known_hosts=None, retries=0)
    assert time.monotonic() - started < 1
    assert str(caught.value) == (
        f"db1: root@[127.0.0.1]:{port}: connection refused: "
        f"is an SSH server listening on port {port}? (gave up after 1 attempts)"
    )


def test_first_contact_on_a_silent_port_says_no_banner(
    listen: Callable[[Handler], int],
) -> None:
    port = listen(silent)
    with pytest.raises(PermanentConnectorError, match=r"no SSH banner within 0\.3 s"):
        fetch_host_key("127.0.0.1", port, timeout_s=0.3)


class _NeverAnswers(paramiko.ServerInterface):
    """A server whose password check never returns in time (a hung PAM, say)."""

    def __init__(self, release: threading.Event) -> None:
        self.release = release

    def get_allowed_auths(self, username: str) -> str:
        return "password"

    def check_auth_password(self, username: str, password: str) -> int:
        self.release.wait(10)
        return paramiko.AUTH_FAILED


def test_no_answer_to_authentication_is_one_line_within_the_auth_timeout(
    listen: Callable[[Handler], int], monkeypatch: pytest.MonkeyPatch
) -> None:
    key = paramiko.RSAKey.generate(2048)
    release = threading.Event()

    def ssh_server(conn: socket.socket) -> None:
        transport = paramiko.Transport(conn)
        transport.add_server_key(key)
        with transport:
            transport.start_server(server=_NeverAnswers(release))
            release.wait(10)

    port = listen(ssh_server)
    monkeypatch.setenv("PW", "not-the-password")
    host = target(port, host_key=fingerprint(key), auth="password", credential="env:PW")
    started = time.monotonic()
    try:
        with pytest.raises(PermanentConnectorError) as caught:
            SSHConnector.connect(host, known_hosts=None, auth_timeout_s=0.5, retries=2)
    finally:
        release.set()
    assert 0.5 <= time.monotonic() - started < 3
    message = str(caught.value)
    assert message.startswith(
        f"db1: root@[127.0.0.1]:{port}: no answer to authentication within 0.5 s"
    )
    assert "not-the-password" not in message and "\n" not in message
