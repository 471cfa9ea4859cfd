"""The byte streams of an exec channel: stdin fed and stderr drained on threads, stdout checked.

A remote command's stdout is read by the caller while its stderr is drained
aside (so the remote never blocks on a full stderr) and its stdin is fed on
another thread (so a command that writes while it reads never deadlocks).
A stream that carries data (a tar, a dump) asks at EOF how the command ended:
a stream cut short raises with the host's own reason instead of reaching a
tar parser as a plausible end. These are the hot paths of an SSH pull:
changes here are measured with benchmarks/ssh_pull.py.
"""

from __future__ import annotations

import contextlib
import io
import threading
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

import paramiko

from handover.connectors.base import stderr_summary
from handover.connectors.ssh.limits import (
    EXIT_STATUS_WAIT_S,
    IDLE_TIMEOUT_S,
    READ_SIZE,
    STDERR_KEEP_BYTES,
)
from handover.connectors.ssh.target import SSHTarget
from handover.errors import ConnectorError, TransientConnectorError

__all__ = [
    "IDLE_TIMEOUT_S",
    "READ_SIZE",
    "StderrDrain",
    "StdinFeeder",
    "exit_status",
    "open_exec_tar",
]


def exit_status(channel: paramiko.Channel, wait_s: float) -> int | None:
    """The remote exit status, or None when the channel closed without one (connection lost)."""
    channel.status_event.wait(wait_s)
    if not channel.exit_status_ready():
        return None
    status = channel.exit_status
    return None if status == -1 else int(status)


class StderrDrain:
    """Read a channel's stderr on a thread so the remote never blocks on it; keep the tail."""

    def __init__(self, channel: paramiko.Channel, keep_bytes: int = STDERR_KEEP_BYTES) -> None:
        self._channel = channel
        self._keep = keep_bytes
        self._buffer = bytearray()
        self._thread = threading.Thread(target=self._run, name="ssh-stderr", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                chunk = self._channel.recv_stderr(65536)
            except (TimeoutError, OSError, EOFError, paramiko.SSHException):
                if self._channel.closed or self._channel.eof_received:
                    return
                continue
            if not chunk:
                return
            self._buffer += chunk
            if len(self._buffer) > self._keep:
                del self._buffer[: len(self._buffer) - self._keep]

    def finish(self, timeout_s: float = 5.0) -> bytes:
        self._thread.join(timeout_s)
        return bytes(self._buffer)


class StdinFeeder:
    """Send stdin on a thread (so a command that writes while reading never deadlocks), then EOF."""

    def __init__(self, channel: paramiko.Channel, data: bytes | None) -> None:
        self._channel = channel
        self._data = data
        self._thread = threading.Thread(target=self._run, name="ssh-stdin", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with contextlib.suppress(OSError, EOFError, paramiko.SSHException):
            if self._data:
                for start in range(0, len(self._data), READ_SIZE):
                    self._channel.sendall(self._data[start : start + READ_SIZE])
            self._channel.shutdown_write()

    def join(self, timeout_s: float = 5.0) -> None:
        self._thread.join(timeout_s)


class _CheckedStream(io.RawIOBase):
    """A raw stream over a producer; at EOF it asks the producer how it ended.

    `chunks()` returns the next bytes (b"" at EOF); `check()` raises if the
    producer failed. Checking at EOF, inside the consumer's read, means a
    stream cut short raises in the reader's hands with the host's own reason
    instead of reaching a tar parser as a plausible end.
    """

    def __init__(self, recv: Callable[[int], bytes], check: Callable[[], None]) -> None:
        self._recv = recv
        self._check = check
        self._pending = memoryview(b"")
        self._done = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._done:
            return 0
        view = memoryview(buffer).cast("B")
        if not self._pending:
            self._pending = memoryview(self._recv(max(len(view), READ_SIZE)))
            if not self._pending:
                self._done = True
                self._check()
                return 0
        size = min(len(view), len(self._pending))
        view[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


class _ExecStream:
    """The stdout of a remote command as a checked stream; stderr drained aside."""

    def __init__(
        self, channel: paramiko.Channel, target: SSHTarget, what: str, stdin: bytes = b""
    ) -> None:
        self.target = target
        self.what = what
        self.channel = channel
        if stdin:
            # Small (a few variables): sent whole before reading, within the channel window.
            self._send(stdin)
        self.channel.shutdown_write()
        self.stderr = StderrDrain(self.channel)
        self._checked = False

    def _send(self, data: bytes) -> None:
        try:
            self.channel.sendall(data)
        except (EOFError, OSError, paramiko.SSHException) as exc:
            # The data is never quoted: it may be the command's secrets.
            raise TransientConnectorError(
                f"{self.target.where}: connection lost sending the input of {self.what}",
                host=self.target.name,
            ) from exc

    def recv(self, size: int) -> bytes:
        try:
            return self.channel.recv(size)
        except TimeoutError:
            raise TransientConnectorError(
                f"{self.target.where}: {self.what}: no data for {IDLE_TIMEOUT_S:g} s",
                host=self.target.name,
            ) from None
        except (EOFError, OSError, paramiko.SSHException) as exc:
            # paramiko raises these when the window adjust it sends finds the connection gone.
            raise TransientConnectorError(
                f"{self.target.where}: connection lost during {self.what}; "
                "the stream is incomplete",
                host=self.target.name,
            ) from exc

    def check(self) -> None:
        """Raise unless the remote command ended with status 0 (once per stream)."""
        if self._checked:
            return
        self._checked = True
        status = exit_status(self.channel, EXIT_STATUS_WAIT_S)
        err = self.stderr.finish()
        where = self.target.where
        if status is None:
            raise TransientConnectorError(
                f"{where}: connection lost during {self.what}; the stream is incomplete",
                host=self.target.name,
            )
        if status != 0:
            raise ConnectorError(
                f"{where}: {self.what} failed (exit status {status}): {stderr_summary(err)}",
                host=self.target.name,
            )

    def drain(self) -> None:
        """Read what the consumer left (tar's end padding) so the exit status can come."""
        while self.recv(READ_SIZE):
            pass

    def close(self) -> None:
        with contextlib.suppress(EOFError, OSError, paramiko.SSHException):
            self.channel.close()


@contextlib.contextmanager
def open_exec_tar(
    channel: paramiko.Channel, target: SSHTarget, what: str, stdin: bytes = b""
) -> Iterator[BinaryIO]:
    """The stdout of the command running on `channel` (opened with IDLE_TIMEOUT_S), checked.

    `stdin` is sent to the command, then its stdin is closed (small inputs
    only, such as the variables of a dump: it is sent before reading).

    Leaving the block after the consumer read everything drains the rest and
    raises ConnectorError if the command failed (status and stderr tail), or
    TransientConnectorError if the connection dropped. `what` names the
    stream in those messages.
    """
    try:
        stream = _ExecStream(channel, target, what, stdin)
    except BaseException:
        with contextlib.suppress(EOFError, OSError, paramiko.SSHException):
            channel.close()
        raise
    raw = _CheckedStream(stream.recv, stream.check)
    completed = False
    try:
        yield io.BufferedReader(raw, buffer_size=READ_SIZE)  # type: ignore[misc]
        completed = True
        stream.drain()
        stream.check()
    finally:
        stream.close()
        if not completed:
            stream.stderr.finish(timeout_s=1.0)
