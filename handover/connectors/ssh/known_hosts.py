"""Host keys without a session: known_hosts files read and written, a host's key fetched.

The contract's known_hosts (OpenSSH format, hashed names allowed) is read
with paramiko's `HostKeys`; a key is added under a lock, by atomic rewrite,
and never replaces another of the same type (that is a mismatch, for a human
to resolve). `fetch_host_key` runs a key exchange only, for first contact.
Fingerprints are `handover.sshkeys`' (the one SHA256 fingerprint of handover).

paramiko is imported by the functions that use it, not with this module:
the flows and tasks that import first contact then do not load it (~5.6 MiB
of RSS, which the exit's Argon2 key derivation sits on top of, issue #16).
The policy a connection applies (`PinnedFingerprintPolicy`, a paramiko
subclass) is `trust.py`, imported with the connector.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import handover.sshkeys as sshkeys
from handover.connectors.ssh.reach import HANDSHAKE_TIMEOUT_S, handshake_error, open_tcp
from handover.errors import HostKeyMismatch, TransientConnectorError, UsageError
from handover.sshkeys import known_hosts_name
from handover.state.atomic import PRIVATE_FILE_MODE, ensure_private_dir, write_atomic
from handover.state.shared_blob import local_copy, shared_blob

if TYPE_CHECKING:
    import paramiko

__all__ = [
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
    import paramiko

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
    import paramiko
    from paramiko.hostkeys import HostKeyEntry

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


def fetch_host_key(address: str, port: int = 22, *, timeout_s: float = 10.0) -> paramiko.PKey:
    """The key the host presents, fetched with a key exchange only (no authentication).

    Raises TransientConnectorError when the host cannot be reached,
    PermanentConnectorError when what answers there sends no SSH banner
    within `timeout_s` (see `reach.py`).
    """
    import paramiko

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
