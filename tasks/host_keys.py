"""First contact with SSH hosts: record their keys once a human has confirmed them."""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from handover.contract.loader import load_playbook


@task(cache_policy=NO_CACHE, task_run_name="fetch host keys")
def first_contact_keys(playbook_path: str) -> list[dict[str, str | None]]:
    """The key each SSH host presents now, next to the one the playbook pins (if any)."""
    from handover.connectors.ssh.first_contact import first_contact_fingerprint

    playbook = load_playbook(Path(playbook_path))
    rows: list[dict[str, str | None]] = []
    for host in playbook.hosts:
        if host.transport != "ssh":
            continue
        assert host.address is not None
        presented = first_contact_fingerprint(host.address, host.port)
        rows.append(
            {
                "host": host.name,
                "address": f"{host.address}:{host.port}",
                "presented": presented,
                "playbook": host.host_key,
                "agrees": None if host.host_key is None else str(host.host_key == presented),
            }
        )
    return rows


@task(cache_policy=NO_CACHE, task_run_name="pin host keys")
def pin_host_keys(playbook_path: str, rows: list[dict[str, str | None]]) -> str:
    """Record the confirmed keys in the contract's known_hosts; return its path."""
    from handover.connectors.ssh.first_contact import pin_first_contact

    playbook = load_playbook(Path(playbook_path))
    confirmed = {r["host"]: r["presented"] for r in rows}
    path = None
    for host in playbook.hosts:
        if host.transport == "ssh" and host.name in confirmed:
            # The key must still be the one the human confirmed, or nothing is pinned.
            path = pin_first_contact(host, playbook.contract_id, expected=confirmed[host.name])
    return str(path)
