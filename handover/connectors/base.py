"""The seam between the phase logic and the hosts of a contract.

Every host transport (`local`: the worker is the host; `ssh`: a client
machine) implements `HostConnector`, so flows, tasks and the estate code run
a command, read a small file or a dataset as a tar stream without knowing how
the bytes travel. A connector is only a transport: what to ask a host (its
inventory, its keys) is decided by the callers. `factory.connect_host` picks
the implementation from the playbook's `transport`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Protocol, Self, runtime_checkable

from pydantic import BaseModel, ConfigDict

from handover.errors import PermanentConnectorError

if TYPE_CHECKING:
    from handover.bundle.types import VolumeSource
    from handover.secrets.references import Secret

__all__ = [
    "MAX_READ_FILE_BYTES",
    "CommandResult",
    "HostConnector",
    "require_small_file",
    "stderr_summary",
]

MAX_READ_FILE_BYTES = 16 * 1024 * 1024  # read_file is for configs and keys, not datasets
STDERR_TAIL_CHARS = 500


def stderr_summary(stderr: bytes, max_chars: int = STDERR_TAIL_CHARS) -> str:
    """The end of a command's stderr on one line, for an error message (never its stdout: data).

    Decoded leniently; says so when the command left no message at all.
    """
    text = stderr.decode("utf-8", "replace").strip().replace("\n", "; ")
    return text[-max_chars:] or "no message on stderr"


def require_small_file(data: bytes, path: str, host: str) -> bytes:
    """`data` if it is at most MAX_READ_FILE_BYTES long, else PermanentConnectorError."""
    if len(data) > MAX_READ_FILE_BYTES:
        raise PermanentConnectorError(
            f"{path}: larger than {MAX_READ_FILE_BYTES} bytes, not a small file", host=host
        )
    return data


class CommandResult(BaseModel):
    """What a command left behind: exit status and both output streams, as bytes."""

    model_config = ConfigDict(frozen=True)

    exit_status: int
    stdout: bytes
    stderr: bytes

    @property
    def ok(self) -> bool:
        return self.exit_status == 0

    def stderr_tail(self, max_chars: int = STDERR_TAIL_CHARS) -> str:
        """The end of stderr on one line, for error messages (see `stderr_summary`)."""
        return stderr_summary(self.stderr, max_chars)


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

    def host_path(self, path: str) -> str:
        """Where commands run by this connector find the host's absolute `path`.

        The path itself over SSH; under `root` for a local host that stands in
        a folder (the demo's sandbox hosts), which refuses '..' (UsageError)
        so that no path leaves it.
        """
        ...

    def tree_source(self, label: str, paths: Sequence[str]) -> VolumeSource:
        """The files under `paths` as one tar stream (the host's own `tar` walks them)."""
        ...

    def dump_source(
        self, label: str, command: str, filename: str, env: Mapping[str, Secret] | None = None
    ) -> VolumeSource:
        """The stdout of `command` (a database dump) as a tar holding one member `filename`.

        `env`: variables the command finds in its environment (its passwords),
        never written on a command line.
        """
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
