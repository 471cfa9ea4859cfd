"""An SFTP session carried by the `ssh` binary, for accounts that may only use SFTP.

An SFTP-only account (`ForceCommand internal-sftp`) cannot run `tar`, so
its data comes as SFTP reads (`sftp.py`). Over paramiko, every byte is
decrypted in Python: the large files of `benchmarks/sftp_pull.py` came at
1.64x `sftp -r` then `tar | age`. Here `ssh -s HOST sftp` runs the
subsystem with one end of a socketpair as its stdin and stdout, and
paramiko's SFTPClient, which accepts a plain socket, speaks the protocol
over the other end: the SFTP messages are parsed in Python, the SSH
transport runs in C in its own process.

Trust and login are those of `openssh_stream.py`: the same command line
(the host key the control connection verified, and nothing of the user's
SSH setup), the key in a 0600 file of a private folder, removed once the
session's version exchange is over (the login has happened by then).
A failure before that exchange is judged as a stream's (`ssh_failure`):
a host key mismatch is never retried; in `auto` mode any other failure
hands the session back to paramiko, and says so in the log.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import select
import socket
import subprocess

import paramiko

from handover.connectors.ssh.limits import EXIT_STATUS_WAIT_S, IDLE_TIMEOUT_S
from handover.connectors.ssh.openssh import BulkFolder, PinnedHostKey, child_env, ssh_argv
from handover.connectors.ssh.openssh_stream import (
    BulkUnavailable,
    StderrTail,
    bulk_carrier,
    end_ssh,
    ssh_failure,
)
from handover.connectors.ssh.target import SSHTarget
from handover.errors import PermanentConnectorError

__all__ = ["CarriedSftpClient", "open_bulk_sftp", "open_carried_sftp"]

log = logging.getLogger(__name__)

WHAT = "SFTP session"


class CarriedSftpClient(paramiko.SFTPClient):
    """An SFTPClient over the socket of an `ssh` process, which knows when that process ended."""

    process: subprocess.Popen[bytes]

    def carrier_gone(self) -> bool:
        """True once `ssh` has exited: the session is lost (a retry may help)."""
        return self.process.poll() is not None


class _SessionSocket:
    """Our end of the socketpair, as paramiko's SFTPClient uses it: send, recv, close, a name.

    Not a `socket.socket`, on purpose: paramiko polls a real socket with
    `select` before every `recv`, and reads a message in as many pieces as
    `ssh` wrote it, joining them. Here each `recv` gathers all it asks (a
    message's length, then the whole message) into one buffer, and ends
    early only at the end of the stream, which paramiko reads as EOF. A
    server that sends nothing, or takes nothing, for IDLE_TIMEOUT_S is
    stuck, even in the middle of a message: TimeoutError. (A dead peer ends
    `ssh` sooner, through its keepalives.) A send takes what fits (paramiko
    sends the rest after).
    """

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._closed = False
        self._readable = select.poll()
        self._readable.register(sock, select.POLLIN | select.POLLHUP | select.POLLERR)
        self._writable = select.poll()
        self._writable.register(sock, select.POLLOUT | select.POLLHUP | select.POLLERR)

    def _check_open(self) -> None:
        # the polls hold the fd's number, which a file opened later may reuse: a send from
        # a file object collected after the session closed would wait on that file instead
        if self._closed:
            raise OSError(errno.EBADF, "the SFTP session is closed")

    def send(self, data: bytes) -> int:
        self._check_open()
        while True:
            if not self._writable.poll(IDLE_TIMEOUT_S * 1000):
                raise TimeoutError(f"no room to send for {IDLE_TIMEOUT_S:g} s")
            with contextlib.suppress(BlockingIOError):  # another sender took the room
                return self._sock.send(data, socket.MSG_DONTWAIT)

    def recv(self, size: int) -> bytes:
        self._check_open()
        buffer = bytearray(size)
        view = memoryview(buffer)
        got = 0
        while got < size:
            if not self._readable.poll(IDLE_TIMEOUT_S * 1000):
                raise TimeoutError(f"no answer for {IDLE_TIMEOUT_S:g} s")
            try:
                count = self._sock.recv_into(view[got:], size - got, socket.MSG_DONTWAIT)
            except BlockingIOError:
                continue
            if not count:
                break  # the end of the stream: paramiko reads a short answer as EOF
            got += count
        return bytes(view[:got])

    def close(self) -> None:
        self._closed = True
        self._sock.close()

    def get_name(self) -> str:  # paramiko's SFTP log lines name their channel
        return "ssh"


def _start(
    ssh: str,
    target: SSHTarget,
    key: PinnedHostKey,
    folder: BulkFolder,
    *,
    trusted_by: str,
    fallback: bool,
) -> tuple[CarriedSftpClient, StderrTail]:
    """`ssh -s ... sftp` on a socketpair, and the SFTP session negotiated over it."""
    argv = ssh_argv(ssh, target, key, folder.path, "sftp", subsystem=True)
    ours, theirs = socket.socketpair()
    try:
        process = subprocess.Popen(
            argv,
            stdin=theirs.fileno(),
            stdout=theirs.fileno(),
            stderr=subprocess.PIPE,
            env=child_env(folder.path),
            start_new_session=True,  # a terminal's Ctrl-C reaches handover, which stops ssh
        )
    except OSError as exc:
        ours.close()
        if fallback:
            raise BulkUnavailable(f"cannot start {ssh}: {exc.strerror}") from exc
        raise PermanentConnectorError(
            f"{target.where}: cannot start {ssh} ({exc.strerror})", host=target.name
        ) from exc
    finally:
        theirs.close()
    assert process.stderr is not None
    stderr = StderrTail(process.stderr)
    try:
        client = CarriedSftpClient(_SessionSocket(ours))  # type: ignore[arg-type]
    except (paramiko.SSHException, EOFError, OSError) as exc:
        ours.close()
        try:
            status: int | None = process.wait(EXIT_STATUS_WAIT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            status = process.wait()
        error = ssh_failure(
            status,
            stderr.finish(),
            target,
            WHAT,
            key,
            trusted_by,
            started=False,
            fallback=fallback,
        ) or BulkUnavailable(f"no SFTP session ({exc})")
        raise error from exc
    client.process = process
    folder.remove_key()  # logged in: the key file has done its work
    return client, stderr


def _stop(client: CarriedSftpClient, stderr: StderrTail, *, failed: bool) -> None:
    """Close the session; `ssh` ends on its closed stdin, or is stopped.

    After a failure `ssh` is stopped at once: a stuck server would not
    answer the end of the session either.
    """
    with contextlib.suppress(EOFError, OSError, paramiko.SSHException):
        client.close()
    end_ssh(client.process, stderr, grace_s=0.0 if failed else EXIT_STATUS_WAIT_S)


def open_bulk_sftp(
    stack: contextlib.ExitStack, target: SSHTarget, host_key: paramiko.PKey
) -> paramiko.SFTPClient | None:
    """An SFTP session carried by `ssh` (closed with `stack`), or None for paramiko's.

    `host_key` is the key the control connection verified. None as for
    `open_bulk_stream`: `HANDOVER_SSH_BULK=paramiko`, no `ssh` or no key
    login (in `auto`), or `ssh` failing before the session (in `auto`,
    logged). Raises HostKeyMismatch whatever the mode.
    """
    carrier = bulk_carrier(target)
    if carrier is None:
        return None
    ssh, private_key, mode = carrier
    return open_carried_sftp(
        stack,
        ssh,
        target,
        PinnedHostKey.from_pkey(host_key),
        private_key,
        trusted_by="playbook" if target.host_key else "known_hosts",
        fallback=mode == "auto",
    )


def open_carried_sftp(
    stack: contextlib.ExitStack,
    ssh: str,
    target: SSHTarget,
    key: PinnedHostKey,
    private_key: bytes,
    *,
    trusted_by: str,
    fallback: bool,
) -> paramiko.SFTPClient | None:
    """`ssh -s ... sftp` trusting `key` only, logging in with `private_key`; closed with `stack`.

    None (logged) when `fallback` and `ssh` failed before the session for
    another reason than the host key; raises otherwise.
    """
    folder = BulkFolder(key, private_key)
    stack.callback(folder.close)
    try:
        client, stderr = _start(ssh, target, key, folder, trusted_by=trusted_by, fallback=fallback)
    except BulkUnavailable as exc:
        log.warning(
            "%s: the OpenSSH client could not carry the SFTP session (%s); paramiko carries it",
            target.where,
            exc,
        )
        return None
    stack.push(
        lambda failure, *_: _stop(client, stderr, failed=failure is not None)  # type: ignore[misc]
    )
    return client
