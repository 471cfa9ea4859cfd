"""The playbook's backups.target: the store it opens, and where one contract's backups lie."""

from __future__ import annotations

from pathlib import Path

from handover.connectors.s3.backup import S3BackupStore
from handover.contract.perimeter import S3Settings
from handover.operations.backup import LocalBackupStore
from handover.operations.backup_target import contract_backups, open_backup_store


def test_a_folder_target(tmp_path: Path) -> None:
    store = open_backup_store(str(tmp_path / "backups"), None)
    assert isinstance(store, LocalBackupStore) and store.folder == tmp_path / "backups"
    assert contract_backups(str(tmp_path / "backups"), "acme") == tmp_path / "backups" / "acme"


def test_an_s3_target_uses_the_contracts_s3_settings() -> None:
    settings = S3Settings(endpoint_url="http://127.0.0.1:9", region="eu-west-3")
    store = open_backup_store("s3://provider-backups/handover", settings)
    assert isinstance(store, S3BackupStore)
    assert store.describe() == "s3://provider-backups/handover/"
    assert store.client.meta.endpoint_url == "http://127.0.0.1:9"
    assert contract_backups("s3://provider-backups/handover/", "acme") == (
        "s3://provider-backups/handover/acme/"
    )
    assert contract_backups("s3://provider-backups", "acme") == "s3://provider-backups/acme/"
