"""The seam between the phase logic and the hosts of a contract.

Every host transport (`local`: the worker is the host; `ssh`: a client
machine) implements `HostConnector`, so flows and tasks inventory a host,
read its datasets as tar streams, run a command or install a key without
knowing how the bytes travel. `connect_host` picks the implementation from
the playbook's `transport`.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, Self, runtime_checkable

from pydantic import BaseModel, ConfigDict

from handover.errors import UsageError

if TYPE_CHECKING:
    from handover.bundle.types import VolumeSource
    from handover.contract.perimeter import Host
    from handover.estate.inventory import Inventory

__all__ = ["CommandResult", "HostConnector", "connect_host"]


class CommandResult(BaseModel):
    """What a command left behind: exit status and both output streams, as bytes."""

    model_config = ConfigDict(frozen=True)

    exit_status: int
    stdout: bytes
    stderr: bytes

    @property
    def ok(self) -> bool:
        return self.exit_status == 0

    def stderr_tail(self, max_chars: int = 500) -> str:
        """The end of stderr, decoded leniently: for error messages (never stdout: it is data)."""
        text = self.stderr.decode("utf-8", "replace").strip()
        return text[-max_chars:]


@runtime_checkable
class HostConnector(Protocol):
    """One host of the perimeter, reached through its transport.

    Methods raise ConnectorError (TransientConnectorError when a retry may
    help, PermanentConnectorError otherwise), naming the host.
    """

    name: str

    def run(
        self, command: str, *, stdin: bytes | None = None, timeout_s: float = 120
    ) -> CommandResult:
        """Run a shell command; a non-zero exit is a result, not an error."""
        ...

    def has_shell(self) -> bool:
        """False for accounts that can run no command (SFTP-only: ForceCommand internal-sftp).

        Callers then fall back to file reads and writes (inventory from files,
        authorized_keys rewritten without a shell) or name what they cannot do.
        """
        ...

    def inventory(self, cert_paths: Sequence[str] = ()) -> Inventory:
        """Collect the host's facts with one run of INVENTORY_SCRIPT."""
        ...

    def tree_source(self, label: str, paths: Sequence[str]) -> VolumeSource:
        """The files under `paths` as one tar stream (the host's own `tar` walks them)."""
        ...

    def dump_source(self, label: str, command: str, filename: str) -> VolumeSource:
        """The stdout of `command` (a database dump) as a tar holding one member `filename`."""
        ...

    def read_file(self, path: str) -> bytes:
        """A small file's bytes (authorized_keys, a config)."""
        ...

    def write_file(self, path: str, data: bytes, mode: int = 0o600) -> None:
        """Replace a small file atomically on the host."""
        ...

    def close(self) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


def connect_host(host: Host, contract_id: str, **options: Any) -> HostConnector:
    """Return the connector for a playbook host, per its `transport`.

    `local` needs nothing else; `ssh` goes to `SSHConnector.from_host` with
    the contract (for its known_hosts) and `options` (timeouts, secrets
    resolver...). Raises UsageError for a transport nobody implements.
    """
    transport = getattr(host, "transport", None)
    transport = getattr(transport, "value", transport)  # an Enum or a plain string
    if transport == "local":
        from pathlib import Path

        from handover.connectors.local import LocalConnector

        root = getattr(host, "root", None) or "/"
        return LocalConnector(host.name, Path(root))
    if transport == "ssh":
        # Imported by name: paramiko is loaded only for contracts that use SSH.
        ssh = importlib.import_module("handover.connectors.ssh.connector")
        connector: HostConnector = ssh.SSHConnector.from_host(host, contract_id, **options)
        return connector
    raise UsageError(f"host {host.name!r}: unknown transport {transport!r} (expected ssh or local)")
