"""Unit tests of the SSH transport's pure parts: fingerprints, known_hosts, URLs, commands."""

from __future__ import annotations

import base64
import hashlib
import io
import shlex
import threading
import time
import types
from pathlib import Path

import paramiko
import pytest

from handover.connectors.ssh.known_hosts import (
    fingerprint,
    known_hosts_name,
    known_keys,
    record_host_key,
)
from handover.connectors.ssh.sftp import _connection_lost, sftp_session
from handover.connectors.ssh.sources import relative_paths
from handover.connectors.ssh.target import SSHTarget, load_private_key, resolve_credentials
from handover.connectors.ssh.trust import PinnedFingerprintPolicy
from handover.connectors.ssh.url import ssh_source_from_url
from handover.errors import (
    HostKeyMismatch,
    KeyFormatError,
    TransientConnectorError,
    UsageError,
)
from handover.sshkeys import normalize_fingerprint


def new_key() -> paramiko.Ed25519Key:
    """paramiko cannot generate ed25519 keys; cryptography can."""
    return paramiko.Ed25519Key.from_private_key(io.StringIO(_new_key_pem()))


@pytest.fixture(scope="module")
def key() -> paramiko.Ed25519Key:
    return new_key()


def test_fingerprint_matches_ssh_keygen_format(key: paramiko.Ed25519Key) -> None:
    expected = base64.b64encode(hashlib.sha256(key.asbytes()).digest()).decode().rstrip("=")
    assert fingerprint(key) == "SHA256:" + expected
    assert normalize_fingerprint(expected) == fingerprint(key)
    assert normalize_fingerprint(expected + "=") == fingerprint(key)


@pytest.mark.parametrize("bad", ["MD5:aa:bb:cc", "SHA256:short", "SHA256:!!!!", ""])
def test_normalize_fingerprint_rejects_garbage(bad: str) -> None:
    with pytest.raises(UsageError):
        normalize_fingerprint(bad)


def test_known_hosts_name_uses_brackets_off_port_22() -> None:
    assert known_hosts_name("db01", 22) == "db01"
    assert known_hosts_name("127.0.0.1", 2222) == "[127.0.0.1]:2222"


def test_record_host_key_appends_once_and_refuses_a_different_key(
    tmp_path: Path, key: paramiko.Ed25519Key
) -> None:
    path = tmp_path / "known_hosts"
    path.write_text("# provider hosts\nother.example ssh-ed25519 " + key.get_base64())  # no \n
    assert record_host_key(path, "127.0.0.1", 2222, key) == fingerprint(key)
    assert record_host_key(path, "127.0.0.1", 2222, key) == fingerprint(key)
    lines = path.read_text().splitlines()
    assert lines[0] == "# provider hosts" and len(lines) == 3
    assert known_keys(path, "127.0.0.1", 2222)["ssh-ed25519"] == key
    other = new_key()
    with pytest.raises(HostKeyMismatch) as caught:
        record_host_key(path, "127.0.0.1", 2222, other)
    assert fingerprint(key) in str(caught.value) and fingerprint(other) in str(caught.value)


def test_record_host_key_is_safe_across_threads(tmp_path: Path) -> None:
    keys = [new_key() for _ in range(8)]
    path = tmp_path / "known_hosts"
    threads = [
        threading.Thread(target=record_host_key, args=(path, "10.0.0.1", 2200 + i, k))
        for i, k in enumerate(keys)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(path.read_text().splitlines()) == 8


def test_pinned_policy_accepts_only_the_pin(key: paramiko.Ed25519Key) -> None:
    policy = PinnedFingerprintPolicy("web01", fingerprint(key), None, "10.0.0.1", 22)
    policy.missing_host_key(paramiko.SSHClient(), "10.0.0.1", key)
    wrong = PinnedFingerprintPolicy("web01", "SHA256:" + "A" * 43, None, "10.0.0.1", 22)
    with pytest.raises(HostKeyMismatch) as caught:
        wrong.missing_host_key(paramiko.SSHClient(), "10.0.0.1", key)
    assert "SHA256:" + "A" * 43 in str(caught.value) and fingerprint(key) in str(caught.value)
    assert caught.value.host == "web01"


def test_private_key_errors_never_show_the_key(tmp_path: Path) -> None:
    secret_text = "-----BEGIN OPENSSH PRIVATE KEY-----\nc2VjcmV0LWJ5dGVz\n-----END"
    with pytest.raises(KeyFormatError) as caught:
        load_private_key(secret_text.encode(), "credential env:X", "web01")
    assert "c2VjcmV0" not in str(caught.value) and "env:X" in str(caught.value)


def test_key_file_is_read_at_connect_time(tmp_path: Path) -> None:
    target = SSHTarget(name="h", address="h", key_file=tmp_path / "missing")
    with pytest.raises(KeyFormatError, match="cannot read SSH key"):
        resolve_credentials(target)
    (tmp_path / "missing").write_text(_new_key_pem())
    pkey, password = resolve_credentials(target)
    assert isinstance(pkey, paramiko.Ed25519Key) and password is None


def test_password_credential_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PW", "s3cret\n")
    target = SSHTarget(name="h", address="h", credential="env:PW", auth="password")
    assert resolve_credentials(target) == (None, "s3cret")
    with pytest.raises(UsageError, match="no credential"):
        resolve_credentials(SSHTarget(name="h", address="h"))


def test_relative_paths_are_quoted_operands_under_root() -> None:
    paths = ["/var/www", "/srv/it's here/", "/srv/$HOME", "/var/www"]
    assert relative_paths(paths, "h") == ["var/www", "srv/it's here", "srv/$HOME"]
    quoted = " ".join(shlex.quote(p) for p in relative_paths(paths, "h"))
    assert shlex.split(quoted) == ["var/www", "srv/it's here", "srv/$HOME"]
    with pytest.raises(UsageError, match="absolute"):
        relative_paths(["var/www"], "h")
    with pytest.raises(UsageError, match=r"'\.\.'"):
        relative_paths(["/var/../etc"], "h")


@pytest.mark.parametrize(
    "url",
    [
        "ssh://host/path",  # no user
        "ssh://u@host",  # no path
        "ssh://u@host/",  # root alone
        "ssh://u:pw@host/p",  # password in URL
        "ssh://u@host:99999/p",  # bad port
        "sftp://u@host/p",
    ],
)
def test_url_errors_are_usage_errors(url: str) -> None:
    with pytest.raises(UsageError):
        ssh_source_from_url(url, None, None, "x")


def test_url_source_decodes_user_port_and_path(tmp_path: Path) -> None:
    source = ssh_source_from_url(
        "ssh://ops@db01:2222/srv/my%20data", tmp_path / "kh", tmp_path / "k", "db01-data"
    )
    assert source.label == "db01-data"
    assert source.origin == "ssh://ops@db01:2222/srv/my data"


def _new_key_pem() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return (
        Ed25519PrivateKey.generate()
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
        .decode()
    )


def test_chunk_buffer_behaves_like_paramikos_array_in_a_buffered_pipe() -> None:
    import random

    from paramiko.buffered_pipe import BufferedPipe

    from handover.connectors.ssh.transport import _ChunkBuffer

    rng = random.Random(4)
    reference, ours = BufferedPipe(), BufferedPipe()
    ours._buffer = _ChunkBuffer()  # type: ignore[attr-defined]
    fed = bytearray()
    got_ref, got_ours = bytearray(), bytearray()
    for _ in range(2000):
        if rng.random() < 0.6:
            data = rng.randbytes(rng.choice([0, 1, 7, 512, 32768, 40000]))
            reference.feed(data)
            ours.feed(data)
            fed += data
        else:
            size = rng.choice([1, 100, 32768, 1 << 20])
            if len(reference):
                got_ref += reference.read(size, 0)
                got_ours += ours.read(size, 0)
        assert len(reference) == len(ours)
    got_ref += reference.empty()
    got_ours += ours.empty()
    assert got_ours == got_ref == fed


class _DeadSftp:
    """An SFTP session whose host is gone: closing it fails as paramiko's does then."""

    def __init__(self, error: BaseException) -> None:
        self.error = error
        self.closed = 0

    def close(self) -> None:
        self.closed += 1
        raise self.error


@pytest.mark.parametrize(
    "error", [EOFError(), OSError(32, "Broken pipe"), paramiko.SSHException("dropped")]
)
def test_a_dead_sessions_close_never_hides_the_error_that_ended_the_transfer(
    error: BaseException,
) -> None:
    """CI saw a bare EOFError from the close replace "connection lost during SFTP read"."""
    dead = _DeadSftp(error)
    with (
        pytest.raises(TransientConnectorError, match="connection lost"),
        sftp_session(dead) as sftp,  # type: ignore[arg-type]
    ):
        assert sftp is dead
        raise TransientConnectorError("connection lost during SFTP read of /x", host="h")
    assert dead.closed == 1
    with sftp_session(dead):  # type: ignore[arg-type]
        pass  # all answered: a failed close loses nothing
    assert dead.closed == 2


def test_an_sftp_sessions_close_lets_other_errors_through() -> None:
    with (
        pytest.raises(RuntimeError, match="a bug"),
        sftp_session(_DeadSftp(RuntimeError("a bug"))),  # type: ignore[arg-type]
    ):
        pass


class _Channel:
    def __init__(self, closes_after_s: float | None) -> None:
        self._closes_at = None if closes_after_s is None else time.monotonic() + closes_after_s
        self.eof_received = False

    @property
    def closed(self) -> bool:
        return self._closes_at is not None and time.monotonic() >= self._closes_at

    def get_transport(self) -> object:
        return types.SimpleNamespace(is_active=lambda: True)


class _Session:
    def __init__(self, channel: _Channel) -> None:
        self.channel = channel

    def get_channel(self) -> _Channel:
        return self.channel


def test_a_read_that_failed_waits_for_a_dead_connection_to_show() -> None:
    """A read can fail before paramiko sees the socket close (CI)."""
    dying = _Session(_Channel(closes_after_s=0.15))
    assert _connection_lost(dying, settle_s=2.0)  # type: ignore[arg-type]
    alive = _Session(_Channel(closes_after_s=None))
    started = time.monotonic()
    assert not _connection_lost(alive, settle_s=0.1)  # type: ignore[arg-type]
    assert time.monotonic() - started >= 0.1
