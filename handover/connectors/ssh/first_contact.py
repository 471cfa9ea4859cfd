"""First contact with an SSH host: show the key it presents, then pin it once a human confirmed.

Outside any session on purpose: nothing authenticates and nothing is read,
only the host key is fetched (a key exchange alone). The checklist item
shows `first_contact_fingerprint` for a human to compare with what the client
reads on the host; `pin_first_contact` then records that exact key into the
contract's known_hosts, refusing one that changed in between.
`presented_host_keys` lists what every SSH host of a playbook presents, next
to the playbook's pins, for the table the human confirms.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict

from handover.connectors.ssh.known_hosts import (
    fetch_host_key,
    fingerprint,
    known_hosts_name,
    record_host_key,
)
from handover.connectors.ssh.target import SSHTarget
from handover.errors import HostKeyMismatch
from handover.sshkeys import normalize_fingerprint
from handover.state.layout import ContractPaths

if TYPE_CHECKING:
    from handover.contract.perimeter import Host

__all__ = [
    "PresentedHostKey",
    "agreement",
    "first_contact_fingerprint",
    "pin_first_contact",
    "presented_host_keys",
]


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


def first_contact_fingerprint(address: str, port: int = 22, *, timeout_s: float = 10.0) -> str:
    """The host key's `SHA256:...` fingerprint, fetched without authenticating.

    For the checklist item where a human compares it with what the client
    reads on the host. Raises TransientConnectorError when unreachable.
    """
    return fingerprint(fetch_host_key(address, port, timeout_s=timeout_s))


def presented_host_keys(hosts: Sequence[Host]) -> list[PresentedHostKey]:
    """The key each SSH host of `hosts` presents now, next to the one the playbook pins (if any).

    Local hosts are left out. Raises TransientConnectorError for a host that
    cannot be reached.
    """
    rows: list[PresentedHostKey] = []
    for host in hosts:
        if host.transport != "ssh":
            continue
        target = SSHTarget.from_host(host)
        presented = first_contact_fingerprint(target.address, target.port)
        rows.append(
            PresentedHostKey(
                host=host.name,
                address=f"{target.address}:{target.port}",
                presented=presented,
                playbook=host.host_key,
                agrees=agreement(host.host_key, presented),
            )
        )
    return rows


def pin_first_contact(
    host: Host,
    contract_id: str,
    *,
    expected: str | None = None,
    known_hosts: Path | None = None,
    timeout_s: float = 10.0,
) -> Path:
    """Record the key `host` presents into the contract known_hosts; return that file's path.

    Called once a human has confirmed the fingerprint shown by
    `first_contact_fingerprint`: pass it as `expected`, so a key that changed
    between the confirmation and now is refused (HostKeyMismatch) rather than
    pinned. A playbook pin, when present, must match too. An existing entry
    with another key is never replaced.
    """
    target = SSHTarget.from_host(host)
    path = known_hosts or ContractPaths(contract_id).known_hosts
    key = fetch_host_key(target.address, target.port, timeout_s=timeout_s)
    presented = fingerprint(key)
    for what, wanted in (("confirmed", expected), ("playbook", target.host_key)):
        if wanted is not None and normalize_fingerprint(wanted) != presented:
            raise HostKeyMismatch(
                f"host key of {known_hosts_name(target.address, target.port)} is {presented}, "
                f"not the {what} {normalize_fingerprint(wanted)}; nothing was pinned",
                host=target.name,
            )
    record_host_key(path, target.address, target.port, key)
    return path
