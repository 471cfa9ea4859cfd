"""A tar stream built from SFTP reads, for accounts that may not run commands.

`ForceCommand internal-sftp` accounts cannot run `tar`, so handover walks the
tree over SFTP and writes the tar itself: the same member names (relative to
`/`), order (sorted by name, as `tar --sort=name`), types (files, folders,
symlinks; sockets, FIFOs and devices are skipped, as they hold no data) and
bytes as the remote tar would give. Small files of a folder are read
together (`sftp_read.read_small_files`), but each folder still costs a
round trip; where the account may run commands, a remote `tar` is used.

A producer thread writes the stream into a pipe that the consumer reads, so
memory stays bounded: each file is read with a window of pipelined requests
(`sftp_read.read_pipelined`), never whole. The SFTP session is the
caller's (it opens and closes it): this module only walks.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import os
import posixpath
import stat
import tarfile
import threading
import time
from collections.abc import Iterator, Sequence
from typing import BinaryIO

import paramiko

from handover.connectors.ssh.openssh_sftp import CarriedSftpClient
from handover.connectors.ssh.sftp_read import (
    REQUEST_BYTES,
    close_without_waiting,
    forget,
    read_pipelined,
    read_small_files,
)
from handover.connectors.ssh.target import SSHTarget
from handover.errors import ConnectorError, TransientConnectorError

__all__ = ["open_sftp_tar", "sftp_session"]

# How long a failed read waits for a dead connection to show (see `_connection_lost`).
LOSS_SETTLE_S = 2.0

PIPE_BYTES = 1024 * 1024
_F_SETPIPE_SZ = 1031
_BLOCK = tarfile.BLOCKSIZE
_SFTP_ERRORS = (OSError, EOFError, paramiko.SSHException)
_RECORD = tarfile.RECORDSIZE


class _Failure(Exception):
    """A producer failure carried to the consumer's thread."""


class _ConsumerGone(Exception):
    """The reader of the tar stream closed its end: it has its own error to report.

    Kept apart from a BrokenPipeError of the SFTP session itself, which over
    the `ssh` carrier means the connection is lost.
    """


def _tar_info(path: str, attrs: paramiko.SFTPAttributes) -> tarfile.TarInfo:
    """The tar header fields SFTP gives for `path`: name relative to `/`, mode, mtime, owner."""
    info = tarfile.TarInfo(path.lstrip("/") or ".")
    info.mode = stat.S_IMODE(attrs.st_mode or 0)
    info.mtime = int(attrs.st_mtime or 0)
    info.uid = attrs.st_uid or 0
    info.gid = attrs.st_gid or 0
    return info


class _SftpTarWriter:
    """Write a POSIX (pax) tar of `paths` read over SFTP into `out`."""

    def __init__(self, sftp: paramiko.SFTPClient, out: BinaryIO, host: str) -> None:
        self.sftp = sftp
        self.out = out
        self.host = host
        self.written = 0

    def _write(self, data: bytes | memoryview) -> None:
        try:
            self.out.write(data)
        except BrokenPipeError as exc:
            raise _ConsumerGone from exc
        self.written += len(data)

    def _failure(self, path: str, verb: str, exc: Exception) -> ConnectorError:
        """The error for a failed SFTP request on `path`: a lost connection, or `path`'s own."""
        if isinstance(exc, TimeoutError):  # the session's idle timeout: the server is stuck
            return TransientConnectorError(
                f"{path}: the SFTP server stopped answering; the stream is incomplete",
                host=self.host,
            )
        # the server's own answer (ENOENT, EACCES) carries an errno; a dead session does not,
        # or is a ConnectionError (a broken pipe to `ssh`)
        answered = (
            isinstance(exc, OSError)
            and not isinstance(exc, ConnectionError)
            and exc.errno is not None
        )
        if not answered and _connection_lost(self.sftp):
            return TransientConnectorError(
                f"connection lost during SFTP read of {path}; the stream is incomplete",
                host=self.host,
            )
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        return ConnectorError(f"{path}: cannot {verb} over SFTP ({reason})", host=self.host)

    def write_tree(self, paths: Sequence[str]) -> None:
        for path in paths:
            try:
                attrs = self.sftp.lstat(path)
            except _SFTP_ERRORS as exc:
                raise self._failure(path, "read", exc) from exc
            self._add(path, attrs)
        self._write(b"\0" * (2 * _BLOCK))
        self._write(b"\0" * (-self.written % _RECORD))

    def _add(self, path: str, attrs: paramiko.SFTPAttributes) -> None:
        mode = attrs.st_mode or 0
        info = _tar_info(path, attrs)
        if stat.S_ISDIR(mode):
            info.type = tarfile.DIRTYPE
            self._write(info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"))
            try:
                entries = self.sftp.listdir_attr(path)
            except _SFTP_ERRORS as exc:
                raise self._failure(path, "list", exc) from exc
            small: list[tuple[str, paramiko.SFTPAttributes]] = []
            for entry in sorted(
                entries, key=lambda e: e.filename.encode("utf-8", "surrogateescape")
            ):
                child = posixpath.join(path, entry.filename)
                if stat.S_ISREG(entry.st_mode or 0) and (entry.st_size or 0) <= REQUEST_BYTES:
                    small.append((child, entry))  # read together, in this order
                    continue
                self._add_small_files(small)
                small = []
                self._add(child, entry)
            self._add_small_files(small)
        elif stat.S_ISLNK(mode):
            info.type = tarfile.SYMTYPE
            try:
                info.linkname = self.sftp.readlink(path) or ""
            except _SFTP_ERRORS as exc:
                raise self._failure(path, "read link", exc) from exc
            self._write(info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"))
        elif stat.S_ISREG(mode):
            info.size = attrs.st_size or 0
            self._write(info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"))
            self._copy_file(path, info.size)
            self._write(b"\0" * (-info.size % _BLOCK))

    def _add_small_files(self, files: list[tuple[str, paramiko.SFTPAttributes]]) -> None:
        """Add a run of small regular files, read with their opens and reads in flight together."""
        if not files:
            return
        listed = [(path, attrs.st_size or 0) for path, attrs in files]
        attrs_of = dict(files)
        path = files[0][0]
        try:
            for path, result in read_small_files(self.sftp, listed):
                if isinstance(result, EOFError):
                    raise ConnectorError(
                        f"{path}: file changed size while read over SFTP", host=self.host
                    ) from result
                if isinstance(result, Exception):
                    raise self._failure(path, "read", result) from result
                info = _tar_info(path, attrs_of[path])
                info.size = len(result)
                self._write(info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"))
                self._write(result)
                self._write(b"\0" * (-info.size % _BLOCK))
        except (paramiko.SSHException, OSError) as exc:
            raise self._failure(path, "read", exc) from exc

    def _copy_file(self, path: str, size: int) -> None:
        """Copy exactly `size` bytes; a file that shrank meanwhile is an error, never padding."""
        try:
            handle = self.sftp.open(path, "rb")
            try:
                read_pipelined(self.sftp, handle, size, self._write)
            except BaseException:
                forget(handle)  # no close sent after a failure: the session ends anyway
                raise
            close_without_waiting(handle)
        except EOFError as exc:
            if _connection_lost(self.sftp):
                raise TransientConnectorError(
                    f"connection lost during SFTP read of {path}; the stream is incomplete",
                    host=self.host,
                ) from exc
            raise ConnectorError(
                f"{path}: file changed size while read over SFTP", host=self.host
            ) from exc
        except (paramiko.SSHException, paramiko.SFTPError, OSError) as exc:
            raise self._failure(path, "read", exc) from exc


@contextlib.contextmanager
def sftp_session(sftp: paramiko.SFTPClient) -> Iterator[paramiko.SFTPClient]:
    """`sftp`, closed on leaving, where a close that fails is not an error of its own.

    Why: when the host dies mid-transfer, the error that says so ("connection
    lost during SFTP read of ...") is raised inside the block; closing the
    session then writes to the dead transport, and paramiko raises a bare
    EOFError that replaced it (seen in CI). Leaving normally, everything
    asked of the session has already been answered, so a failed close loses
    nothing either.
    """
    try:
        yield sftp
    finally:
        with contextlib.suppress(EOFError, OSError, paramiko.SSHException):
            sftp.close()


def _gone(sftp: paramiko.SFTPClient) -> bool:
    if isinstance(sftp, CarriedSftpClient):
        return sftp.carrier_gone()
    channel = sftp.get_channel()
    if channel is None or channel.closed or channel.eof_received:
        return True
    transport = channel.get_transport()
    return transport is None or not transport.is_active()


def _connection_lost(sftp: paramiko.SFTPClient, settle_s: float = LOSS_SETTLE_S) -> bool:
    """True when the SSH connection under the SFTP session is gone (a retry may help).

    Asked once a read has failed or come back short. The SFTP channel's end
    is seen first: paramiko says "Server connection dropped" on EOF while the
    transport may still look active for a moment, so a channel at EOF or
    closed counts as lost too. And a read can fail before paramiko's
    transport thread has seen the socket close at all (the read comes back
    empty): CI reported a host killed mid-transfer as "file changed size". So the answer waits up to
    `settle_s` for the connection to show its loss; a live connection only
    delays the error it reports.
    """
    deadline = time.monotonic() + settle_s
    while not _gone(sftp):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True


class _Producer:
    """Runs the writer on a thread into a pipe; remembers how it ended."""

    def __init__(self, sftp: paramiko.SFTPClient, paths: Sequence[str], target: SSHTarget) -> None:
        self.target = target
        self.paths = list(paths)
        self.sftp = sftp
        read_fd, write_fd = os.pipe()
        with contextlib.suppress(OSError):
            fcntl.fcntl(write_fd, _F_SETPIPE_SZ, PIPE_BYTES)
        self.reader = io.BufferedReader(io.FileIO(read_fd, "rb"), buffer_size=PIPE_BYTES)
        self._writer = os.fdopen(write_fd, "wb", buffering=PIPE_BYTES)
        self.error: BaseException | None = None
        self.finished = False
        self._thread = threading.Thread(target=self._run, name="sftp-tar", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            with self._writer:
                _SftpTarWriter(self.sftp, self._writer, self.target.name).write_tree(self.paths)
            self.finished = True
        except (_ConsumerGone, BrokenPipeError):
            pass  # the consumer stopped reading; it has its own error to report
        except BaseException as exc:
            self.error = exc
            with contextlib.suppress(OSError):
                self._writer.close()

    def check(self) -> None:
        self._thread.join()
        if self.error is not None:
            if isinstance(self.error, ConnectorError):
                raise self.error
            if _connection_lost(self.sftp):
                raise TransientConnectorError(
                    f"{self.target.where}: connection lost during SFTP read; "
                    "the stream is incomplete",
                    host=self.target.name,
                ) from self.error
            raise ConnectorError(
                f"SFTP read failed: {self.error}", host=self.target.name
            ) from self.error
        if not self.finished:
            raise ConnectorError("SFTP read stopped early", host=self.target.name)

    def close(self) -> None:
        self.reader.close()
        self._thread.join(10)


class _CheckedPipe:
    """The read end of the pipe; at EOF, raises the producer's failure if there was one."""

    def __init__(self, producer: _Producer) -> None:
        self._producer = producer

    def read(self, size: int = -1) -> bytes:
        data = self._producer.reader.read(size)
        if not data:
            self._producer.check()
        return data

    def readinto(self, buffer: bytearray | memoryview) -> int:
        got = self._producer.reader.readinto(buffer)
        if not got:
            self._producer.check()
        return int(got or 0)

    def readable(self) -> bool:
        return True


@contextlib.contextmanager
def open_sftp_tar(
    sftp: paramiko.SFTPClient, paths: Sequence[str], target: SSHTarget
) -> Iterator[BinaryIO]:
    """Yield a tar stream of `paths` read over `sftp`; on exit, raise if the walk failed.

    Reading past the last byte of a failed walk raises the walk's error, so the
    consumer never mistakes a cut stream for a whole one. Errors name `target`.
    The caller closes `sftp` after the block (the walk has stopped by then).
    """
    producer = _Producer(sftp, paths, target)
    try:
        yield _CheckedPipe(producer)  # type: ignore[misc]
        while producer.reader.read(PIPE_BYTES):
            pass
        producer.check()
    finally:
        producer.close()
