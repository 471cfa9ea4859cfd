"""The keys a playbook names, loaded: errors name the reference; one check of the backups."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from handover.bundle.sshsig import SigningKey
from handover.contract.keys import backup_recipients, signing_key
from handover.contract.loader import load_playbook
from handover.contract.playbook import Playbook
from handover.errors import KeyFormatError, UsageError
from handover.operations.backup import LocalBackupStore
from handover.operations.backup_target import playbook_backup_store

DEMO = Path("playbooks/examples/demo.yaml")


def _signed_with(playbook: Playbook, ref: str) -> Playbook:
    reversibility = playbook.reversibility.model_copy(update={"signing_key": ref})
    return playbook.model_copy(update={"reversibility": reversibility})


def test_the_signing_key_is_read_from_its_reference(tmp_path: Path) -> None:
    key = SigningKey.generate()
    (tmp_path / "signing").write_bytes(key.private_openssh())
    playbook = _signed_with(load_playbook(DEMO), f"file:{tmp_path / 'signing'}")
    assert signing_key(playbook).public_line() == key.public_line()


def test_a_bad_signing_key_is_named_by_its_reference(tmp_path: Path) -> None:
    (tmp_path / "garbage").write_text("hello")
    ref = f"file:{tmp_path / 'garbage'}"
    with pytest.raises(KeyFormatError, match=f"^{re.escape(ref)}: not an OpenSSH private key"):
        signing_key(_signed_with(load_playbook(DEMO), ref))


def test_a_playbook_without_backups_is_refused_by_the_store_and_the_recipients() -> None:
    playbook = load_playbook(DEMO).model_copy(update={"backups": None})
    for needs_backups in (playbook_backup_store, backup_recipients):
        with pytest.raises(UsageError, match=r"^demo-estate: the playbook has no backups section$"):
            needs_backups(playbook)


def test_the_backup_store_is_the_playbook_target() -> None:
    playbook = load_playbook(DEMO)
    store = playbook_backup_store(playbook)
    assert isinstance(store, LocalBackupStore)
    assert store.folder == Path(".handover/demo/backups")
