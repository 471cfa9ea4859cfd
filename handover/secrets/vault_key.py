"""The provider's vault key: where it is found, how it is created, and its checks.

The vault key lives outside the repository and outside `.handover/`:

- `HANDOVER_VAULT_KEY` holds the key itself (`AGE-SECRET-KEY-1...`), or
- `HANDOVER_VAULT_KEY_FILE` names an age identity file, or
- the default `~/.config/handover/vault.key`, created 0600 by `handover vault init`.

A key file readable by group or others, or a key file inside `.handover/`
(which travels into backups and is erased at exit), is refused. An identity
file may hold several keys: the first encrypts, all of them decrypt, so the
key can be rolled over. Kept apart from the vault file's format
(`handover.secrets.vault`): this is about a file on the operator's machine,
that one about the contract's encrypted store.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from handover.errors import HandoverError, VaultError
from handover.state.home import handover_home

KEY_ENV = "HANDOVER_VAULT_KEY"
KEY_FILE_ENV = "HANDOVER_VAULT_KEY_FILE"
DEFAULT_KEY_FILE = Path("~/.config/handover/vault.key")


def default_key_file() -> Path:
    """The key file used when neither HANDOVER_VAULT_KEY nor HANDOVER_VAULT_KEY_FILE is set."""
    configured = os.environ.get(KEY_FILE_ENV)
    return Path(configured).expanduser() if configured else DEFAULT_KEY_FILE.expanduser()


def _check_key_location(path: Path) -> None:
    home = handover_home().resolve()
    resolved = path.expanduser().resolve()
    if resolved == home or home in resolved.parents:
        raise VaultError(
            f"{path}: the vault key must live outside {home} (it is backed up, bundled "
            f"and erased with the contract data); set {KEY_FILE_ENV} to a path outside it"
        )


def create_key_file(path: Path | None = None) -> tuple[Path, str]:
    """Create a new vault key file (0600) and return (path, its age recipient).

    Raises VaultError if the file already exists: a key is never overwritten,
    since every vault encrypted to it would become unreadable.
    """
    from handover.bundle.age import X25519Identity

    target = (path or default_key_file()).expanduser()
    _check_key_location(target)
    identity = X25519Identity.generate()
    recipient = str(identity.recipient())
    text = (
        f"# handover vault key, created {datetime.now(UTC).isoformat(timespec='seconds')}\n"
        f"# public key: {recipient}\n{identity}\n"
    )
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise VaultError(f"{target}: a vault key already exists; refusing to replace it") from exc
    except OSError as exc:
        raise VaultError(f"{target}: cannot create the vault key: {exc.strerror}") from exc
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(text)
    return target, recipient


@dataclass(frozen=True)
class VaultKey:
    """The provider's vault identities (first one encrypts) and where they came from."""

    identities: tuple[Any, ...]
    source: str

    def __repr__(self) -> str:
        return f"VaultKey(source={self.source!r})"

    @property
    def recipient(self) -> Any:
        return self.identities[0].recipient()


def load_vault_key() -> VaultKey:
    """Find and parse the vault key (environment, key file, default path).

    Raises VaultError naming where it looked; never quotes key material.
    """
    from handover.bundle.age import parse_identities

    inline = os.environ.get(KEY_ENV)
    if inline:
        data, source = inline.encode("utf-8"), f"${KEY_ENV}"
    else:
        path = default_key_file()
        source = str(path)
        if not path.exists():
            raise VaultError(
                f"no vault key at {path}: run `handover vault init`, or set {KEY_FILE_ENV} "
                f"(path to a key file) or {KEY_ENV} (the key itself)"
            )
        _check_key_location(path)
        mode = path.stat().st_mode
        if mode & 0o077:
            raise VaultError(
                f"{path}: vault key is readable by group or others (mode {mode & 0o777:o}); "
                f"run `chmod 600 {path}`"
            )
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise VaultError(f"{path}: cannot read the vault key: {exc.strerror}") from exc
    try:
        identities = parse_identities(data, source)
    except HandoverError as exc:
        raise VaultError(f"{source}: not a usable vault key: {exc}") from exc
    return VaultKey(tuple(identities), source)
