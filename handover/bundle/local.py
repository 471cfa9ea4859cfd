"""Local disk seams of the bundle layer: a tree read by GNU tar, a bundle folder.

`LocalPathSource` lets GNU `tar -cf -` walk and read the tree: it is several
times faster than walking it in Python on small files (DESIGN.md, "Moving
data fast"); handover only parses the stream. `DirectoryTarget` writes each
bundle file under a temporary name and renames it when complete, so a crash
leaves complete files and `.tmp` leftovers, never a half file under a final
name; a full disk is a DiskFull naming the file and its file system
(`handover.state.diskspace`), the temporary file removed. `DirectorySource`
reads a bundle folder back for verify and open.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
import stat
import subprocess
import tempfile
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path, PurePosixPath
from typing import IO, BinaryIO

from handover.bundle.writeback import writeback_writer
from handover.errors import BundleCorrupt, BundleError, ConnectorError, UsageError
from handover.state.diskspace import disk_full_from, file_size

PIPE_SIZE = 1 << 20
TAR_BLOCKING_FACTOR = 2048  # 1 MiB writes: a third less CPU in tar than 10 KiB records
_F_SETPIPE_SZ = 1031  # Linux fcntl; a bigger pipe means fewer wake-ups between tar and us
STDERR_KEEP = 4096
TMP_SUFFIX = ".tmp"


def _tar_binary() -> str:
    path = shutil.which("tar")
    if path is None:
        raise UsageError("tar not found: install GNU tar (`apt-get install -y tar`)")
    return path


def relative_member(root: Path, path: str) -> str:
    """`path` relative to `root`, as given to tar; an absolute path is taken under `root`.

    Raises UsageError for a path that climbs out of `root` with '..'.
    """
    pure = PurePosixPath(path)
    parts = [part for part in pure.parts if part not in ("/", ".")]
    if ".." in parts:
        raise UsageError(f"{path}: '..' is not allowed in a dataset path (under {root})")
    return "/".join(parts) or "."


class LocalPathSource:
    """A dataset made of paths under `root`, streamed by `tar -cf - --format=posix`.

    Member names start with each path relative to `root` (`www/index.html`
    for root `/var`, path `www`). Leaving `open_tar()` checks tar's exit code
    and raises ConnectorError naming the paths and tar's message when it failed
    (missing path, unreadable file, file changed while read).
    """

    def __init__(self, label: str, root: Path, paths: Sequence[str]) -> None:
        if not paths:
            raise UsageError(f"{label}: a dataset needs at least one path")
        self._label = label
        self.root = Path(root)
        self.paths = [relative_member(self.root, path) for path in paths]

    @property
    def label(self) -> str:
        return self._label

    @property
    def origin(self) -> str:
        joined = ",".join(str(self.root / p) if p != "." else str(self.root) for p in self.paths)
        return f"local:{joined}"

    def member_extras(self) -> dict[str, dict[str, str]]:
        return {}

    def command(self) -> list[str]:
        """The tar command line (no shell): POSIX format, sorted, hard links stored as files.

        Modification times are whole seconds (ustar field); PAX headers appear
        only where needed (long or odd names, sizes beyond 8 GiB).
        """
        return [
            _tar_binary(),
            "-cf",
            "-",
            "--format=posix",
            # no per-file PAX header for times: halves the headers to parse on small files
            "--pax-option=delete=atime,delete=ctime,delete=mtime",
            "--sort=name",
            "--hard-dereference",
            f"--blocking-factor={TAR_BLOCKING_FACTOR}",
            "-C",
            str(self.root),
            "--",
            *self.paths,
        ]

    @contextlib.contextmanager
    def open_tar(self) -> Iterator[BinaryIO]:
        """Yield tar's stdout; on exit, raise ConnectorError if tar failed."""
        if not self.root.is_dir():
            raise ConnectorError(f"{self.root}: dataset root is not a folder", host="local")
        process = subprocess.Popen(
            self.command(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, "LC_ALL": "C"},
        )
        assert process.stdout is not None and process.stderr is not None
        with contextlib.suppress(OSError):
            fcntl.fcntl(process.stdout.fileno(), _F_SETPIPE_SZ, PIPE_SIZE)
        stderr = _Drain(process.stderr)
        completed = False
        try:
            yield process.stdout  # type: ignore[misc]
            completed = True
            # A reader may stop at the end-of-archive blocks (tarfile does); tar then still
            # writes the padding of its last record, and closing the pipe under it would
            # kill it with SIGPIPE: read the rest so that tar exits on its own.
            while process.stdout.read(PIPE_SIZE):
                pass
        finally:
            if not completed:
                process.kill()
            process.stdout.close()
            code = process.wait()
            message = stderr.finish()
        if code != 0:
            where = ", ".join(str(self.root / p) for p in self.paths)
            detail = message.strip().replace("\n", "; ") or f"exit status {code}"
            raise ConnectorError(f"tar failed reading {where}: {detail}", host="local")


class _Drain:
    """Read a stderr pipe on a thread so the producer never blocks on it; keep the tail."""

    def __init__(self, pipe: IO[bytes]) -> None:
        self._pipe = pipe
        self._tail = b""
        self._thread = threading.Thread(target=self._run, name="stderr-drain", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            chunk = self._pipe.read(STDERR_KEEP)
            if not chunk:
                return
            self._tail = (self._tail + chunk)[-STDERR_KEEP:]

    def finish(self) -> str:
        self._thread.join()
        self._pipe.close()
        return self._tail.decode("utf-8", "replace")


def local_path_source(label: str, path: Path) -> LocalPathSource:
    """A dataset of one local file or folder, member names starting with its base name."""
    path = Path(os.path.abspath(path))
    if not path.exists() and not path.is_symlink():
        raise UsageError(f"{path}: no such file or folder")
    if path == path.parent:  # the filesystem root: members are its children
        return LocalPathSource(label, path, ["."])
    return LocalPathSource(label, path.parent, [path.name])


def _check_relpath(relpath: str) -> PurePosixPath:
    pure = PurePosixPath(relpath)
    if pure.is_absolute() or ".." in pure.parts or not pure.parts:
        raise BundleError(f"{relpath}: not a relative path inside a bundle")
    return pure


#: files at least this large start their fsync as soon as they are complete (DirectoryTarget)
EARLY_FSYNC_BYTES = 1 << 20


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    """fsync a complete file; a lack of space reported only now removes it (DiskFull).

    Some file systems (NFS, quotas) report the lack of space only at fsync:
    the file under its final name may not be whole, so it goes.
    """
    try:
        _fsync(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        full = disk_full_from(exc, path, file_size(path))
        if full is None:
            raise
        path.unlink(missing_ok=True)
        raise full from exc


class _EarlyFsync(threading.Thread):
    """fsync one complete file in the background; its error waits for `DirectoryTarget.sync`."""

    def __init__(self, path: Path) -> None:
        super().__init__(name="bundle-fsync", daemon=True)
        self.path = path
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            _fsync_file(self.path)
        except BaseException as exc:
            self.error = exc


class DirectoryTarget:
    """A bundle folder: each file appears under its final name only once complete.

    Files are renamed into place without waiting for the disk; `sync()`
    (called by the bundle writer before the signature, which is written last)
    makes them all durable, so a signed bundle is a durable one while sealing
    never stalls on fsync between volumes. A large file (a volume, a large
    index) starts its fsync on a thread of its own as soon as it is renamed:
    its writeback then overlaps what comes after it (the other volumes, the
    index, the README) instead of all of it waiting for `sync()`. Flushing a
    551 MiB volume took 0.16 s at the end of every `handover seal`. While a
    file is written, the writeback of every 8 MiB behind it is started too
    (`handover.bundle.writeback`), so little is left for that fsync.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._written: list[Path] = []
        self._flushing: list[_EarlyFsync] = []
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def open_write(self, relpath: str) -> Iterator[BinaryIO]:
        """Yield a file that appears as `relpath` only if the block ends without error.

        On any error the temporary file is removed; a full disk (ENOSPC,
        EDQUOT) becomes DiskFull naming the file, the file system, the bytes
        written and the space left.
        """
        final = self.path.joinpath(*_check_relpath(relpath).parts)
        tmp: str | None = None
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(
                prefix=f".{final.name}.", suffix=TMP_SUFFIX, dir=final.parent
            )
            with writeback_writer(fd) as handle:
                yield handle
            os.chmod(tmp, 0o644)
            os.replace(tmp, final)
        except BaseException as exc:
            # Said before the temporary file goes, so the free space is that of the failure.
            full = disk_full_from(exc, final, file_size(tmp) if tmp is not None else 0)
            if tmp is not None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
            if full is not None:
                raise full from exc
            raise
        early = _EarlyFsync(final) if file_size(final) >= EARLY_FSYNC_BYTES else None
        with self._lock:
            if early is not None:
                self._flushing.append(early)
            else:
                self._written.append(final)
        if early is not None:
            early.start()

    def sync(self) -> None:
        """fsync every file written so far and the folders holding them.

        Raises the first error of a file's early fsync (after waiting for all of them).
        """
        with self._lock:
            written, self._written = self._written, []
            flushing, self._flushing = self._flushing, []
        for early in flushing:
            early.join()
        for early in flushing:
            if early.error is not None:
                raise early.error
        for path in written:
            _fsync_file(path)
        for folder in sorted({path.parent for path in [*written, *(e.path for e in flushing)]}):
            with contextlib.suppress(FileNotFoundError):
                _fsync(folder)

    def exists(self, relpath: str) -> bool:
        return self.path.joinpath(*_check_relpath(relpath).parts).is_file()

    def describe(self) -> str:
        return str(self.path)

    def remove_partials(self) -> list[str]:
        """Delete `.NAME.*.tmp` files a crashed run left behind; return their paths."""
        removed: list[str] = []
        if not self.path.is_dir():
            return removed
        for tmp in self.path.rglob(f".*{TMP_SUFFIX}"):
            if tmp.is_file():
                tmp.unlink()
                removed.append(str(tmp.relative_to(self.path)))
        return removed


class DirectorySource:
    """A bundle folder read back for verify and open.

    A bundle may come from anyone: every file is opened without following
    symbolic links (in any component of its path) and must be a regular
    file, so a volume that is a link to `/dev/zero`, a FIFO or a device
    never hangs or misleads a reader; it is refused, named, instead.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        if not self.path.is_dir():
            raise UsageError(f"{self.path}: not a bundle folder (no such folder)")

    def list_files(self) -> Iterator[str]:
        """Every entry that is not a folder: files, and links and devices to be refused."""
        for dirpath, dirnames, filenames in os.walk(self.path):
            base = Path(dirpath).relative_to(self.path)
            linked = {name for name in dirnames if os.path.islink(os.path.join(dirpath, name))}
            dirnames[:] = sorted(set(dirnames) - linked)  # os.walk does not follow them anyway
            for name in sorted([*filenames, *linked]):
                yield (base / name).as_posix()

    @contextlib.contextmanager
    def open_read(self, relpath: str) -> Iterator[BinaryIO]:
        handle = os.fdopen(self._open_regular(relpath), "rb")
        with handle:
            yield handle

    def _open_regular(self, relpath: str) -> int:
        """A descriptor on `relpath`, walked one component at a time without following links."""
        parts = _check_relpath(relpath).parts
        shown = relpath if relpath.isprintable() else repr(relpath)
        flags = os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW
        try:
            folder = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                for part in parts[:-1]:
                    inner = os.open(part, flags | os.O_DIRECTORY, dir_fd=folder)
                    os.close(folder)
                    folder = inner
                fd = os.open(parts[-1], flags | os.O_NONBLOCK, dir_fd=folder)
            finally:
                os.close(folder)
        except FileNotFoundError:
            raise BundleError(f"{shown}: missing from {self.path}") from None
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.ENXIO):
                raise BundleCorrupt(_IRREGULAR.format(shown)) from None
            raise BundleError(f"{shown}: cannot read: {exc.strerror}") from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise BundleCorrupt(_IRREGULAR.format(shown))
        os.set_blocking(fd, True)
        return fd

    def describe(self) -> str:
        return str(self.path)


_IRREGULAR = (
    "{}: not a regular file (a symbolic link, device, FIFO or socket): refused; "
    "a bundle holds only plain files"
)
