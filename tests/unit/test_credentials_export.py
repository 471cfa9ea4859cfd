"""The credentials handed back at exit: KDBX in the private export folder, password encrypted."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from pykeepass import PyKeePass

import handover.exit.credentials_export as credentials_export
from handover.bundle.age import AgeReader, X25519Identity
from handover.contract.loader import load_playbook
from handover.exit.credentials_export import KdbxExported, NothingToExport, export_vault
from handover.secrets.vault import CreatedBy, Vault, VaultEntry
from handover.state.layout import ContractPaths

PLAYBOOK = Path("playbooks/examples/acme.yaml")


@pytest.fixture(autouse=True)
def _vault_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HANDOVER_VAULT_KEY", str(X25519Identity.generate()))


def test_the_vault_is_exported_and_its_password_encrypted_to_the_client(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = X25519Identity.generate()
    shown: list[str] = []
    monkeypatch.setattr(credentials_export, "bundle_recipients", lambda _: [client.recipient()])
    monkeypatch.setattr(credentials_export, "_show_once", lambda _c, pw: shown.append(pw))
    playbook = load_playbook(PLAYBOOK)
    vault = Vault(playbook.contract_id)
    vault.add(VaultEntry(name="web01-ops", group="Servers/Web"), "pw1")
    vault.add(VaultEntry(name="backup-svc", created_by=CreatedBy.PROVIDER), "pw2")

    exported = export_vault(playbook, "bundle-1")

    folder = ContractPaths(playbook.contract_id).credentials_export_dir("bundle-1")
    assert exported.kdbx == str(folder / "credentials.kdbx")
    assert exported.password_file == str(folder / "credentials-password.txt.age")
    assert folder.stat().st_mode & 0o777 == 0o700
    record = exported.record
    assert isinstance(record, KdbxExported)
    assert (record.entries, record.created_by_provider) == (2, 1)
    assert record.groups == ["", "Servers/Web"]
    blob = Path(exported.password_file).read_bytes()
    with AgeReader(io.BytesIO(blob), [client]) as reader:
        password = reader.read().decode().strip()
    assert shown == [password] and password not in record.model_dump_json()
    kdbx = PyKeePass(exported.kdbx, password=password)
    assert {e.title for e in kdbx.entries} == {"web01-ops", "backup-svc"}


def test_nothing_to_export_without_a_vault() -> None:
    exported = export_vault(load_playbook(PLAYBOOK), "bundle-1")
    assert isinstance(exported.record, NothingToExport)
    assert (exported.kdbx, exported.password_file) == (None, None)
