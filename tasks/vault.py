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
from handover.exit.credentials_export import CredentialsExport, export_vault


@task(cache_policy=NO_CACHE, task_run_name="export credentials of {bundle_name}")
def export_credentials(playbook_path: str, bundle_name: str) -> CredentialsExport:
    """Export the vault to KDBX and its password encrypted to the client; paths and the record.

    The heap is trimmed first: KeePass's key derivation (Argon2, 64 MiB)
    comes right after the datasets' exports, and what was freed after their
    own trims (the tasks' results, their thread pools ending) would stay
    resident under the new peak (~10 MiB in a 1 GiB exit of 100,000 files).
    """
    trim_heap()
    return export_vault(load_playbook(Path(playbook_path)), bundle_name)
