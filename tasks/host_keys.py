"""First contact with SSH hosts: record their keys once a human has confirmed them."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from prefect import task
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel, ConfigDict

from handover.contract.loader import load_playbook


class PresentedHostKey(BaseModel):
    """The key an SSH host presents at first contact, next to the one the playbook pins."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str
    address: str  # address:port
    presented: str  # SHA256 fingerprint
    playbook: str | None  # the pinned fingerprint, if the playbook has one
    agrees: Literal["True", "False"] | None  # as the confirmation table shows it; None: not pinned


def agreement(pinned: str | None, presented: str) -> Literal["True", "False"] | None:
    """Whether the presented key is the pinned one (None when the playbook pins none)."""
    if pinned is None:
        return None
    return "True" if pinned == presented else "False"


@task(cache_policy=NO_CACHE, task_run_name="fetch host keys")
def first_contact_keys(playbook_path: str) -> list[PresentedHostKey]:
    """The key each SSH host presents now, next to the one the playbook pins (if any)."""
    from handover.connectors.ssh.first_contact import first_contact_fingerprint

    playbook = load_playbook(Path(playbook_path))
    rows: list[PresentedHostKey] = []
    for host in playbook.hosts:
        if host.transport != "ssh":
            continue
        assert host.address is not None
        presented = first_contact_fingerprint(host.address, host.port)
        rows.append(
            PresentedHostKey(
                host=host.name,
                address=f"{host.address}:{host.port}",
                presented=presented,
                playbook=host.host_key,
                agrees=agreement(host.host_key, presented),
            )
        )
    return rows


@task(cache_policy=NO_CACHE, task_run_name="pin host keys")
def pin_host_keys(playbook_path: str, rows: list[PresentedHostKey]) -> str:
    """Record the confirmed keys in the playbook's known_hosts; return its path."""
    from handover.connectors.ssh.first_contact import pin_first_contact

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
