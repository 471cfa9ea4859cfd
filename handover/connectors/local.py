"""The `local` transport: the worker runs on the host it manages.

Commands run with `sh -c` in the host's `root` folder; dataset paths, small
files and configured certificate paths (`host_path`) are taken under `root`
(`/` for a real host; the demo gives each sandbox host its own root). On a
host whose root is `/`, the facts a command reports (packages, services,
ports, disks, users) are those of the machine the worker runs on: that
machine IS the local host. A host standing in a folder is inventoried from
the folder's files instead (`handover.estate.inventory_root`).
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import TYPE_CHECKING, BinaryIO, Self, cast

from handover.connectors.base import (
    MAX_READ_FILE_BYTES,
    CommandResult,
    require_small_file,
    stderr_summary,
)
from handover.errors import (
    ConnectorError,
    PermanentConnectorError,
    TransientConnectorError,
    UsageError,
)
from handover.state.atomic import write_atomic

if TYPE_CHECKING:
    from handover.bundle.types import VolumeSource
    from handover.secrets.references import Secret

__all__ = ["LocalConnector", "LocalDumpSource"]

_BLOCK = 512


def _under_root(root: Path, path: str) -> Path:
    """`path` (absolute or relative) taken under `root`; '..' is refused so no path leaves it."""
    parts = [part for part in PurePosixPath(path).parts if part not in ("/", ".")]
    if ".." in parts:
        raise UsageError(f"{path}: '..' is not allowed in a host path (under {root})")
    return root.joinpath(*parts)


class LocalConnector:
    """HostConnector for `transport: local`: subprocesses and files under `root`."""

    def __init__(self, name: str, root: Path = Path("/")) -> None:
        self.name = name
        self.root = Path(root).absolute()

    # -- context manager -------------------------------------------------------------

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Nothing to release: every call starts and ends its own subprocess."""

    def __repr__(self) -> str:
        return f"LocalConnector({self.name!r}, root={str(self.root)!r})"

    # -- commands --------------------------------------------------------------------

    def run(
        self, command: str, *, stdin: bytes | None = None, timeout_s: float = 120
    ) -> CommandResult:
        """Run `command` with `sh -c` in `root`. A non-zero exit is returned, not raised.

        Raises TransientConnectorError on timeout (the process is killed), and
        PermanentConnectorError when `root` is not a folder.
        """
        if not self.root.is_dir():
            raise PermanentConnectorError(f"root {self.root} is not a folder", host=self.name)
        try:
            done = subprocess.run(
                ["sh", "-c", command],
                cwd=self.root,
                input=stdin,
                stdin=subprocess.DEVNULL if stdin is None else None,
                capture_output=True,
                timeout=timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired:
            # The command is not quoted: it may be long and it is the playbook's, not news.
            raise TransientConnectorError(
                f"command timed out after {timeout_s:g} s", host=self.name
            ) from None
        except OSError as exc:
            raise PermanentConnectorError(
                f"cannot start sh: {exc.strerror}", host=self.name
            ) from exc
        return CommandResult(exit_status=done.returncode, stdout=done.stdout, stderr=done.stderr)

    def has_shell(self) -> bool:
        """A local host always runs commands (under its root)."""
        return True

    def host_path(self, path: str) -> str:
        """`path` under `root` ('..' refused): where this host's commands find it."""
        return str(_under_root(self.root, path))

    # -- datasets --------------------------------------------------------------------

    def tree_source(self, label: str, paths: Sequence[str]) -> VolumeSource:
        """The files under `paths` (taken under `root`), walked by GNU tar."""
        from handover.bundle.local import LocalPathSource

        return LocalPathSource(label, self.root, paths)

    def dump_source(
        self, label: str, command: str, filename: str, env: Mapping[str, Secret] | None = None
    ) -> VolumeSource:
        """The stdout of `command` (run in `root`) as a tar holding one member `filename`.

        `env` is added to the command's environment (the process's own, not
        its command line).
        """
        return LocalDumpSource(label, self.name, self.root, command, filename, env=env)

    # -- small files -----------------------------------------------------------------

    def read_file(self, path: str) -> bytes:
        """Bytes of a small file under `root`. Raises PermanentConnectorError if absent or large."""
        target = _under_root(self.root, path)
        try:
            with open(target, "rb") as handle:
                data = handle.read(MAX_READ_FILE_BYTES + 1)
        except FileNotFoundError:
            raise PermanentConnectorError(f"{path}: no such file", host=self.name) from None
        except OSError as exc:
            raise PermanentConnectorError(f"{path}: {exc.strerror}", host=self.name) from None
        return require_small_file(data, path, self.name)

    def write_file(self, path: str, data: bytes, mode: int = 0o600) -> None:
        """Replace a file under `root` atomically (temp name, fsync, rename), with `mode`."""
        target = _under_root(self.root, path)
        try:
            write_atomic(target, data, mode)
        except OSError as exc:
            raise PermanentConnectorError(f"{path}: {exc.strerror}", host=self.name) from None


class _ChainReader(io.RawIOBase):
    """Read a tar made of: header bytes, then an open file, then padding and end-of-archive."""

    def __init__(self, head: bytes, body: BinaryIO, tail: bytes) -> None:
        self._parts: list[BinaryIO] = [io.BytesIO(head), body, io.BytesIO(tail)]

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        while self._parts:
            got = self._parts[0].readinto(buffer)  # type: ignore[attr-defined]
            if got:
                return int(got)
            self._parts.pop(0)
        return 0


class LocalDumpSource:
    """A VolumeSource of one member: the stdout of a dump command, run in `root`.

    A tar member declares its size in its header, before its data, and a dump
    command cannot tell its size in advance: so the dump goes to a temporary
    file in a private folder (0700, under $TMPDIR or `tmp_dir`) on the same
    host, then streams out as a tar. The temporary folder is removed when
    `open_tar()` exits, whatever happened. If the command fails, ConnectorError
    carries the exit status and the end of its stderr (never its stdout: that
    is client data). `env` (the dump's passwords) is added to the process
    environment of the command, which other users cannot read, unlike its
    command line.
    """

    def __init__(
        self,
        label: str,
        host: str,
        root: Path,
        command: str,
        filename: str,
        tmp_dir: Path | None = None,
        env: Mapping[str, Secret] | None = None,
    ) -> None:
        pure = PurePosixPath(filename)
        if not filename or pure.is_absolute() or ".." in pure.parts or filename.endswith("/"):
            raise UsageError(f"{label}: dump filename {filename!r} must be a relative file name")
        self._label = label
        self.host = host
        self.root = Path(root)
        self.command = command
        self.filename = pure.as_posix()
        self.tmp_dir = tmp_dir
        self._env: dict[str, Secret] = dict(env or {})

    @property
    def label(self) -> str:
        return self._label

    @property
    def origin(self) -> str:
        return f"local:{self.root} (dump command, {self.filename})"

    def member_extras(self) -> dict[str, dict[str, str]]:
        return {}

    def _dump(self, into: Path) -> None:
        with open(into, "wb") as out:
            try:
                done = subprocess.run(
                    ["sh", "-c", self.command],
                    cwd=self.root,
                    env=self._environment(),
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.PIPE,
                    check=False,
                )
            except OSError as exc:
                raise PermanentConnectorError(
                    f"dump {self.filename}: cannot start sh in {self.root}: {exc.strerror}",
                    host=self.host,
                ) from exc
        if done.returncode != 0:
            raise ConnectorError(
                f"dump {self.filename}: command exited with status {done.returncode}: "
                f"{stderr_summary(done.stderr)}",
                host=self.host,
            )

    def _environment(self) -> dict[str, str] | None:
        """The worker's environment plus `env`, or None (inherit) when there is none."""
        if not self._env:
            return None
        values = {name: secret.reveal_text() for name, secret in self._env.items()}
        return {**os.environ, **values}

    @contextlib.contextmanager
    def open_tar(self) -> Iterator[BinaryIO]:
        """Run the dump to a private temp file, then yield it as a one-member tar stream."""
        from handover.bundle.sums import end_of_archive

        if not self.root.is_dir():
            raise PermanentConnectorError(f"root {self.root} is not a folder", host=self.host)
        private = Path(tempfile.mkdtemp(prefix="handover-dump-", dir=self.tmp_dir))  # 0700
        try:
            dump_path = private / "dump"
            self._dump(dump_path)
            size = dump_path.stat().st_size
            info = tarfile.TarInfo(self.filename)
            info.size = size
            info.mode = 0o600
            info.mtime = int(time.time())
            info.type = tarfile.REGTYPE
            head = info.tobuf(format=tarfile.PAX_FORMAT, encoding="utf-8", errors="strict")
            padding = bytes(-size % _BLOCK)
            tail = padding + end_of_archive(len(head) + size + len(padding))
            with open(dump_path, "rb") as body:
                yield cast(BinaryIO, _ChainReader(head, body, tail))
        finally:
            shutil.rmtree(private, ignore_errors=True)

    def __repr__(self) -> str:
        return f"LocalDumpSource({self._label!r}, host={self.host!r}, file={self.filename!r})"
