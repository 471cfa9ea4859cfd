"""`ssh://USER@HOST[:PORT]/PATH` as a VolumeSource, for `handover seal` outside any contract.

Apart from the connector because it is the one SSH entry point that has no
playbook: it trusts the operator's own known_hosts and key, as `ssh` would.
"""

from __future__ import annotations

import contextlib
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from handover.connectors.ssh.connector import SSHConnector
from handover.connectors.ssh.target import SSHTarget
from handover.errors import UsageError

if TYPE_CHECKING:
    from handover.bundle.types import VolumeSource

__all__ = ["SSHUrlSource", "ssh_source_from_url"]


class SSHUrlSource:
    """`ssh://USER@HOST[:PORT]/PATH` for `handover seal`: connects when opened, closes after.

    Host keys come from `known_hosts` (default ~/.ssh/known_hosts, as `ssh`
    would read it): the host must be in it. The key file is read at connect
    time; without one, the SSH agent and ~/.ssh keys are tried, as `ssh` does.
    """

    def __init__(self, target: SSHTarget, path: str, known_hosts: Path, label: str) -> None:
        self.target = target
        self.path = path
        self.known_hosts = known_hosts
        self._label = label

    @property
    def label(self) -> str:
        return self._label

    @property
    def origin(self) -> str:
        return f"ssh://{self.target.user}@{self.target.address}:{self.target.port}{self.path}"

    def member_extras(self) -> dict[str, dict[str, str]]:
        return {}

    @contextlib.contextmanager
    def open_tar(self) -> Iterator[BinaryIO]:
        with (
            SSHConnector.connect(self.target, known_hosts=self.known_hosts) as connector,
            connector.tree_source(self._label, [self.path]).open_tar() as stream,
        ):
            yield stream


def ssh_source_from_url(
    url: str, known_hosts: Path | None, key_file: Path | None, label: str
) -> VolumeSource:
    """A VolumeSource for `ssh://USER@HOST[:PORT]/PATH` (percent-escapes decoded).

    Raises UsageError for a URL without user, host or absolute path.
    """
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "ssh" or not parts.hostname:
        raise UsageError(f"{url!r}: expected ssh://USER@HOST[:PORT]/PATH")
    try:
        port = parts.port or 22
    except ValueError as exc:
        raise UsageError(f"{url!r}: invalid port") from exc
    if not parts.username:
        raise UsageError(f"{url!r}: the user is missing (ssh://USER@HOST/PATH)")
    if parts.password:
        raise UsageError(f"{url!r}: passwords in URLs are refused; use --ssh-key")
    path = urllib.parse.unquote(parts.path)
    if not path.startswith("/") or path == "/":
        raise UsageError(f"{url!r}: give an absolute path below / (ssh://USER@HOST/PATH)")
    target = SSHTarget(
        name=parts.hostname,
        address=parts.hostname,
        port=port,
        user=urllib.parse.unquote(parts.username),
        key_file=key_file,
        use_agent=key_file is None,
    )
    if known_hosts is None:
        known_hosts = Path("~/.ssh/known_hosts").expanduser()
    return SSHUrlSource(target, path, known_hosts, label)
