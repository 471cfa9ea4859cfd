"""Provider SSH access: install at implementation, remove at exit, prove the removal.

The provider's public keys go into the account's `authorized_keys` with a
marker token `handover:<contract>` appended to each line's comment, so that
removal takes out exactly the lines this contract added, and nothing of the
client's: every other byte of the file is kept as it was (line endings,
comments, options, order). Both operations are idempotent and return an
`AccessRecord` (what, where, when, by whom, SHA-256 of the file before and
after) that the checklist keeps as evidence.

The file is rewritten atomically through the connector (`write_file`), with
its previous mode and owner kept, since sshd reads `authorized_keys` with the
account's own uid: a root-owned 0600 file would lock the client out. Mode
and owner are read and restored with `stat` and `chown` run through the
connector on `host_path(path)`, so a local sandbox host and an SSH host take
the same steps.

`verify_key_refused` then tries to log in with the provider's private key,
checking the host key against a pinned known_hosts (RejectPolicy), and says
True only when the server refuses the key. Which account's file, and the
playbook's entries carried out with these steps, are `provider_access.py`.
"""

from __future__ import annotations

import hashlib
import io
import os
import shlex
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel

from handover.actor import actor as default_actor
from handover.connectors.base import HostConnector
from handover.errors import (
    HostKeyMismatch,
    PermanentConnectorError,
    TransientConnectorError,
    UsageError,
)
from handover.secrets.references import Secret
from handover.sshkeys import SshPublicKey, find_public_key, fingerprint, shown
from handover.state.shared_blob import local_copy

# paramiko is imported by the login checks only: the exit flow imports this module, and
# paramiko's ~5.6 MiB of RSS would sit under its Argon2 key derivation (issue #16).
if TYPE_CHECKING:
    import paramiko

MARKER_PREFIX = "handover:"


class KeyChange(BaseModel):
    """One authorized_keys line added or removed, named by its fingerprint (no key body)."""

    fingerprint: str  # SHA256:... as `ssh-keygen -l` prints it
    key_type: str
    comment: str


class AccessRecord(BaseModel):
    """Evidence of one install or removal on one host (items provider-access, access-revoked)."""

    contract_id: str
    host: str
    path: str
    action: Literal["install", "remove"]
    marker: str
    changed: list[KeyChange]  # lines added (install) or removed (remove)
    unchanged: list[KeyChange]  # already present (install); nothing for remove
    sha256_before: str  # of the file as found ("" when absent)
    sha256_after: str
    file_created: bool
    at: datetime
    by: str


def marker_for(contract_id: str) -> str:
    return f"{MARKER_PREFIX}{contract_id}"


def _change(line: str) -> KeyChange:
    found = find_public_key(line)
    if found is None:  # pragma: no cover - callers pass parsed lines
        raise RuntimeError("access: internal error: unparsed key line")
    key = found[1]
    return KeyChange(fingerprint=key.fingerprint, key_type=key.key_type, comment=key.comment)


def _check_public_key(text: str) -> tuple[str, SshPublicKey]:
    """Check a playbook public key line (options allowed); return (line, key), else UsageError.

    Options before the key (`from="10.0.0.0/8" ssh-ed25519 ...`) are kept as
    the playbook wrote them, so the provider can restrict its own access.
    """
    line = text.strip()
    if "\n" in line or "\r" in line or "\0" in line:  # one key, one authorized_keys line
        raise UsageError(f"provider public key {shown(line)!r}: must be a single line")
    found = find_public_key(line)
    if found is None:
        raise UsageError(
            f"provider public key {shown(line)!r}: expected `[options] TYPE BASE64 [comment]`"
        )
    problem = found[1].problem()
    if problem is not None:
        raise UsageError(f"provider public key {shown(line)!r}: {problem}")
    return line, found[1]


def _has_marker(line: str, marker: str) -> bool:
    found = find_public_key(line)
    return found is not None and marker in line.split()[found[0] + 2 :]


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _read(connector: HostConnector, path: str) -> bytes | None:
    """The file's bytes, or None when it does not exist (other errors propagate)."""
    try:
        return connector.read_file(path)
    except PermanentConnectorError as exc:
        if "no such file" in str(exc).lower():
            return None
        raise


def _on_host(connector: HostConnector, path: str) -> str:
    """`path` quoted for a command run on the host (under its root for a local sandbox host)."""
    return shlex.quote(connector.host_path(path))


def _stat(connector: HostConnector, path: str) -> tuple[int, int, int] | None:
    """(uid, gid, mode) of the file, so that a rewrite keeps them; None when unknown."""
    if not connector.has_shell():
        return None
    result = connector.run(f"stat -c '%u %g %a' -- {_on_host(connector, path)}", timeout_s=30)
    fields = result.stdout.split()
    if result.exit_status != 0 or len(fields) != 3:
        return None
    try:
        return int(fields[0]), int(fields[1]), int(fields[2], 8)
    except ValueError:
        return None


def _write(
    connector: HostConnector, path: str, data: bytes, before: tuple[int, int, int] | None
) -> None:
    """Rewrite the file through the connector; give it back its owner if the rewrite changed it.

    A missing `.ssh` folder of a new file is created 0700 first (when the
    account has a shell to run `mkdir`).
    """
    mode = before[2] if before else 0o600
    try:
        connector.write_file(path, data, mode)
    except PermanentConnectorError:
        if before is not None or not connector.has_shell():
            raise
        folder = os.path.dirname(path) or "/"
        connector.run(f"mkdir -p -m 700 -- {_on_host(connector, folder)}", timeout_s=30)
        connector.write_file(path, data, mode)
    if before is None or not connector.has_shell():
        return
    uid, gid, _ = before
    after = _stat(connector, path)
    if after is not None and (after[0], after[1]) != (uid, gid):
        result = connector.run(f"chown {uid}:{gid} -- {_on_host(connector, path)}", timeout_s=30)
        if result.exit_status != 0:
            raise PermanentConnectorError(
                f"{path}: rewritten but could not restore its owner {uid}:{gid}",
                host=connector.name,
            )


def _give_to(connector: HostConnector, path: str, owner: str) -> None:
    """Hand a file we created (and its `.ssh` folder) to the account that sshd reads it as."""
    folder = os.path.dirname(path)
    targets = [path] + ([folder] if os.path.basename(folder) == ".ssh" else [])
    quoted = " ".join(_on_host(connector, t) for t in targets)
    result = connector.run(f"chown {shlex.quote(owner)}: -- {quoted}", timeout_s=30)
    if result.exit_status != 0:
        raise PermanentConnectorError(
            f"{path}: created but could not give it to {owner!r}", host=connector.name
        )


def install_provider_keys(
    connector: HostConnector,
    authorized_keys_path: str,
    public_keys: Sequence[str],
    contract_id: str,
    *,
    owner: str | None = None,
    actor: str | None = None,
) -> AccessRecord:
    """Append the provider's keys to `authorized_keys`, each marked `handover:<contract>`.

    A key already present with this contract's marker is left alone, so a
    second run changes nothing (and writes nothing). The client's lines are
    kept byte for byte; a missing final newline is added before our lines.
    An existing file keeps its mode and owner; a file created here is 0600
    and, when `owner` (the account) is given, handed to that account with
    its `.ssh` folder. Raises UsageError for a malformed public key,
    ConnectorError from the host.
    """
    marker = marker_for(contract_id)
    wanted = [_check_public_key(k) for k in public_keys]
    before_stat = _stat(connector, authorized_keys_path)
    original = _read(connector, authorized_keys_path)
    data = original or b""
    text_lines = data.decode("utf-8", "replace").splitlines()
    present = set()
    for existing in text_lines:
        found = find_public_key(existing)
        if found is not None and _has_marker(existing, marker):
            present.add((found[1].key_type, found[1].blob))
    added: list[KeyChange] = []
    unchanged: list[KeyChange] = []
    new_lines: list[str] = []
    for line, key in wanted:
        marked = line if marker in line.split() else f"{line} {marker}"
        if (key.key_type, key.blob) in present:
            unchanged.append(_change(marked))
            continue
        present.add((key.key_type, key.blob))
        new_lines.append(marked)
        added.append(_change(marked))
    result = data
    if new_lines:
        if result and not result.endswith(b"\n"):
            result += b"\n"
        result += "".join(f"{line}\n" for line in new_lines).encode("utf-8")
        _write(connector, authorized_keys_path, result, before_stat)
        if original is None and owner:
            _give_to(connector, authorized_keys_path, owner)
    return AccessRecord(
        contract_id=contract_id,
        host=connector.name,
        path=authorized_keys_path,
        action="install",
        marker=marker,
        changed=added,
        unchanged=unchanged,
        sha256_before=_sha256(original) if original is not None else "",
        sha256_after=_sha256(result),
        file_created=original is None and bool(new_lines),
        at=datetime.now(UTC),
        by=actor or default_actor(),
    )


def remove_provider_keys(
    connector: HostConnector,
    authorized_keys_path: str,
    contract_id: str,
    *,
    actor: str | None = None,
) -> AccessRecord:
    """Remove every `authorized_keys` line marked `handover:<contract>`, and only those.

    Other lines (the client's, other contracts') are kept byte for byte. A
    file without such lines is not rewritten; an absent file is recorded as such.
    """
    marker = marker_for(contract_id)
    before_stat = _stat(connector, authorized_keys_path)
    original = _read(connector, authorized_keys_path)
    data = original or b""
    kept: list[bytes] = []
    removed: list[KeyChange] = []
    for raw in data.splitlines(keepends=True):
        line = raw.decode("utf-8", "replace")
        if _has_marker(line, marker):
            removed.append(_change(line))
        else:
            kept.append(raw)
    result = b"".join(kept)
    if removed:
        _write(connector, authorized_keys_path, result, before_stat)
    return AccessRecord(
        contract_id=contract_id,
        host=connector.name,
        path=authorized_keys_path,
        action="remove",
        marker=marker,
        changed=removed,
        unchanged=[],
        sha256_before=_sha256(original) if original is not None else "",
        sha256_after=_sha256(result) if original is not None else "",
        file_created=False,
        at=datetime.now(UTC),
        by=actor or default_actor(),
    )


# --- login checks --------------------------------------------------------------------------


def _load_pkey(private_key: Secret | bytes) -> paramiko.PKey:
    import paramiko

    data = private_key.reveal() if isinstance(private_key, Secret) else private_key
    text = data.decode("ascii", "replace")
    for cls in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey):
        try:
            return cls.from_private_key(io.StringIO(text))
        except (paramiko.SSHException, ValueError):
            continue
    raise UsageError("provider private key: not an unencrypted OpenSSH/PEM private key")


def try_login(
    host: str,
    port: int,
    user: str,
    private_key: Secret | bytes,
    known_hosts: Path,
    *,
    timeout_s: float = 10.0,
) -> bool:
    """True when the server accepts the key, False when it refuses it.

    The host key must be in `known_hosts` (RejectPolicy, no agent, no key
    lookup). Raises HostKeyMismatch for an unknown or changed host key and
    TransientConnectorError when the host cannot be reached: neither proves
    anything about the key.
    """
    import paramiko

    where = f"{host}:{port}"
    pkey = _load_pkey(private_key)
    client = paramiko.SSHClient()
    try:
        client.load_host_keys(str(local_copy(known_hosts)))  # another worker's pins too
    except OSError as exc:
        raise UsageError(f"{known_hosts}: cannot read known_hosts: {exc.strerror}") from exc
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    try:
        client.connect(
            host,
            port=port,
            username=user,
            pkey=pkey,
            allow_agent=False,
            look_for_keys=False,
            timeout=timeout_s,
            banner_timeout=timeout_s,
            auth_timeout=timeout_s,
        )
    except paramiko.AuthenticationException:
        return False
    except paramiko.BadHostKeyException as exc:
        raise HostKeyMismatch(
            f"host key {fingerprint(exc.key.asbytes())} does not match known_hosts "
            f"({fingerprint(exc.expected_key.asbytes())})",
            host=where,
        ) from exc
    except paramiko.SSHException as exc:
        if "not found in known_hosts" in str(exc):
            raise HostKeyMismatch(f"host key not in {known_hosts}", host=where) from exc
        raise TransientConnectorError(f"SSH failure: {exc}", host=where) from exc
    except OSError as exc:
        raise TransientConnectorError(f"cannot connect: {exc}", host=where) from exc
    finally:
        client.close()
    return True


def verify_key_refused(
    host: str, port: int, user: str, private_key: Secret | bytes, known_hosts: Path
) -> bool:
    """True only when the server refuses the provider key (after `remove_provider_keys`)."""
    return not try_login(host, port, user, private_key, known_hosts)
