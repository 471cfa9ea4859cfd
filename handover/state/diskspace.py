"""Full disks, said the same way by every writer: which file, which file system, how much.

A bare `OSError: [Errno 28] No space left on device` names neither the
file nor the volume, and the person who reads it wants to know what to free
and where, or how much bigger the volume must be. Every writer of handover
(bundle files, atomic state files, the delivery copy, backups) catches
ENOSPC and EDQUOT and raises `disk_full_error(...)` instead, after removing
its partial file. Writers that know the size of what they write up front (a
copy) also call `require_space` first, so they fail before writing anything.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

from handover.errors import DiskFull
from handover.sizes import size_text

__all__ = [
    "DISK_FULL_ERRNOS",
    "disk_full_cause",
    "disk_full_error",
    "disk_full_from",
    "file_size",
    "filesystem_of",
    "require_space",
]

DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
_MOUNTS = Path("/proc/self/mounts")


def disk_full_cause(exc: BaseException) -> OSError | None:
    """The ENOSPC/EDQUOT OSError behind `exc` (itself, or its cause or context), else None.

    Writer threads re-raise the OSError they met, but a cleanup step may fail
    in turn and hide it as the context of another exception: look down the chain.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in DISK_FULL_ERRNOS:
            return current
        current = current.__cause__ or current.__context__
    return None


def file_size(path: str | os.PathLike[str]) -> int:
    """Bytes of `path` on disk now (0 when it is gone): what a failed write left."""
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


def _existing(path: Path) -> Path:
    """`path` or its nearest existing parent (a file system question needs a real path)."""
    path = Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _mount_point(path: Path) -> Path:
    while not os.path.ismount(path) and path != path.parent:
        path = path.parent
    return path


def _fs_type(mount: Path) -> str | None:
    """The type of the file system mounted at `mount`, from /proc (None where unknown)."""
    try:
        lines = _MOUNTS.read_text().splitlines()
    except OSError:
        return None
    kind = None
    for line in lines:  # the last entry for a mount point is the one in effect
        fields = line.split()
        if len(fields) >= 3 and _unescape(fields[1]) == str(mount):
            kind = fields[2]
    return kind


def _unescape(field: str) -> str:
    r"""/proc/self/mounts writes space, tab, newline and backslash as `\040`-style octal."""
    for code in ("040", "011", "012", "134"):
        field = field.replace(f"\\{code}", chr(int(code, 8)))
    return field


def filesystem_of(path: str | os.PathLike[str]) -> str:
    """`/srv/bundles (ext4)`: the mount point holding `path`, with its type when known."""
    mount = _mount_point(_existing(Path(path)))
    kind = _fs_type(mount)
    return f"{mount} ({kind})" if kind else str(mount)


def _free_bytes(path: Path) -> int | None:
    try:
        return shutil.disk_usage(_existing(path)).free
    except OSError:
        return None


def disk_full_error(
    path: str | os.PathLike[str],
    written: int,
    needed: int | None = None,
    *,
    cause: OSError | None = None,
) -> DiskFull:
    """The one-line DiskFull for `path`: file system, bytes written, free space, space needed.

    `written`: bytes of this write that reached the disk before it filled
    (for a copy of several files, of the whole copy). `needed`: the total the
    write needs, when the writer knows it. `cause`: the OSError met, which
    says whether a quota (EDQUOT) or the disk itself (ENOSPC) ran out.
    """
    target = Path(os.path.abspath(path))
    filesystem = filesystem_of(target)
    free = _free_bytes(target)
    what = (
        "disk quota exceeded" if cause is not None and cause.errno == errno.EDQUOT else "disk full"
    )
    parts = [
        f"{size_text(written)} written" if written else "nothing written",
        f"{size_text(free)} free" if free is not None else "free space unknown",
    ]
    if needed is not None:
        parts.append(f"{size_text(needed)} needed")
    return DiskFull(
        f"{target}: {what} on {filesystem}: {', '.join(parts)}",
        path=str(target),
        filesystem=filesystem,
        written=written,
        free=free,
        needed=needed,
    )


def disk_full_from(
    exc: BaseException,
    path: str | os.PathLike[str],
    written: int,
    needed: int | None = None,
) -> DiskFull | None:
    """The DiskFull to raise instead of `exc` when a full disk caused it, else None.

    None too when `exc` already is a DiskFull (an inner writer said it first,
    naming its own file): it passes through unchanged.
    """
    if isinstance(exc, DiskFull):
        return None
    cause = disk_full_cause(exc)
    if cause is None:
        return None
    return disk_full_error(path, written, needed, cause=cause)


def require_space(path: str | os.PathLike[str], needed: int) -> None:
    """Raise DiskFull (nothing written) when the file system of `path` has less than `needed` free.

    For writers that know their size up front: better to refuse at once
    than after copying most of it. The write itself still handles ENOSPC,
    since free space can shrink while it runs.
    """
    free = _free_bytes(Path(path))
    if free is not None and free < needed:
        raise disk_full_error(path, 0, needed)
