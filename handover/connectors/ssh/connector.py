"""The `ssh` transport: a client host reached with paramiko, trusted by pinned host key.

`SSHConnector.from_host(host, contract_id)` connects to a playbook host:
host key checked against the playbook's fingerprint or the contract's
known_hosts (see `ssh_trust`), then key or password auth from the host's
credential reference, resolved here and kept only as a paramiko key object.
Connection failures that a retry may cure (refused, timeout, reset) are
retried with exponential backoff and end as TransientConnectorError; a
refused credential is AuthFailed and a changed host key HostKeyMismatch,
neither retried.

Data leaves the host as a tar stream produced by the host's own `tar`
over an exec channel (`SSHTreeSource`), the way DESIGN.md measured fastest:
one process walks and reads the tree, paramiko only moves bytes. Dumps are
remote commands whose output becomes one tar member (`SSHDumpSource`).
Accounts limited to SFTP (`ForceCommand internal-sftp`) are detected and get
a tar stream built here from SFTP reads instead (`ssh_sftp`).

paramiko's defaults are tuned for interactive use: a rekey every 512 MiB
(which, on a busy channel, stalls or times out long transfers) and 2 MiB
windows. Transports made here raise the rekey limits and use larger windows
and packets so a multi-GiB pull runs at the speed of the remote `tar`.
"""

from __future__ import annotations

import array
import collections
import contextlib
import io
import posixpath
import shlex
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, BinaryIO, Literal, Self

import paramiko

from handover.connectors.base import CommandResult
from handover.connectors.ssh.trust import (
    PinnedFingerprintPolicy,
    fetch_host_key,
    fingerprint,
    first_contact_fingerprint,
    known_hosts_name,
    known_keys,
    normalize_fingerprint,
    record_host_key,
)
from handover.errors import (
    AuthFailed,
    ConnectorError,
    HostKeyMismatch,
    KeyFormatError,
    PermanentConnectorError,
    TransientConnectorError,
    UsageError,
)
from handover.secrets.references import resolve_secret
from handover.state.home import contract_dir

if TYPE_CHECKING:
    from handover.bundle.types import VolumeSource
    from handover.contract.perimeter import Host
    from handover.estate.inventory import Inventory

__all__ = [
    "SSHConnector",
    "SSHDumpSource",
    "SSHTarget",
    "SSHTreeSource",
    "first_contact_fingerprint",
    "pin_first_contact",
    "ssh_source_from_url",
]

WINDOW_SIZE = 8 * 1024 * 1024  # per channel: bounds what paramiko buffers for a slow reader
MAX_PACKET_SIZE = 256 * 1024  # what we accept; OpenSSH sends at most 32 KiB per packet anyway
REKEY_LIMIT = 2**40  # bytes or packets between rekeys: in practice, never during a transfer
READ_SIZE = 1024 * 1024  # one recv from the channel
STDERR_KEEP_BYTES = 8 * 1024  # tail of a remote stderr kept for error messages
STDERR_TAIL_CHARS = 500
RUN_OUTPUT_LIMIT = 64 * 1024 * 1024  # run() is for commands with small outputs, not data
MAX_READ_FILE_BYTES = 16 * 1024 * 1024
IDLE_TIMEOUT_S = 300.0  # no byte for this long on a stream: the host is stuck
EXIT_STATUS_WAIT_S = 30.0  # after EOF, how long the exit status may take to arrive
INVENTORY_TIMEOUT_S = 300.0
KEEPALIVE_S = 30
NO_SHELL_REASON = "account limited to SFTP: no command can run"

# AES-GCM carries its own tag: no per-packet HMAC in Python (measured ~1.4x less CPU per byte
# than aes128-ctr + hmac-sha2-256 on loopback). Other ciphers stay allowed after these.
PREFERRED_CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com")

# GNU tar: same options as the local source (POSIX format, no atime/ctime records, sorted,
# hard links stored as files). Elsewhere (BusyBox) plain `tar -cf -`; handover parses both.
_TAR_SCRIPT = (
    "if tar --version 2>/dev/null | grep -q 'GNU tar'; then "
    "exec tar -cf - --format=posix --pax-option=delete=atime,delete=ctime --sort=name "
    "--hard-dereference -C / -- {paths}; "
    "else exec tar -cf - -C / -- {paths}; fi"
)

# A tar header states the member's size before its data, and a dump's size is known only
# when the dump ends: so the dump goes to a private temp file on the host first, its exit
# status is checked, and only then is it tarred and streamed (and the temp folder removed).
_DUMP_SCRIPT = """umask 077
d=$(mktemp -d) || exit 97
trap 'rm -rf "$d"' EXIT HUP INT TERM
sh -c {command} > "$d"/{filename} </dev/null
status=$?
if [ "$status" -ne 0 ]; then
  echo "handover: dump command exited with status $status" >&2
  exit 98
fi
cd "$d" || exit 97
if tar --version 2>/dev/null | grep -q 'GNU tar'; then
  tar -cf - --format=posix --pax-option=delete=atime,delete=ctime -- {filename}
else
  tar -cf - -- {filename}
fi
"""


@dataclass(frozen=True)
class SSHTarget:
    """Where and as whom to connect; holds references only, never a secret."""

    name: str
    address: str
    port: int = 22
    user: str = "root"
    host_key: str | None = None  # pinned `SHA256:...` fingerprint
    credential: str | None = None  # reference: env:/file:/vault:/prefect-secret:
    auth: Literal["key", "password"] = "key"
    use_agent: bool = False
    key_file: Path | None = None  # `handover seal --ssh-key FILE`: read at connect time

    @classmethod
    def from_host(cls, host: Host) -> SSHTarget:
        if not host.address:
            raise UsageError(f"host {host.name!r}: an ssh host needs an address")
        return cls(
            name=host.name,
            address=host.address,
            port=host.port,
            user=host.user or "root",
            host_key=host.host_key,
            credential=host.credential,
            auth=host.auth,
            use_agent=host.use_agent,
        )

    @property
    def where(self) -> str:
        return f"{self.user}@{known_hosts_name(self.address, self.port)}"


def _load_private_key(data: bytes, what: str, host: str) -> paramiko.PKey:
    """Parse an unencrypted OpenSSH/PEM private key; the message names `what`, never the key."""
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        text = ""
    classes: tuple[type[paramiko.PKey], ...] = (
        paramiko.Ed25519Key,
        paramiko.ECDSAKey,
        paramiko.RSAKey,
    )
    encrypted = False
    for key_class in classes:
        try:
            return key_class.from_private_key(io.StringIO(text))
        except paramiko.PasswordRequiredException:
            encrypted = True
        except (paramiko.SSHException, ValueError, TypeError, IndexError):
            continue
    if encrypted:
        raise KeyFormatError(
            f"{host}: {what} is a passphrase-protected key; give an unencrypted key "
            "(store it in the vault) or use the agent (use_agent: true)"
        )
    raise KeyFormatError(
        f"{host}: {what} is not an OpenSSH or PEM private key (ed25519, ecdsa or rsa)"
    )


class _Peek:
    """What `array[:n]` gives BufferedPipe: an object with `tobytes()`."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def tobytes(self) -> bytes:
        return self.data


class _ChunkBuffer:
    """Drop-in for the `array('B')` inside paramiko's BufferedPipe (a channel's stdout).

    paramiko appends every packet to an array and, on each read, copies the
    head out and shifts the rest down: with an 8 MiB window and 1 MiB reads
    that is several MiB moved per MiB read. This keeps packets as the bytes
    objects they arrived as and joins them once per read (measured 20-40% less
    CPU per byte on loopback). BufferedPipe calls it under its own lock, only
    through `len`, `frombytes`, `[:n]` and `del [:n]`.
    """

    def __init__(self) -> None:
        self._parts: collections.deque[bytes] = collections.deque()
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def frombytes(self, data: bytes) -> None:
        if data:
            self._parts.append(bytes(data))
            self._size += len(data)

    def _count(self, stop: int | None) -> int:
        return self._size if stop is None else min(stop, self._size)

    def __getitem__(self, key: slice) -> _Peek:
        count = self._count(key.stop)
        parts = self._parts
        if parts and len(parts[0]) >= count:
            first = parts[0]
            return _Peek(first if len(first) == count else first[:count])
        out: list[bytes] = []
        got = 0
        for part in parts:
            take = min(len(part), count - got)
            out.append(part if take == len(part) else part[:take])
            got += take
            if got >= count:
                break
        return _Peek(b"".join(out))

    def __delitem__(self, key: slice) -> None:
        count = self._count(key.stop)
        self._size -= count
        parts = self._parts
        while count:
            part = parts[0]
            if len(part) <= count:
                parts.popleft()
                count -= len(part)
            else:
                parts[0] = part[count:]
                count = 0


def _use_chunk_buffer(channel: paramiko.Channel) -> None:
    """Swap the stdout buffer of a fresh channel (before any data), if paramiko's is as known."""
    pipe = channel.in_buffer
    if isinstance(getattr(pipe, "_buffer", None), array.array) and len(pipe) == 0:
        pipe._buffer = _ChunkBuffer()  # type: ignore[attr-defined]


def _fast_transport(
    sock: socket.socket, disabled_algorithms: dict[str, list[str]] | None = None
) -> paramiko.Transport:
    """A Transport for bulk data: large windows and packets, rekey limits out of the way."""
    transport = paramiko.Transport(
        sock,
        default_window_size=WINDOW_SIZE,
        default_max_packet_size=MAX_PACKET_SIZE,
        disabled_algorithms=disabled_algorithms,
    )
    options = transport.get_security_options()
    preferred = [c for c in PREFERRED_CIPHERS if c in options.ciphers]
    options.ciphers = tuple(preferred + [c for c in options.ciphers if c not in preferred])
    packetizer = transport.packetizer
    packetizer.REKEY_BYTES = REKEY_LIMIT
    packetizer.REKEY_PACKETS = REKEY_LIMIT
    packetizer.REKEY_BYTES_OVERFLOW_MAX = REKEY_LIMIT
    packetizer.REKEY_PACKETS_OVERFLOW_MAX = REKEY_LIMIT
    return transport


_TRANSIENT_SSH_HINTS = ("banner", "timed out", "timeout", "reset", "eof", "closed", "refused")


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
        retries: int = 3,
        retry_delay_s: float = 1.0,
    ) -> SSHConnector:
        """Connect to a playbook host; known_hosts defaults to the contract's own file.

        With `pin_host_keys`, a host neither the playbook nor known_hosts knows
        has its key recorded into known_hosts (first contact); the connector's
        `recorded_fingerprint` then says so, for a human to confirm.
        Raises HostKeyMismatch, AuthFailed, KeyFormatError, SecretRefError,
        TransientConnectorError (after `retries` retries).
        """
        if known_hosts is None:
            known_hosts = contract_dir(contract_id) / "known_hosts"
        return cls.connect(
            SSHTarget.from_host(host),
            known_hosts=known_hosts,
            pin_host_keys=pin_host_keys,
            connect_timeout_s=connect_timeout_s,
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
        retries: int = 3,
        retry_delay_s: float = 1.0,
    ) -> SSHConnector:
        """Connect to `target`, retrying transient failures with exponential backoff."""
        delay = retry_delay_s
        for attempt in range(retries + 1):
            try:
                return cls._connect_once(target, known_hosts, pin_host_keys, connect_timeout_s)
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
        timeout_s: float,
    ) -> SSHConnector:
        pkey, password = _credentials(target)
        pinned = normalize_fingerprint(target.host_key) if target.host_key else None
        client = paramiko.SSHClient()
        expected: dict[str, paramiko.PKey] = {}
        if pinned is None and known_hosts is not None:
            expected = known_keys(known_hosts, target.address, target.port)
            for key_type, key in expected.items():
                client.get_host_keys().add(
                    known_hosts_name(target.address, target.port), key_type, key
                )
        policy = PinnedFingerprintPolicy(
            target.name,
            pinned,
            known_hosts if pin_host_keys and pinned is None else None,
            target.address,
            target.port,
        )
        client.set_missing_host_key_policy(policy)
        try:
            client.connect(
                target.address,
                port=target.port,
                username=target.user,
                pkey=pkey,
                password=password,
                timeout=timeout_s,
                banner_timeout=timeout_s,
                auth_timeout=timeout_s,
                channel_timeout=timeout_s,
                allow_agent=target.use_agent,
                look_for_keys=target.use_agent,
                transport_factory=_fast_transport,  # type: ignore[arg-type]
            )
        except BaseException as exc:
            client.close()
            mapped = _connect_error(target, exc, known_hosts)
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
            _use_chunk_buffer(channel)
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

    def _require_shell(self, what: str) -> None:
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
        stderr = _StderrDrain(channel, keep_bytes=RUN_OUTPUT_LIMIT)
        feeder = _StdinFeeder(channel, stdin)
        out = bytearray()
        try:
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
                    break
                out += chunk
                if len(out) > RUN_OUTPUT_LIMIT:
                    raise PermanentConnectorError(
                        f"{self.target.where}: {program!r} wrote more than "
                        f"{RUN_OUTPUT_LIMIT} bytes; use a data source, not run()",
                        host=self.name,
                    )
            status = _exit_status(channel, max(0.0, deadline - time.monotonic()) + 1)
        finally:
            with contextlib.suppress(EOFError, OSError, paramiko.SSHException):
                channel.close()
            feeder.join()
            err = stderr.finish()
        if status is None:
            raise TransientConnectorError(
                f"{self.target.where}: connection lost while {program!r} ran", host=self.name
            )
        return CommandResult(exit_status=status, stdout=bytes(out), stderr=err)

    def inventory(self, cert_paths: Sequence[str] = ()) -> Inventory:
        """Run INVENTORY_SCRIPT in one exec (`sh -s -- PATHS`, script on stdin) and parse it.

        An SFTP-only account gets what files tell (OS release, kernel,
        hostname, users) read over SFTP, each command-only fact recorded as
        unreadable with the reason.
        """
        from handover.estate.inventory import (
            INVENTORY_SCRIPT,
            inventory_command,
            inventory_from_files,
            parse_inventory,
        )

        if not self.has_shell():
            return inventory_from_files(self.name, self.read_file, NO_SHELL_REASON)
        result = self.run(
            inventory_command(cert_paths),
            stdin=INVENTORY_SCRIPT.encode("utf-8"),
            timeout_s=INVENTORY_TIMEOUT_S,
        )
        if not result.stdout:
            raise PermanentConnectorError(
                f"{self.target.where}: inventory script printed nothing "
                f"(status {result.exit_status}): {_tail(result.stderr)}",
                host=self.name,
            )
        return parse_inventory(self.name, result.stdout.decode("utf-8", "replace"))

    def tree_source(self, label: str, paths: Sequence[str]) -> SSHTreeSource:
        return SSHTreeSource(self, label, paths)

    def dump_source(self, label: str, command: str, filename: str) -> SSHDumpSource:
        return SSHDumpSource(self, label, command, filename)

    def read_file(self, path: str) -> bytes:
        """A small file's bytes (up to MAX_READ_FILE_BYTES); PermanentConnectorError if absent."""
        _check_abs(path, self.name)
        if self.has_shell():
            result = self.run(f"cat -- {shlex.quote(path)}", timeout_s=60)
            if result.exit_status != 0:
                raise PermanentConnectorError(
                    f"{path}: cannot read: {_tail(result.stderr)}", host=self.name
                )
            data = result.stdout
        else:
            data = self._sftp_read(path)
        if len(data) > MAX_READ_FILE_BYTES:
            raise PermanentConnectorError(
                f"{path}: larger than {MAX_READ_FILE_BYTES} bytes, not a small file",
                host=self.name,
            )
        return data

    def _sftp_read(self, path: str) -> bytes:
        with contextlib.closing(self.sftp()) as sftp:
            try:
                with sftp.open(path, "rb") as handle:
                    return bytes(handle.read(MAX_READ_FILE_BYTES + 1))
            except OSError as exc:
                raise PermanentConnectorError(
                    f"{path}: cannot read ({exc.strerror or exc})", host=self.name
                ) from exc

    def write_file(self, path: str, data: bytes, mode: int = 0o600) -> None:
        """Replace `path` atomically on the host: a temp file in the same folder, then `mv`."""
        _check_abs(path, self.name)
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
                    f"{path}: cannot write: {_tail(result.stderr)}", host=self.name
                )
            return
        self._sftp_write(path, folder, base, data, mode)

    def _sftp_write(self, path: str, folder: str, base: str, data: bytes, mode: int) -> None:
        temp = posixpath.join(folder, f".{base}.handover-{time.time_ns()}")
        with contextlib.closing(self.sftp()) as sftp:
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


def pin_first_contact(
    host: Host,
    contract_id: str,
    *,
    expected: str | None = None,
    known_hosts: Path | None = None,
    timeout_s: float = 10.0,
) -> Path:
    """Record the key `host` presents into the contract known_hosts; return that file's path.

    Called once a human has confirmed the fingerprint shown by
    `first_contact_fingerprint`: pass it as `expected`, so a key that changed
    between the confirmation and now is refused (HostKeyMismatch) rather than
    pinned. A playbook pin, when present, must match too. An existing entry
    with another key is never replaced.
    """
    target = SSHTarget.from_host(host)
    path = known_hosts or contract_dir(contract_id) / "known_hosts"
    key = fetch_host_key(target.address, target.port, timeout_s=timeout_s)
    presented = fingerprint(key)
    for what, wanted in (("confirmed", expected), ("playbook", target.host_key)):
        if wanted is not None and normalize_fingerprint(wanted) != presented:
            raise HostKeyMismatch(
                f"host key of {known_hosts_name(target.address, target.port)} is {presented}, "
                f"not the {what} {normalize_fingerprint(wanted)}; nothing was pinned",
                host=target.name,
            )
    record_host_key(path, target.address, target.port, key)
    return path


def _credentials(target: SSHTarget) -> tuple[paramiko.PKey | None, str | None]:
    """Resolve the credential (at connect time, every time): a key object or a password."""
    if target.key_file is not None:
        try:
            data = target.key_file.read_bytes()
        except OSError as exc:
            raise KeyFormatError(
                f"{target.key_file}: cannot read SSH key ({exc.strerror})"
            ) from exc
        return _load_private_key(data, f"key file {target.key_file}", target.name), None
    if target.credential is None:
        if target.use_agent:
            return None, None
        raise UsageError(
            f"host {target.name!r}: no credential (set `credential`, or `use_agent: true`)"
        )
    secret = resolve_secret(target.credential)
    if target.auth == "password":
        return None, secret.reveal_text()
    return (
        _load_private_key(secret.reveal(), f"credential {target.credential}", target.name),
        None,
    )


def _connect_error(
    target: SSHTarget, exc: BaseException, known_hosts: Path | None
) -> BaseException:
    """Map what paramiko and sockets raise to handover's errors (messages hold no secret)."""
    where = target.where
    if isinstance(exc, ConnectorError | UsageError):
        return exc
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


def _check_abs(path: str, host: str) -> None:
    if not path.startswith("/"):
        raise UsageError(f"{host}: {path!r}: host paths must be absolute")


def _tail(stderr: bytes) -> str:
    text = stderr.decode("utf-8", "replace").strip().replace("\n", "; ")
    return text[-STDERR_TAIL_CHARS:] or "no message on stderr"


def _exit_status(channel: paramiko.Channel, wait_s: float) -> int | None:
    """The remote exit status, or None when the channel closed without one (connection lost)."""
    channel.status_event.wait(wait_s)
    if not channel.exit_status_ready():
        return None
    status = channel.exit_status
    return None if status == -1 else int(status)


class _StderrDrain:
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


class _StdinFeeder:
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

    def __init__(self, connector: SSHConnector, command: str, what: str) -> None:
        self.connector = connector
        self.what = what
        self.channel = connector._exec(command, IDLE_TIMEOUT_S)
        self.channel.shutdown_write()
        self.stderr = _StderrDrain(self.channel)
        self._checked = False

    def recv(self, size: int) -> bytes:
        try:
            return self.channel.recv(size)
        except TimeoutError:
            raise TransientConnectorError(
                f"{self.connector.target.where}: {self.what}: no data for {IDLE_TIMEOUT_S:g} s",
                host=self.connector.name,
            ) from None
        except (EOFError, OSError, paramiko.SSHException) as exc:
            # paramiko raises these when the window adjust it sends finds the connection gone.
            raise TransientConnectorError(
                f"{self.connector.target.where}: connection lost during {self.what}; "
                "the stream is incomplete",
                host=self.connector.name,
            ) from exc

    def check(self) -> None:
        """Raise unless the remote command ended with status 0 (once per stream)."""
        if self._checked:
            return
        self._checked = True
        status = _exit_status(self.channel, EXIT_STATUS_WAIT_S)
        err = self.stderr.finish()
        where = self.connector.target.where
        if status is None:
            raise TransientConnectorError(
                f"{where}: connection lost during {self.what}; the stream is incomplete",
                host=self.connector.name,
            )
        if status != 0:
            raise ConnectorError(
                f"{where}: {self.what} failed (exit status {status}): {_tail(err)}",
                host=self.connector.name,
            )

    def drain(self) -> None:
        """Read what the consumer left (tar's end padding) so the exit status can come."""
        while self.recv(READ_SIZE):
            pass

    def close(self) -> None:
        with contextlib.suppress(EOFError, OSError, paramiko.SSHException):
            self.channel.close()


@contextlib.contextmanager
def _open_exec_tar(connector: SSHConnector, command: str, what: str) -> Iterator[BinaryIO]:
    stream = _ExecStream(connector, command, what)
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


def _relative_paths(paths: Sequence[str], host: str) -> list[str]:
    """Absolute host paths as tar operands under `-C /`; '..' refused, duplicates dropped."""
    if not paths:
        raise UsageError(f"{host}: a dataset needs at least one path")
    out: list[str] = []
    for path in paths:
        _check_abs(path, host)
        parts = [p for p in path.split("/") if p not in ("", ".")]
        if ".." in parts:
            raise UsageError(f"{host}: {path!r}: '..' is not allowed in a dataset path")
        rel = "/".join(parts) or "."
        if rel not in out:
            out.append(rel)
    return out


class SSHTreeSource:
    """A dataset on an SSH host: the remote `tar` walks `paths`, we read its stream.

    Members are named relative to `/` (`/var/www/a` → `var/www/a`), as
    `tar -C /` writes them. On SFTP-only accounts the tar stream is built here
    from SFTP reads (same members and bytes, slower on many small files).
    Leaving `open_tar()` raises ConnectorError if the remote tar failed
    (status and stderr tail) and TransientConnectorError if the connection
    dropped: a partial stream never passes for a whole one.
    """

    def __init__(self, connector: SSHConnector, label: str, paths: Sequence[str]) -> None:
        self.connector = connector
        self._label = label
        self.paths = [posixpath.normpath(p) for p in paths]
        self.relative = _relative_paths(paths, connector.name)

    @property
    def label(self) -> str:
        return self._label

    @property
    def origin(self) -> str:
        target = self.connector.target
        base = f"ssh://{target.user}@{target.address}:{target.port}"
        return ",".join(base + p for p in self.paths)

    def member_extras(self) -> dict[str, dict[str, str]]:
        return {}

    def command(self) -> str:
        """The remote command: paths shell-quoted (spaces, quotes and `$` stay data), and the
        script handed to `sh -c` so a non-POSIX login shell (csh, fish) does not parse it."""
        script = _TAR_SCRIPT.format(paths=" ".join(shlex.quote(p) for p in self.relative))
        return "sh -c " + shlex.quote(script)

    @contextlib.contextmanager
    def open_tar(self) -> Iterator[BinaryIO]:
        if not self.connector.has_shell():
            from handover.connectors.ssh.sftp import open_sftp_tar

            with open_sftp_tar(self.connector, self.paths) as stream:
                yield stream
            return
        with _open_exec_tar(
            self.connector, self.command(), f"tar of {', '.join(self.paths)}"
        ) as stream:
            yield stream


class SSHDumpSource:
    """A dump command's output on an SSH host, as a tar holding one member `filename`.

    The remote shell runs `command` into a private temp folder (`umask 077`,
    `mktemp -d`), checks its exit status, then tars the file and removes the
    folder, all in one script: a tar member's size is written before its
    data, so the dump must end before its bytes can be framed. The host needs
    free temp space for one dump.
    """

    def __init__(self, connector: SSHConnector, label: str, command: str, filename: str) -> None:
        if not filename or "/" in filename or filename in (".", ".."):
            raise UsageError(f"{connector.name}: dump filename {filename!r} must be a plain name")
        self.connector = connector
        self._label = label
        self._command = command
        self.filename = filename

    @property
    def label(self) -> str:
        return self._label

    @property
    def origin(self) -> str:
        target = self.connector.target
        return f"ssh://{target.user}@{target.address}:{target.port} dump:{self.filename}"

    def member_extras(self) -> dict[str, dict[str, str]]:
        return {}

    def script(self) -> str:
        return _DUMP_SCRIPT.format(
            command=shlex.quote(self._command), filename=shlex.quote(self.filename)
        )

    @contextlib.contextmanager
    def open_tar(self) -> Iterator[BinaryIO]:
        self.connector._require_shell(f"run the dump for {self.filename}")
        command = "sh -c " + shlex.quote(self.script())
        with _open_exec_tar(self.connector, command, f"dump {self.filename}") as stream:
            yield stream


class SSHUrlSource:
    """`ssh://USER@HOST[:PORT]/PATH` for `handover seal`: connects when opened, closes after.

    Host keys come from `known_hosts` (default ~/.ssh/known_hosts, as `ssh`
    would read it): the host must be in it. The key file is read at connect
    time; without one, the SSH agent and ~/.ssh keys are tried, as `ssh` does.
    """

    def __init__(self, target: SSHTarget, path: str, known_hosts: Path, label: str) -> None:
        self.target = target
        self.path = path
        self.known_hosts = known_hosts
        self._label = label

    @property
    def label(self) -> str:
        return self._label

    @property
    def origin(self) -> str:
        return f"ssh://{self.target.user}@{self.target.address}:{self.target.port}{self.path}"

    def member_extras(self) -> dict[str, dict[str, str]]:
        return {}

    @contextlib.contextmanager
    def open_tar(self) -> Iterator[BinaryIO]:
        with (
            SSHConnector.connect(self.target, known_hosts=self.known_hosts) as connector,
            connector.tree_source(self._label, [self.path]).open_tar() as stream,
        ):
            yield stream


def ssh_source_from_url(
    url: str, known_hosts: Path | None, key_file: Path | None, label: str
) -> VolumeSource:
    """A VolumeSource for `ssh://USER@HOST[:PORT]/PATH` (percent-escapes decoded).

    Raises UsageError for a URL without user, host or absolute path.
    """
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "ssh" or not parts.hostname:
        raise UsageError(f"{url!r}: expected ssh://USER@HOST[:PORT]/PATH")
    try:
        port = parts.port or 22
    except ValueError as exc:
        raise UsageError(f"{url!r}: invalid port") from exc
    if not parts.username:
        raise UsageError(f"{url!r}: the user is missing (ssh://USER@HOST/PATH)")
    if parts.password:
        raise UsageError(f"{url!r}: passwords in URLs are refused; use --ssh-key")
    path = urllib.parse.unquote(parts.path)
    if not path.startswith("/") or path == "/":
        raise UsageError(f"{url!r}: give an absolute path below / (ssh://USER@HOST/PATH)")
    target = SSHTarget(
        name=parts.hostname,
        address=parts.hostname,
        port=port,
        user=urllib.parse.unquote(parts.username),
        key_file=key_file,
        use_agent=key_file is None,
    )
    if known_hosts is None:
        known_hosts = Path("~/.ssh/known_hosts").expanduser()
    return SSHUrlSource(target, path, known_hosts, label)
