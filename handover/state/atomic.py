"""Atomic file outputs: write under a temporary name, fsync, then rename.

A crash leaves either the old file or the new one, never half of one. A
full disk (ENOSPC, EDQUOT) is reported as DiskFull naming the file, its
file system and how far the write got (`handover.state.diskspace`), after
the temporary file is removed.

Files are private by default (`PRIVATE_FILE_MODE`, 0600) and the folders
created for them private too (`PRIVATE_DIR_MODE`, 0700), whatever the
process umask: state, logs, evidence and keys speak of a client's systems
and may name its people, so nobody but the account running handover reads
them. A writer whose file is meant for others (what is delivered to the
client beside its bundle, a statement the client signs) says so by passing
`SHARED_FILE_MODE`. The mode is set on the temporary file before the
rename, so the file never exists under its name with another mode.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from handover.state.diskspace import disk_full_from, file_size

#: State, logs, evidence, keys: the owner alone reads and writes them.
PRIVATE_FILE_MODE = 0o600
#: Folders of state: the owner alone lists and enters them.
PRIVATE_DIR_MODE = 0o700
#: Files handed to someone else on purpose (the client's copy beside its bundle, the
#: bundle's own files): readable by all, like the files `tar` and `age` give the client.
SHARED_FILE_MODE = 0o644


#: Folders created for shared files, so that others can reach them.
SHARED_DIR_MODE = 0o755


def ensure_private_dir(path: Path, mode: int = PRIVATE_DIR_MODE) -> Path:
    """Create `path` and its missing parents as `mode` (0700) folders; return `path`.

    Only folders this call creates get `mode` (whatever the umask): an
    existing folder such as the working directory or /tmp keeps its own.
    """
    missing: list[Path] = []
    current = Path(path)
    while not current.is_dir():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=mode)
        except FileExistsError:
            if not folder.is_dir():
                raise
            continue  # made by a concurrent writer: its mode is that writer's business
        os.chmod(folder, mode)  # mkdir's mode is masked by the umask
    return path


@contextlib.contextmanager
def atomic_writer(
    path: Path, mode: int = PRIVATE_FILE_MODE, *, needed: int | None = None
) -> Iterator[BinaryIO]:
    """Yield a binary file that replaces `path` only if the block ends without error.

    `mode`: the file's permission bits, exactly (the umask does not apply);
    private unless the caller says the file is for others. Missing parent
    folders are created 0700, or 0755 for a file others may read (a shared
    file in a folder they cannot enter would not be shared). `needed`: the
    size about to be written, when known, for the DiskFull message. Raises
    DiskFull when the disk fills; `path` is then left as it was.
    """
    tmp: str | None = None
    try:
        ensure_private_dir(path.parent, PRIVATE_DIR_MODE if mode & 0o077 == 0 else SHARED_DIR_MODE)
        # mkstemp creates the file 0600: nothing readable exists before the chmod below.
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.chmod(tmp, mode)
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        # Said before the temporary file goes, so the free space is that of the failure.
        full = disk_full_from(exc, path, file_size(tmp) if tmp is not None else 0, needed)
        if tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        if full is not None:
            raise full from exc
        raise


def write_atomic(path: Path, data: bytes, mode: int = PRIVATE_FILE_MODE) -> None:
    """Replace `path` with `data` atomically; private (0600) unless `mode` says otherwise."""
    with atomic_writer(path, mode, needed=len(data)) as handle:
        handle.write(data)
