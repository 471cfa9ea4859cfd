"""Datasets on an SSH host as VolumeSources: a tree the remote `tar` walks, a dump command.

Data leaves the host as a tar stream produced by the host's own `tar` over
an exec channel (`SSHTreeSource`), the way DESIGN.md measured fastest: one
process walks and reads the tree, paramiko only moves bytes. Accounts limited
to SFTP get the same stream built here from SFTP reads (`sftp.py`). Dumps are
remote commands whose output becomes one tar member (`SSHDumpSource`).

The sources reach their host through `SSHSession`, the few connection
methods they need, so that this module does not import the connector (which
builds the sources).
"""

from __future__ import annotations

import contextlib
import posixpath
import re
import shlex
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, BinaryIO, Protocol

from handover.connectors.ssh.target import SSHTarget
from handover.errors import UsageError

if TYPE_CHECKING:
    import paramiko

    from handover.secrets.references import Secret

__all__ = [
    "SSHDumpSource",
    "SSHSession",
    "SSHTreeSource",
    "check_absolute",
    "relative_paths",
    "tar_command",
]

_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# GNU tar: same options as the local source (POSIX format, no per-file PAX time records, so
# small files take the parser's fast path and half the headers cross the network; sorted;
# hard links stored as files; 1 MiB records, fewer writes for the host's tar and sshd).
# Elsewhere (BusyBox) plain `tar -cf -`; handover parses both.
_TAR_SCRIPT = (
    "if tar --version 2>/dev/null | grep -q 'GNU tar'; then "
    "exec tar -cf - --format=posix --pax-option=delete=atime,delete=ctime,delete=mtime "
    "--sort=name --hard-dereference --blocking-factor=2048 -C / -- {paths}; "
    "else exec tar -cf - -C / -- {paths}; fi"
)

# A tar header states the member's size before its data, and a dump's size is known only
# when the dump ends: so the dump goes to a private temp file on the host first, its exit
# status is checked, and only then is it tarred and streamed (and the temp folder removed).
# {env} reads the dump's variables from stdin, one line each (see `env_script`).
_DUMP_SCRIPT = """umask 077
{env}d=$(mktemp -d) || exit 97
trap 'rm -rf "$d"' EXIT HUP INT TERM
sh -c {command} > "$d"/{filename} </dev/null
status=$?
if [ "$status" -ne 0 ]; then
  echo "handover: dump command exited with status $status" >&2
  exit 98
fi
cd "$d" || exit 97
if tar --version 2>/dev/null | grep -q 'GNU tar'; then
  tar -cf - --format=posix --pax-option=delete=atime,delete=ctime -- {filename}
else
  tar -cf - -- {filename}
fi
"""


class SSHSession(Protocol):
    """What a source needs from its SSH connection (`SSHConnector` is one)."""

    @property
    def target(self) -> SSHTarget: ...

    def has_shell(self) -> bool: ...

    def require_shell(self, what: str) -> None: ...

    def stream_command(
        self, command: str, what: str, stdin: bytes = b""
    ) -> AbstractContextManager[BinaryIO]: ...

    def sftp(self) -> paramiko.SFTPClient: ...

    def data_sftp(self, stack: contextlib.ExitStack) -> paramiko.SFTPClient: ...


def check_absolute(path: str, host: str) -> None:
    """Host paths over SSH are absolute: the login folder is no place to start from."""
    if not path.startswith("/"):
        raise UsageError(f"{host}: {path!r}: host paths must be absolute")


def relative_paths(paths: Sequence[str], host: str) -> list[str]:
    """Absolute host paths as tar operands under `-C /`; '..' refused, duplicates dropped."""
    if not paths:
        raise UsageError(f"{host}: a dataset needs at least one path")
    out: list[str] = []
    for path in paths:
        check_absolute(path, host)
        parts = [p for p in path.split("/") if p not in ("", ".")]
        if ".." in parts:
            raise UsageError(f"{host}: {path!r}: '..' is not allowed in a dataset path")
        rel = "/".join(parts) or "."
        if rel not in out:
            out.append(rel)
    return out


def tar_command(relative: Sequence[str]) -> str:
    """The remote command that tars `relative` (from `relative_paths`) to its stdout.

    The paths are shell-quoted (spaces, quotes and `$` stay data), and the
    script is handed to `sh -c` so a non-POSIX login shell (csh, fish) does
    not parse it.
    """
    script = _TAR_SCRIPT.format(paths=" ".join(shlex.quote(p) for p in relative))
    return "sh -c " + shlex.quote(script)


class SSHTreeSource:
    """A dataset on an SSH host: the remote `tar` walks `paths`, we read its stream.

    Members are named relative to `/` (`/var/www/a` → `var/www/a`), as
    `tar -C /` writes them. On SFTP-only accounts the tar stream is built here
    from SFTP reads (same members and bytes, slower on many small files).
    Leaving `open_tar()` raises ConnectorError if the remote tar failed
    (status and stderr tail) and TransientConnectorError if the connection
    dropped: a partial stream never passes for a whole one.
    """

    def __init__(self, session: SSHSession, label: str, paths: Sequence[str]) -> None:
        self.session = session
        self._label = label
        self.paths = [posixpath.normpath(p) for p in paths]
        self.relative = relative_paths(paths, session.target.name)

    @property
    def label(self) -> str:
        return self._label

    @property
    def origin(self) -> str:
        target = self.session.target
        base = f"ssh://{target.user}@{target.address}:{target.port}"
        return ",".join(base + p for p in self.paths)

    def member_extras(self) -> dict[str, dict[str, str]]:
        return {}

    def command(self) -> str:
        return tar_command(self.relative)

    @contextlib.contextmanager
    def open_tar(self) -> Iterator[BinaryIO]:
        if not self.session.has_shell():
            from handover.connectors.ssh.sftp import open_sftp_tar

            with contextlib.ExitStack() as stack:
                sftp = self.session.data_sftp(stack)
                yield stack.enter_context(open_sftp_tar(sftp, self.paths, self.session.target))
            return
        with self.session.stream_command(
            self.command(), f"tar of {', '.join(self.paths)}"
        ) as stream:
            yield stream


def env_script(names: Sequence[str]) -> str:
    """Shell lines that read one variable per line of stdin and export it.

    The values never appear in the script (which is the exec request, and
    the command line `ps` shows on the host): only the names do. sshd
    refuses to pass arbitrary variables (`AcceptEnv`), so the values come
    through the channel's stdin, read by the shell's own `read` builtin, and
    reach the dump command as its environment. `IFS=` and `-r` keep each
    value byte for byte (spaces, backslashes).
    """
    lines = []
    for name in names:
        if not _ENV_NAME_RE.match(name):
            raise UsageError(f"dump variable {name!r}: not a variable name")
        lines.append(f"IFS= read -r {name} || exit 96\nexport {name}\n")
    return "".join(lines)


def env_input(env: Mapping[str, Secret], host: str) -> bytes:
    """The stdin `env_script` reads: each value on its own line, in the order of `env`."""
    out = bytearray()
    for name, secret in env.items():
        value = secret.reveal_text()
        if "\n" in value or "\r" in value or "\0" in value:
            # The value is not quoted: it is a secret.
            raise UsageError(
                f"{host}: dump variable {name}: its value holds a line break or a NUL byte, "
                "which cannot be passed to the command"
            )
        out += value.encode("utf-8") + b"\n"
    return bytes(out)


class SSHDumpSource:
    """A dump command's output on an SSH host, as a tar holding one member `filename`.

    The remote shell runs `command` into a private temp folder (`umask 077`,
    `mktemp -d`), checks its exit status, then tars the file and removes the
    folder, all in one script: a tar member's size is written before its
    data, so the dump must end before its bytes can be framed. The host needs
    free temp space for one dump. The variables of `env` (the dump's
    passwords) are sent on the channel's stdin and exported by the script
    before it runs the command: they are in the command's environment, never
    on a command line of the host.
    """

    def __init__(
        self,
        session: SSHSession,
        label: str,
        command: str,
        filename: str,
        env: Mapping[str, Secret] | None = None,
    ) -> None:
        if not filename or "/" in filename or filename in (".", ".."):
            raise UsageError(
                f"{session.target.name}: dump filename {filename!r} must be a plain name"
            )
        self.session = session
        self._label = label
        self._command = command
        self.filename = filename
        self._env: dict[str, Secret] = dict(env or {})
        env_script(list(self._env))  # refuse a bad name now, not once connected

    @property
    def label(self) -> str:
        return self._label

    @property
    def origin(self) -> str:
        target = self.session.target
        return f"ssh://{target.user}@{target.address}:{target.port} dump:{self.filename}"

    def member_extras(self) -> dict[str, dict[str, str]]:
        return {}

    def script(self) -> str:
        """The remote script: names of the variables, never their values."""
        return _DUMP_SCRIPT.format(
            env=env_script(list(self._env)),
            command=shlex.quote(self._command),
            filename=shlex.quote(self.filename),
        )

    @contextlib.contextmanager
    def open_tar(self) -> Iterator[BinaryIO]:
        self.session.require_shell(f"run the dump for {self.filename}")
        command = "sh -c " + shlex.quote(self.script())
        stdin = env_input(self._env, self.session.target.name)
        with self.session.stream_command(command, f"dump {self.filename}", stdin) as stream:
            yield stream
