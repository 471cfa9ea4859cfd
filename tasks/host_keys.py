"""First contact with SSH hosts: record their keys once a human has confirmed them."""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from handover.connectors.ssh.first_contact import (
    PresentedHostKey,
    pin_first_contact,
    presented_host_keys,
)
from handover.contract.loader import load_playbook


@task(cache_policy=NO_CACHE, task_run_name="fetch host keys")
def first_contact_keys(playbook_path: str) -> list[PresentedHostKey]:
    """The key each SSH host presents now, next to the one the playbook pins (if any)."""
    return presented_host_keys(load_playbook(Path(playbook_path)).hosts)


@task(cache_policy=NO_CACHE, task_run_name="pin host keys")
def pin_host_keys(playbook_path: str, rows: list[PresentedHostKey]) -> str:
    """Record the confirmed keys in the playbook's known_hosts; return its path."""
    playbook = load_playbook(Path(playbook_path))
    confirmed = {r.host: r.presented for r in rows}
    known_hosts = playbook.known_hosts_file()
    path = None
    for host in playbook.hosts:
        if host.transport == "ssh" and host.name in confirmed:
            # The key must still be the one the human confirmed, or nothing is pinned.
            path = pin_first_contact(
                host, playbook.contract_id, expected=confirmed[host.name], known_hosts=known_hosts
            )
    return str(path)
