"""The keys a playbook names, loaded: who opens the bundle and the backups, who signs.

Loaded by the code that uses them, at the last moment: keys are never task
inputs or results. Recipients files are read relative to the working
directory, as the playbook's other paths are.
"""

from __future__ import annotations

from pathlib import Path

from handover.bundle.age import Identity, Recipient, parse_identities, parse_recipient
from handover.bundle.sshsig import SigningKey
from handover.contract.playbook import Playbook
from handover.errors import UsageError
from handover.secrets.references import resolve_secret


def bundle_recipients(playbook: Playbook) -> list[Recipient]:
    """Who can open the exit bundle: the client and/or the new provider."""
    return [parse_recipient(r) for r in playbook.reversibility.load_recipients(Path.cwd())]


def backup_recipients(playbook: Playbook) -> list[Recipient]:
    """Who can open the provider's backups: the provider's backup keys."""
    backups = playbook.require_backups()
    return [parse_recipient(r) for r in backups.load_recipients(Path.cwd())]


def backup_identities(playbook: Playbook) -> list[Identity]:
    if playbook.backups is None or not playbook.backups.identity:
        raise UsageError(f"{playbook.contract_id}: backups.identity is not set")
    ref = playbook.backups.identity
    return parse_identities(resolve_secret(ref).reveal(), ref)


def signing_key(playbook: Playbook) -> SigningKey:
    """The provider's signing key, from the playbook's reference (errors name the reference)."""
    ref = playbook.reversibility.signing_key
    return SigningKey.from_openssh(resolve_secret(ref).reveal(), ref)
