"""Credentials handed back at exit: the vault exported to KDBX, its password delivered apart.

The export itself is `handover.exit.credentials_export`: the password never
goes through Prefect (not a parameter, not a result, not a log line).
"""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from handover.bundle.buffers import trim_heap
from handover.contract.loader import load_playbook
from handover.exit.credentials_export import (
    CredentialsExport,
    export_vault,
    prepare_export_key,
)
from handover.secrets.kdbx_key import PREPARED_KEYS


def prepare_credentials_key(contract_id: str) -> bool:
    """Derive credentials.kdbx's key ahead of its export (see `prepare_export_key`).

    A plain call in the flow's process, not a task: the key must stay in this
    process's memory, and a task's result would be recorded. The heap is
    trimmed first so that the Argon2's 64 MiB lands on as little as possible
    (not when a key waits already: nothing is derived then).
    """
    if contract_id not in PREPARED_KEYS:
        trim_heap()
    return prepare_export_key(contract_id)


@task(cache_policy=NO_CACHE, task_run_name="export credentials of {bundle_name}")
def export_credentials(playbook_path: str, bundle_name: str) -> CredentialsExport:
    """Export the vault to KDBX and its password encrypted to the client; paths and the record.

    The key is normally derived already (`prepare_credentials_key`). When it
    is not (a run resumed after the datasets' exports), KeePass's Argon2
    (64 MiB) runs here, after the exports: the heap is trimmed first, so that
    what they freed does not stay resident under that peak (~10 MiB in a
    1 GiB exit of 100,000 files).
    """
    trim_heap()
    return export_vault(load_playbook(Path(playbook_path)), bundle_name)
