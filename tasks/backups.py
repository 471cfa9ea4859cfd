"""Backup tasks: one dataset each; the store is a folder or an S3 prefix from the playbook."""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import task_run
from prefect.tasks import exponential_backoff

from handover.contract.keys import backup_identities, backup_recipients
from handover.contract.loader import load_playbook
from handover.errors import TransientConnectorError
from handover.operations.alerts import backup_failed_alert
from handover.operations.backup import BackupRecord, prune, run_backup
from handover.operations.backup_target import playbook_backup_store
from handover.operations.restore_check import RestoreCheckResult, restore_check
from tasks.alerts import emit_alerts
from tasks.hosts import open_dataset
from tasks.runtime import only_transient

BACKUP_RETRIES = 2


@task(
    retries=BACKUP_RETRIES,
    retry_delay_seconds=exponential_backoff(backoff_factor=2),
    retry_condition_fn=only_transient,
    cache_policy=NO_CACHE,
    task_run_name="backup {dataset_name}",
)
def backup_dataset(playbook_path: str, dataset_name: str) -> BackupRecord:
    """Seal one dataset into the backup store; returns its record (sizes and hashes only)."""
    playbook = load_playbook(Path(playbook_path))
    dataset = next(d for d in playbook.datasets if d.name == dataset_name)
    store = playbook_backup_store(playbook)
    recipients = backup_recipients(playbook)
    try:
        with open_dataset(playbook, dataset) as source:
            return run_backup(store, playbook.contract_id, dataset.name, source, recipients)
    except Exception as exc:
        if _final_attempt(exc):
            error = f"{type(exc).__name__}: {exc}"
            emit_alerts(playbook, [backup_failed_alert(playbook.contract_id, dataset.name, error)])
        raise


def _final_attempt(exc: Exception) -> bool:
    """Whether this failure ends the task (no retry follows): only then is it news.

    A transient error is retried (`only_transient`) up to BACKUP_RETRIES times.
    """
    if not isinstance(exc, TransientConnectorError):
        return True
    return int(task_run.run_count) > BACKUP_RETRIES


@task(cache_policy=NO_CACHE, task_run_name="prune backups of {dataset_name}")
def prune_backups(playbook_path: str, dataset_name: str) -> list[str]:
    """Apply the playbook's retention; returns the names deleted."""
    playbook = load_playbook(Path(playbook_path))
    backups = playbook.require_backups()
    return prune(
        playbook_backup_store(playbook),
        playbook.contract_id,
        dataset_name,
        backups.retention_days,
        backups.keep_last,
    )


@task(cache_policy=NO_CACHE, task_run_name="restore check of {dataset_name}")
def check_restore(
    playbook_path: str, dataset_name: str, record: BackupRecord
) -> RestoreCheckResult:
    """Decrypt one backup and check every file's hash, writing no plaintext."""
    playbook = load_playbook(Path(playbook_path))
    return restore_check(playbook_backup_store(playbook), record, backup_identities(playbook))
