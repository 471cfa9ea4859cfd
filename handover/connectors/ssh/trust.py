"""Host-key trust for SSH hosts: pinned fingerprints, per-contract known_hosts, first contact.

A host is trusted in one of two ways, checked in this order:
1. the playbook pins a fingerprint (`host_key: SHA256:...`): the key the host
   presents must have exactly that fingerprint;
2. the contract's known_hosts file (OpenSSH format, hashed names allowed) has
   an entry for `[address]:port` (or `address` on port 22): paramiko compares
   the presented key with it.

Anything else is rejected (`paramiko.RejectPolicy` semantics: an unknown key
is never added silently), except on a deliberate first contact
(`pin_host_keys=True`), where the presented key is recorded into the contract
known_hosts and its fingerprint handed back for a human to confirm. A key that
differs from the pinned one raises HostKeyMismatch naming both fingerprints,
before any authentication, so no data moves to or from an impostor.

Fingerprints are `handover.sshkeys`' (the one SHA256 fingerprint of handover);
the operator-driven first contact (show, confirm, pin) is `first_contact.py`.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

import paramiko
from paramiko.hostkeys import HostKeyEntry

import handover.sshkeys as sshkeys
from handover.connectors.ssh.reach import HANDSHAKE_TIMEOUT_S, handshake_error, open_tcp
from handover.errors import (
    HostKeyMismatch,
    PermanentConnectorError,
    TransientConnectorError,
    UsageError,
)
from handover.sshkeys import known_hosts_name
from handover.state.atomic import PRIVATE_FILE_MODE, ensure_private_dir, write_atomic
from handover.state.shared_blob import local_copy, shared_blob

__all__ = [
    "PinnedFingerprintPolicy",
    "fetch_host_key",
    "fingerprint",
    "known_hosts_name",
    "known_keys",
    "load_known_hosts",
    "record_host_key",
]


def fingerprint(key: paramiko.PKey) -> str:
    """The `SHA256:...` fingerprint of a paramiko key (`handover.sshkeys`, as `ssh-keygen -l`)."""
    return sshkeys.fingerprint(key.asbytes())


def load_known_hosts(path: Path) -> paramiko.HostKeys:
    """Read an OpenSSH known_hosts file; a missing file is an empty one.

    The contract's own file is first brought up to the state store's copy
    when the store is shared (`handover.state.shared_blob`): a key another
    worker pinned is known here too.
    """
    keys = paramiko.HostKeys()
    if local_copy(path).exists():
        try:
            keys.load(str(path))
        except (OSError, paramiko.SSHException, ValueError) as exc:
            raise UsageError(f"{path}: cannot read known_hosts ({exc})") from exc
    return keys


def known_keys(path: Path, address: str, port: int) -> dict[str, paramiko.PKey]:
    """The keys known_hosts holds for the host, by key type (empty when unknown)."""
    entry = load_known_hosts(path).lookup(known_hosts_name(address, port))
    return dict(entry) if entry is not None else {}


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Serialize read-modify-write of a known_hosts file across threads and processes."""
    ensure_private_dir(path.parent)
    fd = os.open(path.with_name(path.name + ".lock"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def record_host_key(path: Path, address: str, port: int, key: paramiko.PKey) -> str:
    """Add the host's key to known_hosts (atomic rewrite, under a lock); return its fingerprint.

    An entry of the same type with another key is never replaced: that is a
    mismatch, and a human must remove the old line on purpose. The
    contract's own file in a shared state store is changed there, by
    compare-and-set, so keys two workers pin at once are both kept.
    """
    shared = shared_blob(path)
    if shared is not None:
        shared.update(lambda data: _with_key(data, path, address, port, key))
        return fingerprint(key)
    with _locked(path):
        new = _with_key(path.read_bytes() if path.exists() else None, path, address, port, key)
        if new is not None:
            # A known_hosts file keeps its mode (the user's own may be 0644); a new one is
            # private, like the rest of the contract's state.
            mode = path.stat().st_mode & 0o777 if path.exists() else PRIVATE_FILE_MODE
            write_atomic(path, new, mode=mode)
    return fingerprint(key)


def _with_key(
    data: bytes | None, path: Path, address: str, port: int, key: paramiko.PKey
) -> bytes | None:
    """known_hosts `data` with the host's key added; None when it holds it already.

    Raises HostKeyMismatch when it holds another key of the same type.
    """
    name = known_hosts_name(address, port)
    entry = _parse_known_hosts(data or b"", path).lookup(name)
    old = dict(entry).get(key.get_name()) if entry is not None else None
    if old is not None and old != key:
        raise HostKeyMismatch(
            f"{name}: known_hosts {path} holds {fingerprint(old)}, "
            f"host presented {fingerprint(key)}",
            host=name,
        )
    if old is not None:
        return None
    text = (data or b"").decode("utf-8")
    if text and not text.endswith("\n"):
        text += "\n"
    text += f"{name} {key.get_name()} {key.get_base64()}\n"
    return text.encode("utf-8")


def _parse_known_hosts(data: bytes, path: Path) -> paramiko.HostKeys:
    """known_hosts bytes read as `HostKeys.load` reads a file (comments, bad lines skipped)."""
    keys = paramiko.HostKeys()
    try:
        lines = data.decode("utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: cannot read known_hosts ({exc})") from exc
    for number, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            entry = HostKeyEntry.from_line(line, number)
        except paramiko.SSHException:
            continue
        if entry is not None and entry.key is not None:
            for host in entry.hostnames:
                keys.add(host, entry.key.get_name(), entry.key)
    return keys


class PinnedFingerprintPolicy(paramiko.RejectPolicy):
    """RejectPolicy that accepts exactly one thing: the pinned fingerprint, or a first contact.

    paramiko calls `missing_host_key` only when the client holds no key for the
    host (known_hosts mismatches are raised by paramiko itself as
    BadHostKeyException). With a pinned fingerprint the presented key must match
    it; with `record_to` set (first contact asked for) the key is recorded;
    otherwise the key is rejected, naming the fingerprint a human can check.
    """

    def __init__(
        self, host: str, pinned: str | None, record_to: Path | None, address: str, port: int
    ) -> None:
        self.host = host
        self.pinned = pinned
        self.record_to = record_to
        self.address = address
        self.port = port
        self.presented: str | None = None
        self.recorded: str | None = None

    def missing_host_key(  # type: ignore[override]  # may accept, unlike its parent
        self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey
    ) -> None:
        self.presented = fingerprint(key)
        if self.pinned is not None:
            if self.presented != self.pinned:
                raise HostKeyMismatch(
                    f"host key mismatch for {hostname}: expected {self.pinned} (playbook), "
                    f"presented {self.presented}; no data was transferred",
                    host=self.host,
                )
            return
        if self.record_to is not None:
            self.recorded = record_host_key(self.record_to, self.address, self.port, key)
            return
        raise PermanentConnectorError(
            f"host key of {hostname} is not pinned (presented {self.presented}): pin it in the "
            "playbook (host_key) or the contract known_hosts, or run takeover with "
            "--pin-host-keys and confirm it",
            host=self.host,
        )


def fetch_host_key(address: str, port: int = 22, *, timeout_s: float = 10.0) -> paramiko.PKey:
    """The key the host presents, fetched with a key exchange only (no authentication).

    Raises TransientConnectorError when the host cannot be reached,
    PermanentConnectorError when what answers there sends no SSH banner
    within `timeout_s` (see `reach.py`).
    """
    name = known_hosts_name(address, port)
    sock = open_tcp(name, "", address, port, timeout_s)
    transport = paramiko.Transport(sock)
    transport.banner_timeout = timeout_s
    try:
        transport.start_client(timeout=timeout_s + HANDSHAKE_TIMEOUT_S + 1)
        return transport.get_remote_server_key()
    except (paramiko.SSHException, EOFError, OSError) as exc:
        mapped = handshake_error(exc, name, "", timeout_s, timeout_s)
        if mapped is not None:
            raise mapped from exc
        raise TransientConnectorError(f"SSH handshake failed: {exc}", host=name) from exc
    finally:
        transport.close()
