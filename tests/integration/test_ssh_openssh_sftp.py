"""SFTP sessions of SFTP-only accounts carried by the OpenSSH client: same bytes, same refusals.

As in test_ssh_openssh.py, each test sets its carrier (`HANDOVER_SSH_BULK`)
and spies on the `ssh` command lines, so a silent fall back to paramiko
cannot pass for the OpenSSH path.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from handover.bundle.snapshot import snapshot_source
from handover.bundle.writer import BundleWriter
from handover.connectors.ssh.openssh_sftp import CarriedSftpClient
from handover.errors import HostKeyMismatch, PermanentConnectorError, TransientConnectorError
from tests.fixtures.sshd import SFTP_USER, SshdFactory, SshdHost
from tests.integration.test_ssh_openssh import (
    connect,
    private_folder,
    spy_ssh_argv,
    ssh_refusing_to_negotiate,
)
from tests.integration.test_ssh_pull import (
    expected_hashes,
    file_hashes,
    keys,
    make_large_files,
    make_tree,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def launched(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The `ssh` command lines started for SFTP sessions during the test."""
    return spy_ssh_argv(monkeypatch, "handover.connectors.ssh.openssh_sftp")


def test_sftp_session_over_ssh_gives_what_paramiko_gives(
    sshd_sftponly: SshdHost, launched: list[list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = make_tree(sshd_sftponly.data_root / f"carried-{time.time_ns()}", sshd_sftponly)
    with connect(sshd_sftponly) as conn:
        monkeypatch.setenv("HANDOVER_SSH_BULK", "openssh")
        by_ssh = snapshot_source(conn.tree_source("carried", [str(tree)]))
        assert len(launched) == 1
        monkeypatch.setenv("HANDOVER_SSH_BULK", "paramiko")
        by_paramiko = snapshot_source(conn.tree_source("carried", [str(tree)]))
        assert len(launched) == 1
    assert file_hashes(by_ssh) == file_hashes(by_paramiko) == expected_hashes(tree)
    assert [(m.path, m.type, m.size) for m in by_ssh] == [
        (m.path, m.type, m.size) for m in by_paramiko
    ]
    [argv] = launched
    assert "-s" in argv[: argv.index("--")]
    assert argv[-1] == "sftp"
    key_body = "".join(sshd_sftponly.key_path.read_text().splitlines()[1:-1])
    assert key_body[:40] not in " ".join(argv)
    assert not private_folder(argv).exists(), "the key folder outlived its session"


@pytest.mark.parametrize("mode", ["openssh", "auto"])
def test_host_key_changed_after_the_control_connection_is_refused_not_retried(
    mode: str,
    sshd_factory: SshdFactory,
    launched: list[list[str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HANDOVER_SSH_BULK", mode)
    host = sshd_factory.start(f"rekey-sftp-{mode}", user=SFTP_USER, sftp_only=True)
    tree = make_tree(host.data_root / "tree", host)
    old = host.host_key_fingerprint
    with connect(host) as conn:
        assert not conn.has_shell()
        host.restart(new_host_key=True)
        with pytest.raises(HostKeyMismatch, match="no data was transferred") as caught:
            snapshot_source(conn.tree_source("rekeyed", [str(tree)]))
    assert old in str(caught.value) and host.host_key_fingerprint in str(caught.value)
    assert len(launched) == 1, "a host key mismatch must not fall back to paramiko"
    assert not private_folder(launched[0]).exists()


def test_ssh_failing_before_the_session_falls_back_in_auto_mode_only(
    sshd_sftponly: SshdHost,
    tmp_path: Path,
    launched: list[list[str]],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A real `ssh` that cannot negotiate with this server (a cipher the server refuses)."""
    wrapper = ssh_refusing_to_negotiate(tmp_path, monkeypatch)
    tree = make_tree(sshd_sftponly.data_root / f"fallback-{time.time_ns()}", sshd_sftponly)
    with connect(sshd_sftponly) as conn:
        monkeypatch.setenv("HANDOVER_SSH_BULK", "auto")
        with caplog.at_level(logging.WARNING, logger="handover.connectors.ssh.openssh_sftp"):
            members = snapshot_source(conn.tree_source("x", [str(tree)]))
        assert file_hashes(members) == expected_hashes(tree)
        assert "paramiko carries it" in caplog.text and "no matching cipher" in caplog.text
        monkeypatch.setenv("HANDOVER_SSH_BULK", "openssh")
        with pytest.raises(PermanentConnectorError, match="ssh failed before any data"):
            snapshot_source(conn.tree_source("x", [str(tree)]))
    assert len(launched) == 2 and launched[0][0] == str(wrapper)
    assert not any(private_folder(argv).exists() for argv in launched)


@pytest.mark.parametrize("mode", ["openssh", "paramiko"])
def test_sftp_host_killed_mid_transfer_is_a_lost_connection_on_both_carriers(
    mode: str,
    sshd_factory: SshdFactory,
    tmp_path: Path,
    launched: list[list[str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HANDOVER_SSH_BULK", mode)
    host = sshd_factory.start(f"crashy-sftp-{mode}", user=SFTP_USER, sftp_only=True)
    tree = make_large_files(host.data_root / "large", 2, host)
    identity, signer, _ = keys(tmp_path)
    seen = 0
    killed = threading.Event()

    def kill_after_some_data(count: int) -> None:
        nonlocal seen
        seen += count
        if seen > 16 * 1024 * 1024 and not killed.is_set():
            killed.set()
            host.kill()

    before = set(threading.enumerate())
    writer = BundleWriter(
        tmp_path / "bundle", [identity.recipient()], signer, progress=kill_after_some_data
    )
    with connect(host) as conn, pytest.raises(TransientConnectorError) as caught:
        writer.add_volume(conn.tree_source(f"crashy-sftp-{mode}", [str(tree)]))
    assert killed.is_set()
    assert "connection lost" in str(caught.value) and "incomplete" in str(caught.value)
    assert list((tmp_path / "bundle").rglob("*.tar.age")) == []
    assert len(launched) == (1 if mode == "openssh" else 0)
    assert not any(private_folder(argv).exists() for argv in launched)
    lingering = [t for t in set(threading.enumerate()) - before if (t.join(2), t.is_alive())[1]]
    assert lingering == [], "no reader thread outlives the lost connection"


def _owner(host: SshdHost) -> tuple[int, int]:
    import pwd

    entry = pwd.getpwnam(host.user)
    return entry.pw_uid, entry.pw_gid


def _session_processes(host: SshdHost) -> list[int]:
    """The per-connection processes under the sshd daemon of `host` (where SFTP is served)."""
    assert host.process is not None
    found: list[int] = []
    pending = [host.process.pid]
    while pending:
        parent = pending.pop()
        for task in Path(f"/proc/{parent}/task").iterdir():
            children = (task / "children").read_text().split()
            found += [int(pid) for pid in children]
            pending += [int(pid) for pid in children]
    return found


@pytest.mark.parametrize("mode", ["openssh", "paramiko"])
def test_a_stuck_sftp_server_ends_the_read_after_the_idle_timeout(
    mode: str,
    sshd_factory: SshdFactory,
    tmp_path: Path,
    launched: list[list[str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The host's session processes are stopped (SIGSTOP): the connection lives, nothing answers."""
    monkeypatch.setenv("HANDOVER_SSH_BULK", mode)
    monkeypatch.setattr("handover.connectors.ssh.openssh_sftp.IDLE_TIMEOUT_S", 1.0)
    monkeypatch.setattr("handover.connectors.ssh.connector.IDLE_TIMEOUT_S", 1.0)
    host = sshd_factory.start(f"stuck-sftp-{mode}", user=SFTP_USER, sftp_only=True)
    tree = make_large_files(host.data_root / "large", 1, host)
    identity, signer, _ = keys(tmp_path)
    stopped: list[int] = []

    def stop_after_some_data(count: int) -> None:
        if not stopped and count:
            stopped.extend(_session_processes(host))
            for pid in stopped:
                os.kill(pid, signal.SIGSTOP)

    writer = BundleWriter(
        tmp_path / "bundle", [identity.recipient()], signer, progress=stop_after_some_data
    )
    started = time.monotonic()
    try:
        with connect(host) as conn, pytest.raises(TransientConnectorError) as caught:
            writer.add_volume(conn.tree_source(f"stuck-sftp-{mode}", [str(tree)]))
    finally:
        for pid in stopped:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
    assert stopped, "the session processes were found and stopped"
    assert "stopped answering" in str(caught.value) and "incomplete" in str(caught.value)
    assert time.monotonic() - started < 20
    assert list((tmp_path / "bundle").rglob("*.tar.age")) == []
    assert len(launched) == (1 if mode == "openssh" else 0)


def test_a_file_collected_after_its_session_closed_waits_on_nothing(
    sshd_sftponly: SshdHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    """paramiko's `__del__` sends a close; the session's fd number may belong to another file.

    CI once spent 600 s in a test that passed: two file objects of earlier tests' failed
    sessions, collected later, each polled a reused fd for 300 s before giving up.
    """
    monkeypatch.setenv("HANDOVER_SSH_BULK", "openssh")
    monkeypatch.setattr("handover.connectors.ssh.openssh_sftp.IDLE_TIMEOUT_S", 5.0)
    path = sshd_sftponly.data_root / f"collected-{time.time_ns()}.bin"
    path.write_bytes(b"x" * 1000)
    os.chown(path, *_owner(sshd_sftponly))
    with connect(sshd_sftponly) as conn, contextlib.ExitStack() as stack:
        sftp = conn.data_sftp(stack)
        assert isinstance(sftp, CarriedSftpClient)
        handle = sftp.open(str(path), "rb")
        number = sftp.sock._sock.fileno()  # type: ignore[attr-defined]
    pipes = [os.pipe()]
    while number in pipes[-1]:  # the pipe's own ends must not take the number
        pipes.append(os.pipe())
    read_end, _ = pipes[-1]
    os.dup2(read_end, number)  # the closed socket's number: a pipe's read end, never writable
    try:
        started = time.monotonic()
        handle._close(async_=True)  # type: ignore[attr-defined]  # what __del__ does
        assert time.monotonic() - started < 1.0
    finally:
        for fd in {number, *(end for pair in pipes for end in pair)}:
            os.close(fd)
