"""The `ssh` transport: a client host reached with paramiko, trusted by pinned host key.

`SSHConnector.from_host(host, contract_id)` connects to a playbook host:
host key checked against the playbook's fingerprint or the contract's
known_hosts (see `trust.py`), then key or password auth from the host's
credential reference (`target.py`), resolved here and kept only as a paramiko
key object. Connection failures that a retry may cure (refused, timeout,
reset) are retried with exponential backoff and end as
TransientConnectorError; a refused credential is AuthFailed and a changed
host key HostKeyMismatch, neither retried.

The connector is the session: commands (`run`), small files, exec streams and
SFTP sessions. The datasets it serves are `sources.py`, the byte streams of a
channel `streams.py`, the paramiko tuning for bulk data `transport.py`; data
streams go through the OpenSSH client when it is there (`openssh.py`).
Accounts limited to SFTP (`ForceCommand internal-sftp`) are detected
(`has_shell`) and served through SFTP instead.
"""

from __future__ import annotations

import contextlib
import posixpath
import shlex
import socket
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, BinaryIO, Self

import paramiko

from handover.connectors.base import (
    MAX_READ_FILE_BYTES,
    CommandResult,
    require_small_file,
    stderr_summary,
)
from handover.connectors.ssh.known_hosts import fingerprint, known_hosts_name, known_keys
from handover.connectors.ssh.openssh_stream import open_bulk_stream
from handover.connectors.ssh.reach import (
    AUTH_TIMEOUT_S,
    BANNER_TIMEOUT_S,
    HANDSHAKE_TIMEOUT_S,
    handshake_error,
    open_tcp,
)
from handover.connectors.ssh.sftp import sftp_session
from handover.connectors.ssh.sources import SSHDumpSource, SSHTreeSource, check_absolute
from handover.connectors.ssh.streams import (
    IDLE_TIMEOUT_S,
    READ_SIZE,
    StderrDrain,
    StdinFeeder,
    exit_status,
    open_exec_tar,
)
from handover.connectors.ssh.target import SSHTarget, resolve_credentials
from handover.connectors.ssh.transport import (
    MAX_PACKET_SIZE,
    WINDOW_SIZE,
    fast_transport,
    use_chunk_buffer,
)
from handover.connectors.ssh.trust import PinnedFingerprintPolicy
from handover.errors import (
    AuthFailed,
    ConnectorError,
    HostKeyMismatch,
    PermanentConnectorError,
    TransientConnectorError,
    UsageError,
)
from handover.sshkeys import normalize_fingerprint
from handover.state.layout import ContractPaths

if TYPE_CHECKING:
    from handover.contract.perimeter import Host
    from handover.secrets.references import Secret

__all__ = ["SSHConnector"]

RUN_OUTPUT_LIMIT = 64 * 1024 * 1024  # run() is for commands with small outputs, not data
KEEPALIVE_S = 30

_TRANSIENT_SSH_HINTS = ("timed out", "timeout", "reset", "eof", "closed", "refused")


class SSHConnector:
    """HostConnector over SSH (paramiko). Build it with `from_host` or `connect`.

    Raises (from every method) ConnectorError subclasses naming the host:
    TransientConnectorError for lost connections and timeouts,
    PermanentConnectorError otherwise.
    """

    def __init__(
        self,
        target: SSHTarget,
        client: paramiko.SSHClient,
        *,
        recorded_fingerprint: str | None = None,
        presented_fingerprint: str | None = None,
    ) -> None:
        self.name = target.name
        self.target = target
        self._client = client
        #: set when this connection recorded the host key (first contact, `pin_host_keys`)
        self.recorded_fingerprint = recorded_fingerprint
        #: the fingerprint the host presented on this connection
        self.host_key_fingerprint = presented_fingerprint
        self._shell: bool | None = None
        self._lock = threading.Lock()

    # -- connecting ------------------------------------------------------------------

    @classmethod
    def from_host(
        cls,
        host: Host,
        contract_id: str,
        *,
        known_hosts: Path | None = None,
        pin_host_keys: bool = False,
        connect_timeout_s: float = 10.0,
        banner_timeout_s: float = BANNER_TIMEOUT_S,
        auth_timeout_s: float = AUTH_TIMEOUT_S,
        retries: int = 3,
        retry_delay_s: float = 1.0,
    ) -> SSHConnector:
        """Connect to a playbook host; known_hosts defaults to the contract's own file.

        With `pin_host_keys`, a host neither the playbook nor known_hosts knows
        has its key recorded into known_hosts (first contact); the connector's
        `recorded_fingerprint` then says so, for a human to confirm.
        Timeouts: `connect_timeout_s` for the TCP connection (and opening
        channels), `banner_timeout_s` for the server's first line,
        `auth_timeout_s` for the answer to authentication (see `reach.py`).
        Raises HostKeyMismatch, AuthFailed, KeyFormatError, SecretRefError,
        PermanentConnectorError (no banner, no answer to authentication),
        TransientConnectorError (after `retries` retries).
        """
        if known_hosts is None:
            known_hosts = ContractPaths(contract_id).known_hosts
        return cls.connect(
            SSHTarget.from_host(host),
            known_hosts=known_hosts,
            pin_host_keys=pin_host_keys,
            connect_timeout_s=connect_timeout_s,
            banner_timeout_s=banner_timeout_s,
            auth_timeout_s=auth_timeout_s,
            retries=retries,
            retry_delay_s=retry_delay_s,
        )

    @classmethod
    def connect(
        cls,
        target: SSHTarget,
        *,
        known_hosts: Path | None,
        pin_host_keys: bool = False,
        connect_timeout_s: float = 10.0,
        banner_timeout_s: float = BANNER_TIMEOUT_S,
        auth_timeout_s: float = AUTH_TIMEOUT_S,
        retries: int = 3,
        retry_delay_s: float = 1.0,
    ) -> SSHConnector:
        """Connect to `target`, retrying transient failures with exponential backoff."""
        delay = retry_delay_s
        timeouts = _Timeouts(connect_timeout_s, banner_timeout_s, auth_timeout_s)
        for attempt in range(retries + 1):
            try:
                return cls._connect_once(target, known_hosts, pin_host_keys, timeouts)
            except TransientConnectorError as exc:
                if attempt == retries:
                    reason = str(exc).removeprefix(f"{target.name}: ")
                    raise TransientConnectorError(
                        f"{reason} (gave up after {retries + 1} attempts)", host=target.name
                    ) from exc
            time.sleep(delay)
            delay *= 2
        raise RuntimeError("ssh: internal error: retry loop ended without a result")

    @classmethod
    def _connect_once(
        cls,
        target: SSHTarget,
        known_hosts: Path | None,
        pin_host_keys: bool,
        timeouts: _Timeouts,
    ) -> SSHConnector:
        pkey, password = resolve_credentials(target)
        client, policy = _trusting_client(target, known_hosts, pin_host_keys)
        # The TCP connection is ours: its failures get their own messages (reach.py).
        sock = open_tcp(target.name, target.where, target.address, target.port, timeouts.connect)
        try:
            client.connect(
                target.address,
                port=target.port,
                username=target.user,
                pkey=pkey,
                password=password,
                sock=sock,
                # How long to wait for the handshake as a whole: longer than its parts, so
                # that paramiko's own banner or key-exchange timeout is what ends a silence.
                timeout=timeouts.banner + HANDSHAKE_TIMEOUT_S + 1,
                banner_timeout=timeouts.banner,
                auth_timeout=timeouts.auth,
                channel_timeout=timeouts.connect,
                allow_agent=target.use_agent,
                look_for_keys=target.use_agent,
                transport_factory=fast_transport,  # type: ignore[arg-type]
            )
        except BaseException as exc:
            client.close()
            sock.close()
            mapped = _connect_error(target, exc, known_hosts, timeouts)
            if mapped is exc:
                raise
            raise mapped from exc
        transport = client.get_transport()
        if transport is None:
            raise TransientConnectorError(f"{target.where}: connection closed", host=target.name)
        transport.set_keepalive(KEEPALIVE_S)
        presented = fingerprint(transport.get_remote_server_key())
        return cls(
            target,
            client,
            recorded_fingerprint=policy.recorded,
            presented_fingerprint=presented,
        )

    # -- context manager -------------------------------------------------------------

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    # -- channels --------------------------------------------------------------------

    def _transport(self) -> paramiko.Transport:
        transport = self._client.get_transport()
        if transport is None or not transport.is_active():
            raise TransientConnectorError(
                f"{self.target.where}: connection is closed", host=self.name
            )
        return transport

    def _exec(self, command: str, timeout_s: float) -> paramiko.Channel:
        """Open a session channel running `command` (stdin left open for the caller)."""
        transport = self._transport()
        try:
            channel = transport.open_session(
                window_size=WINDOW_SIZE, max_packet_size=MAX_PACKET_SIZE, timeout=timeout_s
            )
            channel.settimeout(timeout_s)
            use_chunk_buffer(channel)
            channel.exec_command(command)
        except (paramiko.SSHException, OSError, EOFError) as exc:
            if not transport.is_active():
                raise TransientConnectorError(
                    f"{self.target.where}: connection lost opening a channel", host=self.name
                ) from exc
            raise PermanentConnectorError(
                f"{self.target.where}: the server refused to run a command ({exc})",
                host=self.name,
            ) from exc
        return channel

    def sftp(self) -> paramiko.SFTPClient:
        """An SFTP session on this connection (the caller closes it)."""
        try:
            client = self._client.open_sftp()
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise PermanentConnectorError(
                f"{self.target.where}: SFTP is not available ({exc})", host=self.name
            ) from exc
        channel = client.get_channel()
        if channel is not None:  # nothing is in flight once the session's version is read
            use_chunk_buffer(channel)
            channel.settimeout(IDLE_TIMEOUT_S)  # a server silent this long is stuck
        return client

    def data_sftp(self, stack: contextlib.ExitStack) -> paramiko.SFTPClient:
        """An SFTP session for bulk reads, closed with `stack`.

        Carried by the `ssh` binary when `HANDOVER_SSH_BULK` allows (see
        `openssh_sftp.py`), trusting only the host key this connection
        verified; else a session on this connection.
        """
        from handover.connectors.ssh.openssh_sftp import open_bulk_sftp
        from handover.connectors.ssh.sftp import sftp_session

        host_key = self._transport().get_remote_server_key()
        client = open_bulk_sftp(stack, self.target, host_key)
        if client is None:
            client = stack.enter_context(sftp_session(self.sftp()))
        return client

    def has_shell(self) -> bool:
        """True when the account may run commands; False for SFTP-only accounts.

        Probed once per connection: `ForceCommand internal-sftp` answers an
        exec request with "This service allows sftp connections only." and
        status 1; other servers refuse the exec channel outright.
        """
        with self._lock:
            if self._shell is None:
                try:
                    result = self.run("echo handover-shell-ok", timeout_s=30)
                except PermanentConnectorError:
                    self._shell = False
                else:
                    self._shell = result.exit_status == 0 and b"handover-shell-ok" in result.stdout
            return self._shell

    def require_shell(self, what: str) -> None:
        if not self.has_shell():
            raise PermanentConnectorError(
                f"{self.target.where}: account is limited to SFTP; cannot {what}",
                host=self.name,
            )

    # -- HostConnector ---------------------------------------------------------------

    def run(
        self, command: str, *, stdin: bytes | None = None, timeout_s: float = 120
    ) -> CommandResult:
        """Run `command` through the login shell; a non-zero exit is a result, not an error.

        Outputs are kept in memory (at most RUN_OUTPUT_LIMIT each): for
        commands and scripts, not data. Raises TransientConnectorError on
        timeout or a lost connection. The command text is never quoted in
        errors (it is the playbook's and may carry options one keeps private).
        """
        deadline = time.monotonic() + timeout_s
        channel = self._exec(command, timeout_s)
        program = command.split(None, 1)[0] if command.strip() else "command"
        stderr = StderrDrain(channel, keep_bytes=RUN_OUTPUT_LIMIT)
        feeder = StdinFeeder(channel, stdin)
        try:
            out = self._read_output(channel, program, deadline, timeout_s)
            status = exit_status(channel, max(0.0, deadline - time.monotonic()) + 1)
        finally:
            with contextlib.suppress(EOFError, OSError, paramiko.SSHException):
                channel.close()
            feeder.join()
            err = stderr.finish()
        if status is None:
            raise TransientConnectorError(
                f"{self.target.where}: connection lost while {program!r} ran", host=self.name
            )
        return CommandResult(exit_status=status, stdout=out, stderr=err)

    def _read_output(
        self, channel: paramiko.Channel, program: str, deadline: float, timeout_s: float
    ) -> bytes:
        """A command's whole stdout, read until EOF before `deadline` (RUN_OUTPUT_LIMIT at most)."""
        out = bytearray()
        while True:
            channel.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = channel.recv(READ_SIZE)
            except TimeoutError:
                raise TransientConnectorError(
                    f"{self.target.where}: {program!r} timed out after {timeout_s:g} s",
                    host=self.name,
                ) from None
            except (EOFError, OSError, paramiko.SSHException) as exc:
                raise TransientConnectorError(
                    f"{self.target.where}: connection lost while {program!r} ran",
                    host=self.name,
                ) from exc
            if not chunk:
                return bytes(out)
            out += chunk
            if len(out) > RUN_OUTPUT_LIMIT:
                raise PermanentConnectorError(
                    f"{self.target.where}: {program!r} wrote more than "
                    f"{RUN_OUTPUT_LIMIT} bytes; use a data source, not run()",
                    host=self.name,
                )

    def host_path(self, path: str) -> str:
        """A host path is the path itself over SSH."""
        return path

    @contextlib.contextmanager
    def stream_command(self, command: str, what: str, stdin: bytes = b"") -> Iterator[BinaryIO]:
        """The stdout of `command` as a checked stream (see `streams.open_exec_tar`).

        For data (a tar, a dump): no size limit, an idle timeout instead.
        Carried by the `ssh` binary when `HANDOVER_SSH_BULK` allows (see
        `openssh.py`), else by a channel of this connection.
        `what` names the stream in errors; `stdin` (small) is sent to the
        command before its stdin is closed.
        """
        with contextlib.ExitStack() as stack:
            # The OpenSSH client carries the bytes when it can (openssh_stream.py), trusting
            # only the host key this connection verified; else a channel of this connection.
            host_key = self._transport().get_remote_server_key()
            stream = open_bulk_stream(stack, self.target, host_key, command, what, stdin)
            if stream is None:
                channel = self._exec(command, IDLE_TIMEOUT_S)
                stream = stack.enter_context(open_exec_tar(channel, self.target, what, stdin))
            yield stream

    def tree_source(self, label: str, paths: Sequence[str]) -> SSHTreeSource:
        return SSHTreeSource(self, label, paths)

    def dump_source(
        self, label: str, command: str, filename: str, env: Mapping[str, Secret] | None = None
    ) -> SSHDumpSource:
        return SSHDumpSource(self, label, command, filename, env)

    def read_file(self, path: str) -> bytes:
        """A small file's bytes (up to MAX_READ_FILE_BYTES); PermanentConnectorError if absent."""
        check_absolute(path, self.name)
        if self.has_shell():
            result = self.run(f"cat -- {shlex.quote(path)}", timeout_s=60)
            if result.exit_status != 0:
                raise PermanentConnectorError(
                    f"{path}: cannot read: {stderr_summary(result.stderr)}", host=self.name
                )
            data = result.stdout
        else:
            data = self._sftp_read(path)
        return require_small_file(data, path, self.name)

    def _sftp_read(self, path: str) -> bytes:
        with sftp_session(self.sftp()) as sftp:
            try:
                with sftp.open(path, "rb") as handle:
                    return bytes(handle.read(MAX_READ_FILE_BYTES + 1))
            except OSError as exc:
                raise PermanentConnectorError(
                    f"{path}: cannot read ({exc.strerror or exc})", host=self.name
                ) from exc

    def write_file(self, path: str, data: bytes, mode: int = 0o600) -> None:
        """Replace `path` atomically on the host: a temp file in the same folder, then `mv`."""
        check_absolute(path, self.name)
        folder, base = posixpath.split(path)
        if self.has_shell():
            script = (
                "umask 077; "
                f"t=$(mktemp {shlex.quote(posixpath.join(folder, '.' + base))}.XXXXXX) || exit 1; "
                f'if cat > "$t" && chmod {mode:o} "$t" && mv -f "$t" {shlex.quote(path)}; '
                'then exit 0; else rm -f "$t"; exit 1; fi'
            )
            result = self.run(script, stdin=data, timeout_s=60)
            if result.exit_status != 0:
                raise PermanentConnectorError(
                    f"{path}: cannot write: {stderr_summary(result.stderr)}", host=self.name
                )
            return
        self._sftp_write(path, folder, base, data, mode)

    def _sftp_write(self, path: str, folder: str, base: str, data: bytes, mode: int) -> None:
        temp = posixpath.join(folder, f".{base}.handover-{time.time_ns()}")
        with sftp_session(self.sftp()) as sftp:
            try:
                with sftp.open(temp, "wb") as handle:
                    handle.chmod(mode)
                    handle.write(data)
                sftp.posix_rename(temp, path)
            except OSError as exc:
                with contextlib.suppress(OSError):
                    sftp.remove(temp)
                raise PermanentConnectorError(
                    f"{path}: cannot write ({exc.strerror or exc})", host=self.name
                ) from exc


def _trusting_client(
    target: SSHTarget, known_hosts: Path | None, pin_host_keys: bool
) -> tuple[paramiko.SSHClient, PinnedFingerprintPolicy]:
    """A client that trusts the playbook's pin, else the known_hosts entries, else nothing.

    With `pin_host_keys` (and no playbook pin) an unknown host's key is
    recorded into `known_hosts` instead of refused: the policy then holds its
    fingerprint (`recorded`) for a human to confirm.
    """
    pinned = normalize_fingerprint(target.host_key) if target.host_key else None
    client = paramiko.SSHClient()
    if pinned is None and known_hosts is not None:
        name = known_hosts_name(target.address, target.port)
        for key_type, key in known_keys(known_hosts, target.address, target.port).items():
            client.get_host_keys().add(name, key_type, key)
    policy = PinnedFingerprintPolicy(
        target.name,
        pinned,
        known_hosts if pin_host_keys and pinned is None else None,
        target.address,
        target.port,
    )
    client.set_missing_host_key_policy(policy)
    return client, policy


@dataclass(frozen=True)
class _Timeouts:
    """The connection's timeouts, in seconds: TCP connect (and channels), banner, auth."""

    connect: float
    banner: float
    auth: float


def _connect_error(
    target: SSHTarget, exc: BaseException, known_hosts: Path | None, timeouts: _Timeouts
) -> BaseException:
    """Map what paramiko and sockets raise to handover's errors (messages hold no secret)."""
    where = target.where
    if isinstance(exc, ConnectorError | UsageError):
        return exc
    handshake = handshake_error(exc, target.name, where, timeouts.banner, timeouts.auth)
    if handshake is not None:
        return handshake
    if isinstance(exc, paramiko.BadHostKeyException):
        return HostKeyMismatch(
            f"host key mismatch for {known_hosts_name(target.address, target.port)}: "
            f"expected {fingerprint(exc.expected_key)} (known_hosts {known_hosts}), "
            f"presented {fingerprint(exc.key)}; no data was transferred",
            host=target.name,
        )
    if isinstance(exc, paramiko.AuthenticationException):
        how = (
            f"key file {target.key_file}"
            if target.key_file
            else f"{target.auth} from {target.credential}"
            if target.credential
            else "the SSH agent"
        )
        return AuthFailed(f"{where}: authentication refused ({how})", host=target.name)
    if isinstance(exc, socket.gaierror):
        return PermanentConnectorError(
            f"{where}: cannot resolve {target.address!r} ({exc.strerror})", host=target.name
        )
    if isinstance(exc, paramiko.ssh_exception.NoValidConnectionsError):
        return TransientConnectorError(f"{where}: connection refused", host=target.name)
    if isinstance(exc, TimeoutError | socket.timeout):
        return TransientConnectorError(f"{where}: connection timed out", host=target.name)
    if isinstance(exc, OSError | EOFError):
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        return TransientConnectorError(f"{where}: {reason}", host=target.name)
    if isinstance(exc, paramiko.SSHException):
        text = str(exc)
        if any(hint in text.lower() for hint in _TRANSIENT_SSH_HINTS):
            return TransientConnectorError(f"{where}: {text}", host=target.name)
        return PermanentConnectorError(f"{where}: SSH negotiation failed: {text}", host=target.name)
    return exc
