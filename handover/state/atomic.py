"""Atomic file outputs: write under a temporary name, fsync, then rename.

A crash leaves either the old file or the new one, never half of one. A
full disk (ENOSPC, EDQUOT) is reported as DiskFull naming the file, its
file system and how far the write got (`handover.state.diskspace`), after
the temporary file is removed.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from handover.state.diskspace import disk_full_from, file_size


@contextlib.contextmanager
def atomic_writer(
    path: Path, mode: int = 0o644, *, needed: int | None = None
) -> Iterator[BinaryIO]:
    """Yield a binary file that replaces `path` only if the block ends without error.

    `needed`: the size about to be written, when known, for the DiskFull message.
    Raises DiskFull when the disk fills; `path` is then left as it was.
    """
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
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


def write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Replace `path` with `data` atomically."""
    with atomic_writer(path, mode, needed=len(data)) as handle:
        handle.write(data)
