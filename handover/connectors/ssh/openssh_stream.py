"""A remote command's stdout through the `ssh` binary, checked as an exec channel's is.

`open_bulk_stream` is the connector's choice of carrier for a data stream
(a remote `tar`, a dump): the OpenSSH client when `openssh.py` allows it,
else None and the caller opens a paramiko channel. The stream it yields
behaves as `streams.open_exec_tar`'s: stderr drained aside (tail kept for
messages), stdin sent then closed, and at EOF the exit status is checked
inside the consumer's read, so a stream cut short raises instead of reaching
a tar parser as a plausible end. Errors are the paramiko path's:
ConnectorError with the exit status and stderr tail when the command failed,
TransientConnectorError "connection lost ...; the stream is incomplete" when
the connection dropped, HostKeyMismatch naming both fingerprints when the
host presented another key than the control connection verified.

Before handing the stream over, the first bytes are awaited: in `auto` mode
an `ssh` that fails before any data for another reason than the host key
(a key format it refuses, an option it lacks) hands the stream back to
paramiko, which runs it on the control connection (already verified and
authenticated), and says so in the log. A host key mismatch is never
retried. The key file is removed as soon as the first byte arrives (the
login is over by then) and the private folder when the stream ends.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import select
import subprocess
import threading
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING, Any, BinaryIO

from handover.connectors.ssh.limits import (
    EXIT_STATUS_WAIT_S,
    IDLE_TIMEOUT_S,
    READ_SIZE,
    STDERR_KEEP_BYTES,
)
from handover.connectors.ssh.openssh import (
    BULK_ENV,
    BulkFolder,
    BulkMode,
    PinnedHostKey,
    bulk_mode,
    child_env,
    find_ssh,
    private_key_bytes,
    ssh_argv,
)
from handover.connectors.ssh.target import SSHTarget
from handover.errors import (
    AuthFailed,
    ConnectorError,
    HostKeyMismatch,
    PermanentConnectorError,
    TransientConnectorError,
    UsageError,
)
from handover.sshkeys import known_hosts_name

if TYPE_CHECKING:
    import paramiko

__all__ = [
    "BulkUnavailable",
    "SshStream",
    "StderrTail",
    "bulk_carrier",
    "end_ssh",
    "open_bulk_stream",
    "open_ssh_stream",
    "read_ssh_stream",
    "ssh_failure",
    "start_ssh_stream",
]

log = logging.getLogger(__name__)

PIPE_SIZE = 1024 * 1024  # the stdout pipe of `ssh`, enlarged: fewer, larger reads
_FINGERPRINT_RE = re.compile(r"SHA256:[A-Za-z0-9+/]{43}")
_HOST_KEY_FAILED = "host key verification failed"
_TRANSIENT_HINTS = ("refused", "timed out", "reset", "closed", "broken pipe", "unreachable")


class BulkUnavailable(Exception):
    """`ssh` could not carry this stream and no byte was read: paramiko may carry it instead."""


class StderrTail:
    """Read a pipe on a thread so `ssh` never blocks on its stderr; keep the tail."""

    def __init__(self, pipe: IO[bytes], keep_bytes: int = STDERR_KEEP_BYTES) -> None:
        self._pipe = pipe
        self._keep = keep_bytes
        self._buffer = bytearray()
        self._thread = threading.Thread(target=self._run, name="ssh-bulk-stderr", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            while chunk := self._pipe.read1(65536):  # type: ignore[attr-defined]
                self._buffer += chunk
                if len(self._buffer) > self._keep:
                    del self._buffer[: len(self._buffer) - self._keep]

    def finish(self, timeout_s: float = 5.0) -> bytes:
        self._thread.join(timeout_s)
        return bytes(self._buffer)


def _feed(pipe: IO[bytes], data: bytes) -> None:
    """Send stdin then close it (on a thread: `ssh` reads it only once connected)."""
    with contextlib.suppress(OSError, ValueError):
        pipe.write(data)
    with contextlib.suppress(OSError, ValueError):
        pipe.close()


class SshStream(io.RawIOBase):
    """The stdout of one `ssh` process as a raw stream; at EOF, how it ended is checked."""

    def __init__(
        self,
        argv: list[str],
        folder: BulkFolder,
        target: SSHTarget,
        what: str,
        expected: PinnedHostKey,
        trusted_by: str,
        stdin: bytes,
        fallback: bool,
    ) -> None:
        self.target = target
        self.what = what
        self._folder = folder
        self._expected = expected
        self._trusted_by = trusted_by
        self._fallback = fallback
        self._started = False
        self._done = False
        self._checked = False
        self._pending = b""
        try:
            self._process = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=child_env(folder.path),
                start_new_session=True,  # a terminal's Ctrl-C reaches handover, which stops ssh
            )
        except OSError as exc:
            if fallback:
                raise BulkUnavailable(f"cannot start {argv[0]}: {exc.strerror}") from exc
            raise PermanentConnectorError(
                f"{target.where}: cannot start {argv[0]} ({exc.strerror})", host=target.name
            ) from exc
        assert self._process.stdout is not None and self._process.stderr is not None
        self._fd = self._process.stdout.fileno()
        with contextlib.suppress(OSError, AttributeError):
            import fcntl

            fcntl.fcntl(self._fd, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
        self._poll = select.poll()
        self._poll.register(self._fd, select.POLLIN | select.POLLHUP | select.POLLERR)
        self._stderr = StderrTail(self._process.stderr)
        self._feeder: threading.Thread | None = None
        if stdin:
            assert self._process.stdin is not None
            self._feeder = threading.Thread(
                target=_feed, args=(self._process.stdin, stdin), name="ssh-bulk-stdin", daemon=True
            )
            self._feeder.start()

    # -- reading -----------------------------------------------------------------------

    def readable(self) -> bool:
        return True

    def _wait_readable(self) -> None:
        if not self._poll.poll(IDLE_TIMEOUT_S * 1000):
            raise TransientConnectorError(
                f"{self.target.where}: {self.what}: no data for {IDLE_TIMEOUT_S:g} s",
                host=self.target.name,
            )

    def _got_data(self) -> None:
        if not self._started:
            self._started = True
            self._folder.remove_key()  # logged in: the key file has done its work

    def prime(self, at_least: int = 1) -> None:
        """Wait for `at_least` bytes (or the end): decides whether `ssh` carries this stream.

        An end before them raises here, before the stream is handed out.
        """
        pending = bytearray()
        while len(pending) < at_least:
            self._wait_readable()
            chunk = os.read(self._fd, READ_SIZE)
            if not chunk:
                self._pending = bytes(pending)
                self._done = True
                self.check()
                return
            pending += chunk
            self._got_data()
        self._pending = bytes(pending)

    @property
    def output_before_end(self) -> bytes:
        """What `ssh` wrote before it ended short of `prime`'s bytes (a refusal, say)."""
        return self._pending if self._done else b""

    def readinto(self, buffer: Any) -> int:
        if self._pending:
            view = memoryview(buffer).cast("B")
            size = min(len(view), len(self._pending))
            view[:size] = self._pending[:size]
            self._pending = self._pending[size:]
            return size
        if self._done:
            return 0
        self._wait_readable()
        count = os.readv(self._fd, [buffer])
        if count:
            self._got_data()
            return count
        self._done = True
        self.check()
        return 0

    def drain(self) -> None:
        """Read what the consumer left (tar's end padding) so `ssh` can exit."""
        self._pending = b""
        while not self._done:
            self._wait_readable()
            if not os.read(self._fd, READ_SIZE):
                self._done = True

    # -- ending ------------------------------------------------------------------------

    def check(self) -> None:
        """Raise unless `ssh` and the remote command ended with status 0 (once per stream)."""
        if self._checked:
            return
        self._checked = True
        try:
            status = self._process.wait(EXIT_STATUS_WAIT_S)
        except subprocess.TimeoutExpired:
            status = None
        err = self._stderr.finish()
        self._folder.remove_key()
        error = self._error(status, err)
        if error is not None:
            raise error

    def _error(self, status: int | None, err: bytes) -> Exception | None:
        return ssh_failure(
            status,
            err,
            self.target,
            self.what,
            self._expected,
            self._trusted_by,
            started=self._started,
            fallback=self._fallback,
        )

    def shutdown(self) -> None:
        """Stop `ssh` if it still runs, close its pipes, remove the private folder."""
        try:
            end_ssh(self._process, self._stderr, grace_s=0.0)
            if self._feeder is not None:
                self._feeder.join(1.0)
        finally:
            self._folder.close()


def end_ssh(process: subprocess.Popen[bytes], stderr: StderrTail, *, grace_s: float) -> None:
    """Give `process` `grace_s` to exit, then terminate it (kill it 5 s later); close its pipes.

    Shared by the streams here and the SFTP sessions of `openssh_sftp.py`:
    `stderr` is read to its end (1 s at most) once the pipes are closed.
    """
    try:
        process.wait(grace_s)
    except subprocess.TimeoutExpired:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
    for pipe in (process.stdout, process.stderr):
        if pipe is not None:
            with contextlib.suppress(OSError):
                pipe.close()
    stderr.finish(timeout_s=1.0)


def ssh_failure(
    status: int | None,
    err: bytes,
    target: SSHTarget,
    what: str,
    expected: PinnedHostKey,
    trusted_by: str,
    *,
    started: bool,
    fallback: bool,
) -> Exception | None:
    """The error an `ssh` run that ended with `status` and stderr `err` stands for, or None.

    `started`: data had come, so a failure now is a lost connection.
    `fallback`: a failure before any data, other than the host key, is
    BulkUnavailable (paramiko carries instead). Shared by the streams here
    and the SFTP sessions of `openssh_sftp.py`.
    """
    where = target.where
    if status == 0:
        return None
    # Only failures need it: connectors.base defines pydantic models (~10 ms to import).
    from handover.connectors.base import stderr_summary

    text = err.decode("utf-8", "replace")
    if _HOST_KEY_FAILED in text.lower():
        found = _FINGERPRINT_RE.findall(text)
        presented = found[-1] if found else "another key"
        return HostKeyMismatch(
            f"host key mismatch for {known_hosts_name(target.address, target.port)}: "
            f"expected {expected.fingerprint} ({trusted_by}), "
            f"presented {presented}; no data was transferred",
            host=target.name,
        )
    if status is not None and 0 < status < 255:
        return ConnectorError(
            f"{where}: {what} failed (exit status {status}): {stderr_summary(err)}",
            host=target.name,
        )
    if started:  # 255 (ssh's own failure), killed, or no exit after EOF
        return TransientConnectorError(
            f"{where}: connection lost during {what}; the stream is incomplete",
            host=target.name,
        )
    summary = stderr_summary(err)
    if fallback:
        return BulkUnavailable(f"ssh exited with status {status}: {summary}")
    if "permission denied" in text.lower():
        return AuthFailed(f"{where}: authentication refused to ssh ({summary})", host=target.name)
    kind = (
        TransientConnectorError
        if any(hint in text.lower() for hint in _TRANSIENT_HINTS)
        else PermanentConnectorError
    )
    return kind(f"{where}: ssh failed before any data ({summary})", host=target.name)


def start_ssh_stream(
    ssh: str,
    target: SSHTarget,
    host_key: PinnedHostKey,
    private_key: bytes,
    command: str,
    what: str,
    stdin: bytes = b"",
    *,
    trusted_by: str,
    fallback: bool,
) -> SshStream:
    """`ssh` started on `command`, trusting `host_key` only; read it with `read_ssh_stream`.

    Apart from reading so that a caller can start `ssh` ahead, letting its
    connection and login overlap other work (`handover seal ssh://...`,
    issue 16). A started stream must be read with `read_ssh_stream` or
    ended with its `shutdown()` (stops `ssh`, removes its private folder).
    Raises BulkUnavailable (only when `fallback`) when `ssh` cannot start.
    """
    folder = BulkFolder(host_key, private_key)
    try:
        argv = ssh_argv(ssh, target, host_key, folder.path, command)
        return SshStream(argv, folder, target, what, host_key, trusted_by, stdin, fallback)
    except BaseException:
        folder.close()
        raise


#: the buffer of the stream handed out: small, because the bulk readers (the seal's pump,
#: 512 KiB `readinto`) go around a buffer smaller than their request, straight into their own;
#: a 1 MiB one was copied through on every read and held 1 MiB per volume (3 MiB while an
#: exit pulled three hosts, at its peak). Short reads (dumps, headers) still come in batches.
STREAM_BUFFER = 64 * 1024


@contextlib.contextmanager
def read_ssh_stream(raw: SshStream, first_bytes: int = 1) -> Iterator[BinaryIO]:
    """The stdout of a started `ssh`, handed out once `first_bytes` have come.

    Raises BulkUnavailable (only when the stream was started with
    `fallback`, before yielding) when `ssh` failed before any data for
    another reason than the host key. An end before `first_bytes` (a
    refusal written to stdout, as an SFTP-only account's) raises before
    yielding. Leaving the block after the consumer read everything drains
    the rest and checks how `ssh` ended (see the module's docstring); `ssh`
    is stopped and its folder removed in any case.
    """
    try:
        raw.prime(first_bytes)
        yield io.BufferedReader(raw, buffer_size=STREAM_BUFFER)  # type: ignore[misc]
        raw.drain()
        raw.check()
    finally:
        raw.shutdown()


@contextlib.contextmanager
def open_ssh_stream(
    ssh: str,
    target: SSHTarget,
    host_key: PinnedHostKey,
    private_key: bytes,
    command: str,
    what: str,
    stdin: bytes = b"",
    *,
    trusted_by: str,
    fallback: bool,
    first_bytes: int = 1,
) -> Iterator[BinaryIO]:
    """The stdout of `command` run by `ssh` on `target`, trusting `host_key` only.

    `start_ssh_stream` then `read_ssh_stream` (see both): raises
    BulkUnavailable (only when `fallback`, before yielding) when `ssh`
    failed before any data for another reason than the host key.
    """
    raw = start_ssh_stream(
        ssh,
        target,
        host_key,
        private_key,
        command,
        what,
        stdin,
        trusted_by=trusted_by,
        fallback=fallback,
    )
    with read_ssh_stream(raw, first_bytes) as stream:
        yield stream


def bulk_carrier(target: SSHTarget) -> tuple[str, bytes, BulkMode] | None:
    """The `ssh` binary, login key and mode for `target`'s data, or None for paramiko.

    None when `HANDOVER_SSH_BULK=paramiko`, or (in `auto`) when no `ssh` is
    on PATH or the login is no key; with `HANDOVER_SSH_BULK=openssh` those
    are UsageErrors instead.
    """
    mode = bulk_mode()
    if mode == "paramiko":
        return None
    ssh = find_ssh()
    if ssh is None:
        if mode == "openssh":
            raise UsageError(
                f"{BULK_ENV}=openssh: no `ssh` client on PATH "
                "(apt-get install openssh-client, or unset it to use paramiko)"
            )
        return None
    private_key = private_key_bytes(target)
    if private_key is None:
        if mode == "openssh":
            raise UsageError(
                f"{BULK_ENV}=openssh: host {target.name!r} does not log in with a key; "
                "password and agent logins are carried by paramiko"
            )
        return None
    return ssh, private_key, mode


def open_bulk_stream(
    stack: contextlib.ExitStack,
    target: SSHTarget,
    host_key: paramiko.PKey,
    command: str,
    what: str,
    stdin: bytes = b"",
) -> BinaryIO | None:
    """The stream of `command` carried by `ssh` (entered on `stack`), or None for paramiko.

    `host_key` is the key the control connection verified. None when
    `HANDOVER_SSH_BULK=paramiko`, when no `ssh` is on PATH or the login is
    no key (in `auto`), or when `ssh` failed before any data (in `auto`,
    logged). With `HANDOVER_SSH_BULK=openssh` those are errors instead.
    """
    carrier = bulk_carrier(target)
    if carrier is None:
        return None
    ssh, private_key, mode = carrier
    try:
        return stack.enter_context(
            open_ssh_stream(
                ssh,
                target,
                PinnedHostKey.from_pkey(host_key),
                private_key,
                command,
                what,
                stdin,
                trusted_by="playbook" if target.host_key else "known_hosts",
                fallback=mode == "auto",
            )
        )
    except BulkUnavailable as exc:
        log.warning(
            "%s: the OpenSSH client could not carry %s (%s); paramiko carries it",
            target.where,
            what,
            exc,
        )
        return None
