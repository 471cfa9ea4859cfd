"""The keys a playbook names, loaded: who opens the bundle and the backups, who signs.

Loaded by the code that uses them, at the last moment: keys are never task
inputs or results. Recipients files are read relative to the working
directory, as the playbook's other paths are.
"""

from __future__ import annotations

from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from handover.bundle.age import Identity, Recipient, parse_identities, parse_recipient
from handover.bundle.sshsig import SigningKey
from handover.contract.playbook import Playbook
from handover.errors import KeyFormatError, UsageError
from handover.secrets.references import resolve_secret


def bundle_recipients(playbook: Playbook) -> list[Recipient]:
    """Who can open the exit bundle: the client and/or the new provider."""
    return [parse_recipient(r) for r in playbook.reversibility.load_recipients(Path.cwd())]


def backup_recipients(playbook: Playbook) -> list[Recipient]:
    if playbook.backups is None:
        raise UsageError(f"{playbook.contract_id}: the playbook has no backups section")
    return [parse_recipient(r) for r in playbook.backups.load_recipients(Path.cwd())]


def backup_identities(playbook: Playbook) -> list[Identity]:
    if playbook.backups is None or not playbook.backups.identity:
        raise UsageError(f"{playbook.contract_id}: backups.identity is not set")
    ref = playbook.backups.identity
    return parse_identities(resolve_secret(ref).reveal(), ref)


def signing_key(playbook: Playbook) -> SigningKey:
    """The provider's signing key, from the playbook's reference."""
    ref = playbook.reversibility.signing_key
    data = resolve_secret(ref).reveal()
    try:
        key = serialization.load_ssh_private_key(data, password=None)
    except (TypeError, ValueError, UnsupportedAlgorithm) as exc:
        raise KeyFormatError(f"{ref}: not an unencrypted OpenSSH private key") from exc
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise KeyFormatError(f"{ref}: the signing key must be Ed25519")
    return SigningKey(key)
