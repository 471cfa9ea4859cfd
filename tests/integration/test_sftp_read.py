"""Pipelined SFTP reads against a real OpenSSH sftp-server: order, short answers, shrinking files.

`read_pipelined` replaces paramiko's prefetch thread (see its module), so
these tests also check what that thread got wrong: no thread is left
behind, and a read that fails stops asking.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import paramiko
import pytest
from paramiko.sftp import CMD_READ

from handover.bundle.snapshot import snapshot_source
from handover.connectors.ssh.sftp import LOSS_SETTLE_S, sftp_session
from handover.connectors.ssh.sftp_read import (
    REQUEST_BYTES,
    close_without_waiting,
    read_pipelined,
    read_small_files,
)
from handover.errors import ConnectorError, TransientConnectorError
from tests.fixtures.sshd import SFTP_USER, SshdFactory, SshdHost
from tests.integration.test_ssh_pull import connect

pytestmark = pytest.mark.integration

# OpenSSH's sftp-server answers at most 255 KiB per read (SFTP_MAX_READ_LENGTH).
SERVER_MAX_READ = 256 * 1024 - 1024


@pytest.fixture(scope="module")
def sample(sshd_sftponly: SshdHost) -> Iterator[tuple[Path, bytes]]:
    """A file of 3 MiB + 12345 bytes (no request size divides it), owned by the SFTP user."""
    folder = sshd_sftponly.data_root / f"sftp-read-{time.time_ns()}"
    folder.mkdir()
    data = os.urandom(3 * 1024 * 1024 + 12345)
    path = folder / "sample.bin"
    path.write_bytes(data)
    subprocess.run(["chown", "-R", f"{sshd_sftponly.user}:", str(folder)], check=True)
    yield path, data
    path.unlink()
    folder.rmdir()


def lingering(before: set[threading.Thread]) -> list[threading.Thread]:
    """Threads started since `before` that are still alive after 2 s (paramiko's prefetch was)."""
    return [t for t in set(threading.enumerate()) - before if (t.join(2), t.is_alive())[1]]


def read_with(host: SshdHost, path: Path, size: int, **options: int) -> tuple[bytes, list[int]]:
    """The bytes read over paramiko's own SFTP session, and the size of each write."""
    writes: list[bytes] = []
    with connect(host) as conn, sftp_session(conn.sftp()) as sftp:
        handle = sftp.open(str(path), "rb")
        try:
            assert read_pipelined(sftp, handle, size, writes.append, **options) == size
        finally:
            close_without_waiting(handle)
    return b"".join(writes), [len(w) for w in writes]


def test_a_file_arrives_whole_and_in_order(
    sshd_sftponly: SshdHost, sample: tuple[Path, bytes]
) -> None:
    path, data = sample
    before = set(threading.enumerate())
    got, sizes = read_with(sshd_sftponly, path, len(data), request_bytes=65536, window=7)
    assert hashlib.sha256(got).hexdigest() == hashlib.sha256(data).hexdigest()
    assert max(sizes) == 65536 and len(sizes) == -(-len(data) // 65536)
    assert lingering(before) == []


def test_answers_shorter_than_asked_are_completed_and_requests_shrink(
    sshd_sftponly: SshdHost, sample: tuple[Path, bytes]
) -> None:
    """1 MiB asked, 255 KiB answered: the rest is asked again, then requests fit the server."""
    path, data = sample
    asked: list[tuple[int, int]] = []  # (offset, length) of every read request, in order
    writes: list[bytes] = []
    with connect(sshd_sftponly) as conn, sftp_session(conn.sftp()) as sftp:
        send = sftp._async_request  # type: ignore[attr-defined]

        def spy(fileobj: object, kind: int, *args: object) -> int:
            if kind == CMD_READ:
                asked.append((int(args[1]), int(args[2])))  # type: ignore[call-overload]
            return int(send(fileobj, kind, *args))

        sftp._async_request = spy  # type: ignore[attr-defined]
        handle = sftp.open(str(path), "rb")
        try:
            read_pipelined(sftp, handle, len(data), writes.append, request_bytes=1 << 20, window=2)
        finally:
            close_without_waiting(handle)
    assert b"".join(writes) == data
    first, second, *rest = asked
    assert (first, second) == ((0, 1 << 20), (1 << 20, 1 << 20))
    assert rest[0] == (SERVER_MAX_READ, SERVER_MAX_READ)  # the rest of the first, in pieces
    assert max(length for _, length in rest) == SERVER_MAX_READ
    assert max(len(w) for w in writes) == SERVER_MAX_READ


def test_a_size_beyond_the_end_raises_eof_and_nothing_is_padded(
    sshd_sftponly: SshdHost, sample: tuple[Path, bytes]
) -> None:
    """As if the file shrank after it was listed: EOFError, after exactly the bytes it has."""
    path, data = sample
    writes: list[bytes] = []
    with connect(sshd_sftponly) as conn, sftp_session(conn.sftp()) as sftp:
        handle = sftp.open(str(path), "rb")
        try:
            with pytest.raises(EOFError):
                read_pipelined(sftp, handle, len(data) + 100_000, writes.append)
        finally:
            close_without_waiting(handle)
        # the session still answers: the abandoned requests did not jam it
        assert sftp.stat(str(path)).st_size == len(data)
    assert b"".join(writes) == data


def test_a_killed_host_stops_the_read_and_leaves_no_thread(sshd_factory: SshdFactory) -> None:
    host = sshd_factory.start("sftp-read-killed", user=SFTP_USER, sftp_only=True)
    path = host.data_root / "large.bin"
    path.write_bytes(os.urandom(32 << 20))
    subprocess.run(["chown", f"{host.user}:", str(path)], check=True)
    before = set(threading.enumerate())
    seen = 0

    def kill_after_some_data(data: bytes) -> None:
        nonlocal seen
        seen += len(data)
        if seen > 4 << 20 and host.process is not None:
            host.kill()

    with (
        connect(host) as conn,
        sftp_session(conn.sftp()) as sftp,
        pytest.raises((EOFError, OSError, paramiko.SSHException)),
    ):
        handle = sftp.open(str(path), "rb")
        try:
            read_pipelined(sftp, handle, 32 << 20, kill_after_some_data)
        finally:
            close_without_waiting(handle)
    assert 4 << 20 < seen < 32 << 20
    assert lingering(before) == []  # paramiko's prefetch thread would still be looping


@pytest.fixture(scope="module")
def small_files(sshd_sftponly: SshdHost) -> Iterator[dict[str, bytes]]:
    """40 files of 0 bytes to exactly REQUEST_BYTES, owned by the SFTP user: path -> bytes."""
    folder = sshd_sftponly.data_root / f"small-{time.time_ns()}"
    folder.mkdir()
    files: dict[str, bytes] = {}
    for index in range(40):
        size = [0, 1, REQUEST_BYTES, REQUEST_BYTES - 1][index % 4] if index < 8 else index * 997
        path = folder / f"f{index:02d}"
        path.write_bytes(os.urandom(size))
        files[str(path)] = path.read_bytes()
    subprocess.run(["chown", "-R", f"{sshd_sftponly.user}:", str(folder)], check=True)
    yield files
    shutil.rmtree(folder)


def test_small_files_arrive_in_order_with_their_bytes(
    sshd_sftponly: SshdHost, small_files: dict[str, bytes]
) -> None:
    listed = [(path, len(data)) for path, data in small_files.items()]
    before = set(threading.enumerate())
    with connect(sshd_sftponly) as conn, sftp_session(conn.sftp()) as sftp:
        got = list(read_small_files(sftp, listed, window=5))
        assert sftp.stat(listed[0][0]).st_size == 0  # the session still answers
    assert got == list(small_files.items())
    assert lingering(before) == []


def test_a_small_file_that_fails_is_named_at_its_turn_and_the_others_still_come(
    sshd_sftponly: SshdHost, small_files: dict[str, bytes], tmp_path: Path
) -> None:
    """Missing, unreadable, shorter than listed: each file's own error, in its place."""
    paths = list(small_files)
    locked = Path(paths[0]).parent / "locked"
    locked.write_bytes(b"root only")
    locked.chmod(0o600)  # owned by root: the SFTP user may not open it
    listed = [
        (paths[8], len(small_files[paths[8]])),
        (str(locked), 9),
        (paths[9], len(small_files[paths[9]])),
        (str(Path(paths[0]).parent / "no-such-file"), 10),
        (paths[10], len(small_files[paths[10]]) + 5),  # listed longer than it is
        (paths[11], len(small_files[paths[11]])),
        (paths[12], 3 * SERVER_MAX_READ),  # asked more than one answer holds: completed
    ]
    big = Path(paths[12])
    data = os.urandom(3 * SERVER_MAX_READ)
    big.write_bytes(data)
    try:
        with connect(sshd_sftponly) as conn, sftp_session(conn.sftp()) as sftp:
            got = dict(read_small_files(sftp, listed, window=3))
    finally:
        big.write_bytes(small_files[paths[12]])
        locked.unlink()
    assert list(got) == [path for path, _ in listed]
    assert got[paths[8]] == small_files[paths[8]] and got[paths[9]] == small_files[paths[9]]
    assert got[paths[11]] == small_files[paths[11]] and got[paths[12]] == data
    assert isinstance(got[str(locked)], PermissionError)
    assert isinstance(got[str(Path(paths[0]).parent / "no-such-file")], FileNotFoundError)
    assert isinstance(got[paths[10]], EOFError)


def test_an_unreadable_small_file_fails_its_volume_naming_it(
    sshd_sftponly: SshdHost, small_files: dict[str, bytes]
) -> None:
    folder = Path(next(iter(small_files))).parent
    locked = folder / "f05-locked"
    locked.write_bytes(b"root only")
    locked.chmod(0o600)
    try:
        started = time.monotonic()
        with (
            connect(sshd_sftponly) as conn,
            pytest.raises(ConnectorError, match="f05-locked: cannot read over SFTP") as caught,
        ):
            snapshot_source(conn.tree_source("locked", [str(folder)]))
    finally:
        locked.unlink()
    assert not isinstance(caught.value, TransientConnectorError)
    assert time.monotonic() - started < LOSS_SETTLE_S  # the server answered: no waiting for loss
