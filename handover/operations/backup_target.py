"""The playbook's `backups.target`, read in one place: a folder, or an `s3://bucket/prefix`.

The backup tasks open the store it names (`open_backup_store`, or
`playbook_backup_store` for the playbook's own section); the erasure
at exit deletes one contract's part of it (`contract_backups`). Both decide
here which kind of target it is, so they cannot disagree on where backups are.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from handover.operations.backup import BackupStore, LocalBackupStore

if TYPE_CHECKING:
    from handover.connectors.s3.client import S3SettingsLike
    from handover.contract.playbook import Playbook

S3_SCHEME = "s3://"


def open_backup_store(target: str, s3_settings: S3SettingsLike | None) -> BackupStore:
    """The store `target` names: an S3 prefix (with the contract's S3 settings) or a folder."""
    if target.startswith(S3_SCHEME):
        # Imported here: boto3 is loaded only for contracts that keep backups in S3.
        from handover.connectors.s3.backup import s3_backup_store_from_url

        return s3_backup_store_from_url(target, settings=s3_settings)
    return LocalBackupStore(Path(target))


def playbook_backup_store(playbook: Playbook) -> BackupStore:
    """The store of the playbook's backups section; UsageError when the playbook has none."""
    return open_backup_store(playbook.require_backups().target, playbook.perimeter.s3)


def contract_backups(target: str, contract: str) -> Path | str:
    """Where one contract's backups lie in `target`: a folder, or an `s3://bucket/prefix/` URL.

    Every backup of the contract is named `<contract>/...` in the store
    (`handover.operations.backup.backup_prefix`).
    """
    if target.startswith(S3_SCHEME):
        return f"{target.rstrip('/')}/{contract}/"
    return Path(target).absolute() / contract
