"""Data streams carried by the OpenSSH client against real sshd hosts: same bytes, same refusals.

Each test says which carrier it wants (`HANDOVER_SSH_BULK`) and spies on the
`ssh` command lines built, so a silent fall back to paramiko cannot pass for
the OpenSSH path.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.rsa import generate_private_key

from handover.bundle.snapshot import snapshot_source
from handover.bundle.writer import BundleWriter
from handover.connectors.ssh import openssh
from handover.connectors.ssh.connector import SSHConnector
from handover.connectors.ssh.url import ssh_source_from_url
from handover.contract.perimeter import Host
from handover.errors import (
    AuthFailed,
    ConnectorError,
    HostKeyMismatch,
    PermanentConnectorError,
    TransientConnectorError,
    UsageError,
)
from handover.secrets.references import Secret
from tests.conftest import require_binary
from tests.fixtures.sshd import SshdFactory, SshdHost
from tests.integration.test_ssh_pull import CONTRACT, expected_hashes, file_hashes, keys, make_tree

pytestmark = pytest.mark.integration


def spy_ssh_argv(monkeypatch: pytest.MonkeyPatch, module: str) -> list[list[str]]:
    """The `ssh` command lines `module` starts during the test (the real function builds them)."""
    require_binary("ssh", "openssh-client")
    calls: list[list[str]] = []
    real = openssh.ssh_argv

    def spy(*args: object, **kwargs: object) -> list[str]:
        argv = real(*args, **kwargs)  # type: ignore[arg-type]
        calls.append(argv)
        return argv

    monkeypatch.setattr(f"{module}.ssh_argv", spy)
    return calls


@pytest.fixture
def launched(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The `ssh` command lines started for bulk streams during the test."""
    return spy_ssh_argv(monkeypatch, "handover.connectors.ssh.openssh_stream")


def ssh_refusing_to_negotiate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An `ssh` first on PATH that asks for a cipher no server here accepts: it fails at once."""
    real_ssh = require_binary("ssh", "openssh-client")
    wrapper_dir = tmp_path / "bin"
    wrapper_dir.mkdir()
    wrapper = wrapper_dir / "ssh"
    wrapper.write_text(f'#!/bin/sh\nexec {real_ssh} -o Ciphers=3des-cbc "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{wrapper_dir}:{os.environ['PATH']}")
    return wrapper


def connect(host: SshdHost, **overrides: object) -> SSHConnector:
    """A connector to `host`, its playbook entry changed by `overrides` (host key pinned)."""
    entry = Host.model_validate(host.host_dict(**overrides))
    return SSHConnector.from_host(entry, CONTRACT, retry_delay_s=0.05)


def private_folder(argv: list[str]) -> Path:
    [known] = [a.split("=", 1)[1] for a in argv if a.startswith("UserKnownHostsFile=")]
    return Path(known).parent


def raw_tar(conn: SSHConnector, tree: Path) -> bytes:
    source = conn.tree_source("raw", [str(tree)])
    with conn.stream_command(source.command(), f"tar of {tree}") as stream:
        return stream.read()


def test_openssh_path_gives_the_bytes_paramiko_gives(
    sshd_nosudo: SshdHost, launched: list[list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = make_tree(sshd_nosudo.data_root / f"bulk-{time.time_ns()}", sshd_nosudo)
    with connect(sshd_nosudo) as conn:
        monkeypatch.setenv("HANDOVER_SSH_BULK", "openssh")
        via_ssh = raw_tar(conn, tree)
        members = snapshot_source(conn.tree_source("bulk", [str(tree)]))
        assert len(launched) == 2
        monkeypatch.setenv("HANDOVER_SSH_BULK", "paramiko")
        via_paramiko = raw_tar(conn, tree)
        assert len(launched) == 2
    assert len(via_ssh) > 3_000_000 and via_ssh == via_paramiko
    assert file_hashes(members) == expected_hashes(tree)
    key_body = "".join(sshd_nosudo.key_path.read_text().splitlines()[1:-1])
    for argv in launched:
        assert key_body[:40] not in " ".join(argv)
        assert not private_folder(argv).exists(), "the key folder outlived its stream"


def test_dump_secrets_go_through_stdin_of_ssh(
    sshd_nosudo: SshdHost, launched: list[list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HANDOVER_SSH_BULK", "openssh")
    password = "pw with spaces & $dollar"
    source_env = {"PGPASSWORD": Secret(password.encode())}
    with connect(sshd_nosudo) as conn:
        dump = conn.dump_source("db", 'printf "%s" "$PGPASSWORD"', "db.sql", source_env)
        members = snapshot_source(dump)
    assert [(m.path, m.sha256) for m in members] == [
        ("db.sql", hashlib.sha256(password.encode()).hexdigest())
    ]
    assert len(launched) == 1 and password not in " ".join(launched[0])


def test_wrong_pin_is_refused_before_any_ssh(
    sshd_shell: SshdHost, launched: list[list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HANDOVER_SSH_BULK", "openssh")
    with pytest.raises(HostKeyMismatch, match="no data was transferred"):
        connect(sshd_shell, host_key="SHA256:" + "A" * 43)
    assert launched == []


@pytest.mark.parametrize("mode", ["openssh", "auto"])
def test_host_key_changed_after_the_control_connection_is_the_same_mismatch(
    mode: str,
    sshd_factory: SshdFactory,
    launched: list[list[str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HANDOVER_SSH_BULK", mode)
    host = sshd_factory.start(f"rekey-bulk-{mode}")
    tree = make_tree(host.data_root / "tree")
    old = host.host_key_fingerprint
    with connect(host) as conn:  # verified against the pinned key
        host.restart(new_host_key=True)  # the control session lives on; new logins see a new key
        new = host.host_key_fingerprint
        with pytest.raises(HostKeyMismatch) as by_ssh:
            snapshot_source(conn.tree_source("rekeyed", [str(tree)]))
        assert conn.run("true").exit_status == 0  # the control connection is untouched
    assert len(launched) == 1, "a host key mismatch must not fall back to paramiko"
    with pytest.raises(HostKeyMismatch) as by_paramiko:
        connect(host, host_key=old)
    assert old in str(by_ssh.value) and new in str(by_ssh.value)
    assert str(by_ssh.value) == str(by_paramiko.value)
    assert by_ssh.value.host == by_paramiko.value.host == host.name
    assert not private_folder(launched[0]).exists()


def test_remote_tar_failure_raises_with_status_and_reason(
    sshd_nosudo: SshdHost, launched: list[list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HANDOVER_SSH_BULK", "openssh")
    missing = sshd_nosudo.data_root / "no-such-dir"
    with connect(sshd_nosudo) as conn:
        with pytest.raises(ConnectorError) as caught:
            snapshot_source(conn.tree_source("x", [str(missing)]))
        assert "exit status 2" in str(caught.value) and "No such file" in str(caught.value)
        assert caught.value.host == "nosudo"
        with pytest.raises(ConnectorError, match="Permission denied"):
            snapshot_source(conn.tree_source("x", ["/root"]))
        assert conn.run("true").exit_status == 0
    assert len(launched) == 2


def test_sshd_killed_mid_stream_raises_and_leaves_no_volume(
    sshd_factory: SshdFactory,
    tmp_path: Path,
    launched: list[list[str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HANDOVER_SSH_BULK", "openssh")
    host = sshd_factory.start("crashy-bulk")
    tree = host.data_root / "large"
    tree.mkdir()
    block = os.urandom(1 << 20)
    for index in range(4):
        with open(tree / f"part-{index}.bin", "wb") as handle:
            for _ in range(32):
                handle.write(block)
    identity, signer, _ = keys(tmp_path)
    seen = 0
    killed = threading.Event()

    def kill_after_some_data(count: int) -> None:
        nonlocal seen
        seen += count
        if seen > 16 * 1024 * 1024 and not killed.is_set():
            killed.set()
            host.kill()

    writer = BundleWriter(
        tmp_path / "bundle", [identity.recipient()], signer, progress=kill_after_some_data
    )
    with connect(host) as conn, pytest.raises(TransientConnectorError) as caught:
        writer.add_volume(conn.tree_source("crashy-bulk", [str(tree)]))
    assert killed.is_set() and len(launched) == 1
    assert "connection lost" in str(caught.value) and "incomplete" in str(caught.value)
    assert caught.value.host == "crashy-bulk"
    assert list((tmp_path / "bundle").rglob("*.tar.age")) == []
    assert not private_folder(launched[0]).exists()


def test_without_ssh_on_path_paramiko_carries_the_data(
    sshd_nosudo: SshdHost,
    tmp_path: Path,
    launched: list[list[str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tree = make_tree(sshd_nosudo.data_root / f"nossh-{time.time_ns()}", sshd_nosudo)
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setenv("HANDOVER_SSH_BULK", "auto")
    with connect(sshd_nosudo) as conn:
        assert file_hashes(snapshot_source(conn.tree_source("x", [str(tree)]))) == (
            expected_hashes(tree)
        )
        monkeypatch.setenv("HANDOVER_SSH_BULK", "openssh")
        with pytest.raises(UsageError, match="no `ssh` client"):
            snapshot_source(conn.tree_source("x", [str(tree)]))
    assert launched == []


def test_ssh_failing_before_any_data_falls_back_in_auto_mode_only(
    sshd_nosudo: SshdHost,
    tmp_path: Path,
    launched: list[list[str]],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A real `ssh` that cannot negotiate with this server (a cipher the server refuses)."""
    wrapper = ssh_refusing_to_negotiate(tmp_path, monkeypatch)
    tree = make_tree(sshd_nosudo.data_root / f"fallback-{time.time_ns()}", sshd_nosudo)
    with connect(sshd_nosudo) as conn:
        monkeypatch.setenv("HANDOVER_SSH_BULK", "auto")
        with caplog.at_level(logging.WARNING, logger="handover.connectors.ssh.openssh_stream"):
            members = snapshot_source(conn.tree_source("x", [str(tree)]))
        assert file_hashes(members) == expected_hashes(tree)
        assert "paramiko carries it" in caplog.text and "no matching cipher" in caplog.text
        monkeypatch.setenv("HANDOVER_SSH_BULK", "openssh")
        with pytest.raises(PermanentConnectorError, match="ssh failed before any data"):
            snapshot_source(conn.tree_source("x", [str(tree)]))
    assert len(launched) == 2 and launched[0][0] == str(wrapper)
    assert not any(private_folder(argv).exists() for argv in launched)


def test_key_refused_to_ssh_is_auth_failed_or_paramiko_in_auto(
    sshd_factory: SshdFactory,
    launched: list[list[str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The key is revoked after the control connection logged in: new logins are refused."""
    host = sshd_factory.start("revoked-bulk")
    tree = make_tree(host.data_root / "tree")
    with connect(host) as conn:
        host.authorized_keys.write_text("")
        monkeypatch.setenv("HANDOVER_SSH_BULK", "openssh")
        with pytest.raises(AuthFailed, match="authentication refused") as caught:
            snapshot_source(conn.tree_source("x", [str(tree)]))
        assert caught.value.host == "revoked-bulk"
        monkeypatch.setenv("HANDOVER_SSH_BULK", "auto")
        members = snapshot_source(conn.tree_source("x", [str(tree)]))
    assert file_hashes(members) == expected_hashes(tree)
    assert len(launched) == 2


# -- `handover seal ssh://...`: ssh alone, paramiko only when ssh cannot ----------------------


def no_control_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any paramiko connection fail the test: the direct path must not need one."""

    def refuse(cls: type, *args: object, **kwargs: object) -> SSHConnector:
        pytest.fail("a control connection was opened")

    monkeypatch.setattr(SSHConnector, "connect", classmethod(refuse))


def test_url_source_streams_through_ssh_alone_trusting_the_pinned_key(
    sshd_shell: SshdHost,
    launched: list[list[str]],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.delenv("HANDOVER_SSH_BULK", raising=False)  # auto, the default
    tree = make_tree(sshd_shell.data_root / f"direct-{time.time_ns()}")
    known = sshd_shell.write_known_hosts(tmp_path / "known_hosts")
    # Another key type pinned for the same host (not one it has): ed25519 is the one expected.
    with known.open("a") as handle:
        handle.write(f"[127.0.0.1]:{sshd_shell.port} ssh-rsa {stranger_rsa_base64()}\n")
    no_control_connection(monkeypatch)
    url = f"ssh://root@127.0.0.1:{sshd_shell.port}{tree}"
    members = snapshot_source(ssh_source_from_url(url, known, sshd_shell.key_path, "direct"))
    assert file_hashes(members) == expected_hashes(tree)
    [argv] = launched
    assert "HostKeyAlgorithms=ssh-ed25519" in argv and "StrictHostKeyChecking=yes" in argv
    assert str(sshd_shell.key_path) not in " ".join(argv)  # a private copy, removed after
    assert not private_folder(argv).exists()


def test_url_source_with_another_key_pinned_fails_as_paramiko_says(
    sshd_shell: SshdHost,
    launched: list[list[str]],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """ssh refuses the host first; the error the user reads is the control connection's."""
    tree = make_tree(sshd_shell.data_root / f"wrong-pin-{time.time_ns()}")
    known = tmp_path / "known_hosts"
    other = openssh.PinnedHostKey("ssh-ed25519", stranger_ed25519_base64())
    known.write_text(f"[127.0.0.1]:{sshd_shell.port} {other.key_type} {other.base64}\n")
    url = f"ssh://root@127.0.0.1:{sshd_shell.port}{tree}"
    errors: dict[str, HostKeyMismatch] = {}
    for mode in ("auto", "paramiko"):
        monkeypatch.setenv("HANDOVER_SSH_BULK", mode)
        with pytest.raises(HostKeyMismatch) as raised:
            snapshot_source(ssh_source_from_url(url, known, sshd_shell.key_path, "x"))
        errors[mode] = raised.value
    assert len(launched) == 1  # tried by ssh once, in auto; never in paramiko mode
    assert str(errors["auto"]) == str(errors["paramiko"]) and other.fingerprint in str(
        errors["auto"]
    )
    assert not private_folder(launched[0]).exists()


@pytest.mark.parametrize("mode", ["auto", "paramiko"])
def test_url_source_on_an_sftp_only_account_reads_the_tree_over_sftp(
    mode: str,
    sshd_sftponly: SshdHost,
    launched: list[list[str]],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """In auto, `ssh` is refused the tar, then `ssh -s sftp` reads it: no control connection."""
    monkeypatch.setenv("HANDOVER_SSH_BULK", mode)
    sessions: list[list[str]] = []
    real = openssh.ssh_argv

    def spy(*args: object, **kwargs: object) -> list[str]:
        sessions.append(real(*args, **kwargs))  # type: ignore[arg-type]
        return sessions[-1]

    monkeypatch.setattr("handover.connectors.ssh.openssh_sftp.ssh_argv", spy)
    if mode == "auto":
        no_control_connection(monkeypatch)
    tree = make_tree(sshd_sftponly.data_root / f"url-sftp-{time.time_ns()}", sshd_sftponly)
    known = sshd_sftponly.write_known_hosts(tmp_path / "known_hosts")
    url = f"ssh://{sshd_sftponly.user}@127.0.0.1:{sshd_sftponly.port}{tree}"
    members = snapshot_source(ssh_source_from_url(url, known, sshd_sftponly.key_path, "sftp"))
    assert file_hashes(members) == expected_hashes(tree)
    if mode == "auto":
        assert len(launched) == 1 and len(sessions) == 1  # the tar refused, then SFTP
        assert sessions[0][-1] == "sftp" and "StrictHostKeyChecking=yes" in sessions[0]
        assert not any(private_folder(argv).exists() for argv in launched + sessions)
    else:
        assert launched == [] and sessions == []


def test_url_source_on_an_sftp_only_account_names_a_missing_path_as_paramiko_does(
    sshd_sftponly: SshdHost, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    known = sshd_sftponly.write_known_hosts(tmp_path / "known_hosts")
    missing = sshd_sftponly.data_root / "no-such-folder"
    url = f"ssh://{sshd_sftponly.user}@127.0.0.1:{sshd_sftponly.port}{missing}"
    errors: dict[str, str] = {}
    for mode in ("auto", "paramiko"):
        monkeypatch.setenv("HANDOVER_SSH_BULK", mode)
        with pytest.raises(ConnectorError) as raised:
            snapshot_source(ssh_source_from_url(url, known, sshd_sftponly.key_path, "x"))
        assert not isinstance(raised.value, TransientConnectorError)
        errors[mode] = str(raised.value)
    assert errors["auto"] == errors["paramiko"]
    assert "no-such-folder: cannot read over SFTP" in errors["auto"]


def stranger_ed25519_base64() -> str:
    return _public_base64(Ed25519PrivateKey.generate().public_key().public_bytes)


def stranger_rsa_base64() -> str:
    key = generate_private_key(public_exponent=65537, key_size=2048)
    return _public_base64(key.public_key().public_bytes)


def _public_base64(public_bytes: Callable[..., bytes]) -> str:
    """The base64 field of a fresh key's known_hosts line: a key no host here has."""
    line = public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return line.decode().split()[1]
