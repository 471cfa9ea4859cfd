"""`connect_host`: the connector of a playbook host, per its `transport`.

Apart from the protocol (`base.py`) because it imports every transport: the
transports import the protocol, never the factory.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from handover.connectors.base import HostConnector
from handover.connectors.local import LocalConnector
from handover.errors import UsageError

if TYPE_CHECKING:
    from handover.contract.perimeter import Host

__all__ = ["connect_host"]


def connect_host(
    host: Host, contract_id: str, *, known_hosts: Path | None = None, **options: Any
) -> HostConnector:
    """Return the connector for a playbook host, per its `transport`.

    `local` needs nothing else; `ssh` goes to `SSHConnector.from_host` with
    the contract, the known_hosts to trust (the playbook's
    `Playbook.known_hosts_file()`; None: the contract's own file) and
    `options` (timeouts, retries...). Raises UsageError for a transport
    nobody implements.
    """
    if host.transport == "local":
        return LocalConnector(host.name, Path(host.root or "/"))
    if host.transport == "ssh":
        # Imported here: paramiko is loaded only for contracts that use SSH.
        from handover.connectors.ssh.connector import SSHConnector

        return SSHConnector.from_host(host, contract_id, known_hosts=known_hosts, **options)
    raise UsageError(
        f"host {host.name!r}: unknown transport {host.transport!r} (expected ssh or local)"
    )
