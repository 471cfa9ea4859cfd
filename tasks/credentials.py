"""Tasks around the contract's credentials: received, handed back. Values never leave the task."""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from handover.contract.loader import load_playbook
from handover.errors import HandoverError
from handover.secrets.references import resolve_secret


@task(cache_policy=NO_CACHE, task_run_name="check credential references")
def missing_credentials(playbook_path: str) -> list[str]:
    """Every credential reference of the playbook that does not resolve, as `field: ref (why)`.

    Each reference is resolved here and its value dropped at once: the
    result names references only.
    """
    playbook = load_playbook(Path(playbook_path))
    missing: list[str] = []
    for field_path, ref in playbook.secret_refs():
        try:
            resolve_secret(ref)
        except HandoverError as exc:
            why = str(exc).split(": ", 1)[-1]
            missing.append(f"{field_path}: {ref} ({why})")
    return missing
