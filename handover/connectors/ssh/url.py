"""`ssh://USER@HOST[:PORT]/PATH` as a VolumeSource, for `handover seal` outside any contract.

Apart from the connector because it is the one SSH entry point that has no
playbook: it trusts the operator's own known_hosts and key, as `ssh` would.
When `ssh` carries the tar, paramiko is never imported (the connector is
imported only to fall back on it): that import was about 0.1 s of the
time before `ssh` started (issue 16).
"""

from __future__ import annotations

import contextlib
import logging
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from handover.connectors.ssh.openssh import (
    PinnedHostKey,
    bulk_mode,
    find_ssh,
    pinned_host_keys,
    private_key_bytes,
)
from handover.connectors.ssh.openssh_stream import (
    BulkUnavailable,
    SshStream,
    read_ssh_stream,
    start_ssh_stream,
)
from handover.connectors.ssh.sources import relative_paths, tar_command
from handover.connectors.ssh.target import SSHTarget
from handover.errors import ConnectorError, UsageError

__all__ = ["SSHUrlSource", "ssh_source_from_url"]

log = logging.getLogger(__name__)

TAR_BLOCK = 512  # a tar stream, even an empty one, is at least this long
# what OpenSSH's `ForceCommand internal-sftp` answers a command with (then exit status 1)
SFTP_ONLY_REFUSAL = b"allows sftp connections only"

# When known_hosts pins several keys for the host, the one `ssh` is told to expect: the
# order OpenSSH itself prefers. A host that no longer offers it is left to paramiko.
_KEY_PREFERENCE = (
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "ssh-rsa",
)


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
        self._started: SshStream | None = None  # `ssh` started by `start()`, not read yet
        self._carrier: tuple[str, PinnedHostKey] | None = None  # the `ssh` and key it trusted

    @property
    def label(self) -> str:
        return self._label

    @property
    def origin(self) -> str:
        return f"ssh://{self.target.user}@{self.target.address}:{self.target.port}{self.path}"

    def member_extras(self) -> dict[str, dict[str, str]]:
        return {}

    def start(self) -> None:
        """Start `ssh` for the tar now, when it is to carry it (else nothing happens).

        For `handover seal`, which calls it for the sources it seals first:
        the connection and login of `ssh` (~0.1 s) then overlap the bundle
        writer's import and setup instead of following them (issue 16).
        `open_tar` reads that `ssh`; `stop()` ends it if `open_tar` never
        comes. Raises what `open_tar` would for this source's settings
        (HANDOVER_SSH_BULK, an unreadable key file or known_hosts).
        """
        if self._started is None:
            self._started = self._start_direct()

    def stop(self) -> None:
        """End the `ssh` that `start()` started if `open_tar` did not take it."""
        started, self._started = self._started, None
        if started is not None:
            started.shutdown()

    @contextlib.contextmanager
    def open_tar(self) -> Iterator[BinaryIO]:
        """The remote tar: straight through `ssh` when it can carry it, else as a contract does.

        Why straight: a seal from the command line needs nothing of the
        control connection when `ssh` carries the bytes, and its handshake
        plus the shell probe cost ~0.2 s of a ~3 s pull of 600 MB (issue 16).
        An SFTP-only account's refusal of the command is followed by an
        SFTP session over `ssh -s`, trusting the same key. Whatever else
        fails before the first tar block (a host key other than the pinned
        one, a refused key, a missing tar, an `ssh -s` that fails) is tried
        again over paramiko, whose errors and SFTP fallback are the
        reference: the direct attempt never decides an error on its own.
        """
        with contextlib.ExitStack() as stack:
            stream = self._direct_stream(stack)
            if stream is None:
                from handover.connectors.ssh.connector import SSHConnector

                connector = stack.enter_context(
                    SSHConnector.connect(self.target, known_hosts=self.known_hosts)
                )
                tree = connector.tree_source(self._label, [self.path])
                stream = stack.enter_context(tree.open_tar())
            yield stream

    def _direct_stream(self, stack: contextlib.ExitStack) -> BinaryIO | None:
        """The tar carried by `ssh` alone (entered on `stack`), or None to go through paramiko.

        The `ssh` that `start()` started, else one started now.
        """
        raw, self._started = self._started, None
        if raw is None:
            raw = self._start_direct()
        if raw is None:
            return None
        try:
            # an SFTP-only account writes a refusal, then exits 1: wait for a tar block
            return stack.enter_context(read_ssh_stream(raw, first_bytes=TAR_BLOCK))
        except (BulkUnavailable, ConnectorError) as exc:
            if SFTP_ONLY_REFUSAL in raw.output_before_end.lower():
                return self._direct_sftp_tar(stack)
            log.debug(
                "%s: ssh alone could not carry the tar (%s); paramiko tries", self.target.where, exc
            )
            return None

    def _direct_sftp_tar(self, stack: contextlib.ExitStack) -> BinaryIO | None:
        """The tar built from SFTP reads over `ssh -s` alone, or None to go through paramiko.

        Why: the account refused the command but accepted the login and the
        pinned key, so the SFTP session needs no control connection either;
        going through paramiko took two more handshakes and a shell probe.
        """
        from handover.connectors.ssh.openssh_sftp import open_carried_sftp
        from handover.connectors.ssh.sftp import open_sftp_tar

        private_key = private_key_bytes(self.target)
        if self._carrier is None or private_key is None:
            return None
        ssh, key = self._carrier
        try:
            sftp = open_carried_sftp(
                stack, ssh, self.target, key, private_key, trusted_by="known_hosts", fallback=True
            )
        except ConnectorError as exc:
            log.debug("%s: ssh -s sftp failed (%s); paramiko tries", self.target.where, exc)
            return None
        if sftp is None:
            return None
        return stack.enter_context(open_sftp_tar(sftp, [self.path], self.target))

    def _start_direct(self) -> SshStream | None:
        """`ssh` started on the remote tar, or None to go through paramiko.

        Only with a key file, and only trusting a key known_hosts pins for the
        host (as the control connection would): `ssh` gets it in a generated
        known_hosts with `StrictHostKeyChecking=yes`, nothing else.
        """
        if bulk_mode() == "paramiko" or self.target.key_file is None:
            return None
        ssh = find_ssh()
        pinned = pinned_host_keys(self.known_hosts, self.target.address, self.target.port)
        preferred = [kind for kind in _KEY_PREFERENCE if kind in pinned]
        if ssh is None or not preferred:
            return None
        private_key = private_key_bytes(self.target)
        if private_key is None:
            return None
        command = tar_command(relative_paths([self.path], self.target.name))
        self._carrier = (ssh, pinned[preferred[0]])
        try:
            return start_ssh_stream(
                ssh,
                self.target,
                pinned[preferred[0]],
                private_key,
                command,
                f"tar of {self.path}",
                trusted_by="known_hosts",
                fallback=True,
            )
        except (BulkUnavailable, ConnectorError) as exc:
            log.debug(
                "%s: ssh alone could not carry the tar (%s); paramiko tries", self.target.where, exc
            )
            return None


def ssh_source_from_url(
    url: str, known_hosts: Path | None, key_file: Path | None, label: str
) -> SSHUrlSource:
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
