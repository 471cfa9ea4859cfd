"""Where and as whom to connect (`SSHTarget`), and the credential resolved at connect time.

Apart from the connector because the target is plain data that the streams,
the SFTP fallback and first contact name in their messages, and because
credential handling deserves one small place to audit: the reference is
resolved at the last moment and kept only as a paramiko key object (or a
password), and no message ever shows the key.

paramiko is imported only where a key is parsed: `handover seal ssh://...`
carried by the `ssh` binary never needs it (issue 16: importing it took
about 0.1 s of the time before `ssh` started).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from handover.errors import KeyFormatError, UsageError
from handover.sshkeys import known_hosts_name

if TYPE_CHECKING:
    import paramiko

    from handover.contract.perimeter import Host

__all__ = ["SSHTarget", "load_private_key", "resolve_credentials"]


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


def load_private_key(data: bytes, what: str, host: str) -> paramiko.PKey:
    """Parse an unencrypted OpenSSH/PEM private key; the message names `what`, never the key."""
    import paramiko

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


def read_key_file(path: Path) -> bytes:
    """The bytes of a key file named by the playbook, or one line saying why not."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise KeyFormatError(f"{path}: cannot read SSH key ({exc.strerror})") from exc


def resolve_credentials(target: SSHTarget) -> tuple[paramiko.PKey | None, str | None]:
    """Resolve the credential (at connect time, every time): a key object or a password."""
    from handover.secrets.references import resolve_secret

    if target.key_file is not None:
        data = read_key_file(target.key_file)
        return load_private_key(data, f"key file {target.key_file}", target.name), None
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
        load_private_key(secret.reveal(), f"credential {target.credential}", target.name),
        None,
    )
