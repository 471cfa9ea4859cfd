"""The OpenSSH client as a bulk carrier: its command line, its private folder, when to use it.

paramiko decrypts and moves every byte in the process that also parses,
hashes and encrypts the stream, much of it holding the GIL; an SSH pull was
1.5-1.6x `ssh host tar | age` (issue 16). The `ssh` binary does that work
in C, in a process of its own, so the data streams of a pull (a remote
`tar`, a dump) run through it while paramiko keeps the control connection:
host key checking, authentication, commands, small files. An SFTP-only
account's SFTP session goes through it too (`openssh_sftp.py`).

Trust is not re-decided here. The control connection has already checked
the host key against the playbook's pin or the contract's known_hosts
(`trust.py`); the bulk connection accepts exactly that key and nothing else:
a generated known_hosts holding that one key under a fixed alias
(`HostKeyAlias`, so address spelling, port and case never matter),
`StrictHostKeyChecking=yes` and `HostKeyAlgorithms` restricted to its type.
Nothing of the user's or the system's SSH setup is read: `-F /dev/null`,
`IdentitiesOnly=yes` with the one key file, `IdentityAgent=none`,
`BatchMode=yes`, no multiplexing, no forwarding.

The private key goes to a 0600 file in a private (0700) folder made for
one stream, removed when the stream has authenticated or ends (see
`openssh_stream.py`); it is never on a command line, in the environment or
in a message. Password and agent-only logins stay on paramiko.

`HANDOVER_SSH_BULK` chooses: `auto` (default: `ssh` when found on PATH and
the credential is a key, else paramiko), `openssh` (required: a missing
`ssh` or a password login is a usage error) or `paramiko`.
"""

from __future__ import annotations

import base64
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import handover.sshkeys as sshkeys
from handover.connectors.ssh.reach import BANNER_TIMEOUT_S
from handover.connectors.ssh.target import SSHTarget, read_key_file
from handover.errors import UsageError

if TYPE_CHECKING:
    import paramiko

__all__ = [
    "BULK_ENV",
    "HOST_ALIAS",
    "BulkFolder",
    "BulkMode",
    "PinnedHostKey",
    "bulk_mode",
    "child_env",
    "find_ssh",
    "host_key_algorithms",
    "known_hosts_text",
    "pinned_host_keys",
    "private_key_bytes",
    "ssh_argv",
]

BULK_ENV = "HANDOVER_SSH_BULK"
BulkMode = Literal["auto", "openssh", "paramiko"]
_MODES: tuple[BulkMode, ...] = ("auto", "openssh", "paramiko")

#: the only name in the generated known_hosts; `ssh` looks the host up by it
HOST_ALIAS = "handover-pinned-host"
SERVER_ALIVE_S = 30  # keepalive over the encrypted channel, as the control connection's
SERVER_ALIVE_COUNT = 4  # unanswered keepalives before `ssh` gives up on a dead peer

# AES-GCM first, as on the paramiko path (transport.py): with AES-NI it costs `ssh` (and the
# host's sshd) about 0.7x the CPU of chacha20-poly1305, OpenSSH's default (measured on
# loopback). The rest is OpenSSH's default list, for hosts that offer no GCM.
CIPHERS = (
    "aes128-gcm@openssh.com,aes256-gcm@openssh.com,chacha20-poly1305@openssh.com,"
    "aes128-ctr,aes192-ctr,aes256-ctr"
)

# Signature algorithms `ssh` may accept for a host key of each type. RSA keys sign with
# SHA-2 only (SHA-1 `ssh-rsa` signatures are refused by default since OpenSSH 8.8).
_RSA_ALGORITHMS = "rsa-sha2-512,rsa-sha2-256"


def bulk_mode(environ: Mapping[str, str] | None = None) -> BulkMode:
    """The bulk path asked for in `HANDOVER_SSH_BULK` (default `auto`); UsageError otherwise."""
    env = os.environ if environ is None else environ
    value = env.get(BULK_ENV, "").strip().lower() or "auto"
    for mode in _MODES:
        if value == mode:
            return mode
    raise UsageError(f"{BULK_ENV}={value!r}: expected one of {', '.join(_MODES)}")


def find_ssh() -> str | None:
    """The `ssh` client on PATH, or None (then paramiko carries the data)."""
    return shutil.which("ssh")


@dataclass(frozen=True)
class PinnedHostKey:
    """The host key the control connection verified: the only key the bulk connection accepts."""

    key_type: str  # as known_hosts spells it: ssh-ed25519, ecdsa-sha2-nistp256, ssh-rsa
    base64: str

    @classmethod
    def from_pkey(cls, key: paramiko.PKey) -> PinnedHostKey:
        return cls(key.get_name(), key.get_base64())

    @classmethod
    def from_public(cls, key: sshkeys.SshPublicKey) -> PinnedHostKey:
        return cls(key.key_type, base64.b64encode(key.blob).decode("ascii"))

    @property
    def fingerprint(self) -> str:
        return sshkeys.fingerprint(base64.b64decode(self.base64))


def pinned_host_keys(path: Path, address: str, port: int) -> dict[str, PinnedHostKey]:
    """The keys known_hosts `path` pins for the host, by type: `known_hosts.known_keys`' answer.

    Read without paramiko when `sshkeys.known_hosts_keys` can decide (a file
    of plain host key lines, as `ssh` and `ssh-keyscan` write them), so a
    seal carried by `ssh` never imports it; any other file, and any error
    reading it, goes to `known_hosts.known_keys`, the reference.
    """
    from handover.state.shared_blob import local_copy

    name = sshkeys.known_hosts_name(address, port)
    try:
        if not local_copy(path).exists():
            return {}
        with open(path) as handle:  # text mode, as paramiko's HostKeys.load reads it
            keys = sshkeys.known_hosts_keys(handle, name)
    except (OSError, ValueError):
        keys = None
    if keys is not None:
        return {kind: PinnedHostKey.from_public(key) for kind, key in keys.items()}
    from handover.connectors.ssh.known_hosts import known_keys

    return {
        kind: PinnedHostKey.from_pkey(key) for kind, key in known_keys(path, address, port).items()
    }


def known_hosts_text(key: PinnedHostKey) -> str:
    """The generated known_hosts: one line, the verified key under HOST_ALIAS."""
    return f"{HOST_ALIAS} {key.key_type} {key.base64}\n"


def host_key_algorithms(key_type: str) -> str:
    """`HostKeyAlgorithms` for the pinned key: its own type only (RSA: its SHA-2 signatures)."""
    return _RSA_ALGORITHMS if key_type == "ssh-rsa" else key_type


def ssh_argv(
    ssh: str,
    target: SSHTarget,
    key: PinnedHostKey,
    folder: Path,
    command: str,
    *,
    connect_timeout_s: float = BANNER_TIMEOUT_S,
    subsystem: bool = False,
) -> list[str]:
    """The `ssh` command line running `command` on `target`, trusting `key` only.

    `folder` holds `known_hosts` and `id` (see `BulkFolder`). `command` is
    the one argument after the host, so `ssh` sends it unchanged as the
    exec request (the same string paramiko sends). No secret is on it.
    With `subsystem`, `command` names a subsystem (`sftp`) instead (`-s`).
    """
    options = {
        "BatchMode": "yes",
        "StrictHostKeyChecking": "yes",
        "HostKeyAlias": HOST_ALIAS,
        "UserKnownHostsFile": str(folder / "known_hosts"),
        "GlobalKnownHostsFile": "/dev/null",
        "HostKeyAlgorithms": host_key_algorithms(key.key_type),
        "CheckHostIP": "no",
        "UpdateHostKeys": "no",
        "VerifyHostKeyDNS": "no",
        "IdentityFile": str(folder / "id"),
        "IdentitiesOnly": "yes",
        "IdentityAgent": "none",
        "PreferredAuthentications": "publickey",
        "PubkeyAuthentication": "yes",
        "PasswordAuthentication": "no",
        "KbdInteractiveAuthentication": "no",
        "GSSAPIAuthentication": "no",
        "HostbasedAuthentication": "no",
        "ControlMaster": "no",
        "ControlPath": "none",
        "ForwardAgent": "no",
        "ForwardX11": "no",
        "ClearAllForwardings": "yes",
        "PermitLocalCommand": "no",
        "ProxyCommand": "none",
        "Ciphers": CIPHERS,
        "Compression": "no",
        "ConnectTimeout": str(max(1, round(connect_timeout_s))),
        "ServerAliveInterval": str(SERVER_ALIVE_S),
        "ServerAliveCountMax": str(SERVER_ALIVE_COUNT),
        "LogLevel": "INFO",  # its own failures (negotiation, refusals) explain themselves
    }
    argv = [ssh, "-F", "/dev/null", "-T", "-x", "-a", *(["-s"] if subsystem else [])]
    for name, value in options.items():
        argv += ["-o", f"{name}={value}"]
    argv += ["-p", str(target.port), "-l", target.user, "--", target.address, command]
    return argv


def child_env(folder: Path) -> dict[str, str]:
    """The environment of `ssh`: PATH and a HOME in the private folder, nothing inherited.

    Variables of the caller (which may hold the values of `env:` references)
    never reach the child.
    """
    return {"PATH": os.environ.get("PATH", os.defpath), "HOME": str(folder), "LC_ALL": "C"}


def private_key_bytes(target: SSHTarget) -> bytes | None:
    """The login key as `ssh` reads it, or None when the login is not a key `ssh` can use.

    None for password logins and for agent-only ones (paramiko then carries
    the data on its own connection). Resolved again here, at the last
    moment, from the same reference the control connection used.
    """
    if target.key_file is not None:
        data = read_key_file(target.key_file)
    elif target.credential is not None and target.auth == "key":
        from handover.secrets.references import resolve_secret

        data = resolve_secret(target.credential).reveal()
    else:
        return None
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        return None  # paramiko accepted it; let paramiko carry it
    lines = [line.rstrip("\r") for line in text.strip().splitlines()]
    return ("\n".join(lines) + "\n").encode("ascii")


class BulkFolder:
    """A private folder (0700) for one `ssh` run: its known_hosts and its key file (0600).

    `remove_key()` deletes the key as soon as it is no longer needed;
    `close()` deletes everything. The key bytes are written once and never
    copied elsewhere.
    """

    def __init__(self, key: PinnedHostKey, private_key: bytes) -> None:
        self.path = Path(tempfile.mkdtemp(prefix="handover-ssh-"))
        try:
            os.chmod(self.path, 0o700)
            self._write(self.path / "known_hosts", known_hosts_text(key).encode("ascii"), 0o600)
            self._write(self.path / "id", private_key, 0o600)
        except BaseException:
            self.close()
            raise

    @staticmethod
    def _write(path: Path, data: bytes, mode: int) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)

    def remove_key(self) -> None:
        (self.path / "id").unlink(missing_ok=True)

    def close(self) -> None:
        self.remove_key()
        shutil.rmtree(self.path, ignore_errors=True)
