"""Erasure of the provider's copies after the client's acceptance, with a signed certificate."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from handover.playbook import load_playbook


@task(cache_policy=NO_CACHE, task_run_name="erase provider copies")
def erase_copies(playbook_path: str, bundle_name: str, delivery: dict[str, Any]) -> dict[str, Any]:
    """Delete the provider's copies of the contract's data; return the signed certificate."""
    from tasks.erasure_targets import erase_and_certify

    playbook = load_playbook(Path(playbook_path))
    return erase_and_certify(playbook, bundle_name, delivery)
