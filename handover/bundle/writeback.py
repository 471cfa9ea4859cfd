"""Start writing a file's pages to disk while the file is still being written.

A volume is written to the page cache at the speed of the seal and made
durable by one fsync once it is complete (`DirectoryTarget`). Left alone,
the kernel starts writing dirty pages only past `dirty_background_ratio` (a
tenth of memory), so a volume of a few GiB reaches the disk only at that
fsync, while the seal has nothing left to overlap it with: a 551 MiB seal
waited 0.1-0.15 s for it. Asking for the writeback of each range as soon
as it is written (`sync_file_range(SYNC_FILE_RANGE_WRITE)`, what
PostgreSQL's `*_flush_after` settings do) spreads the disk's work over the
seal and keeps the dirty pages of an exit of several volumes few.

It is only a hint: it does not wait for the disk and promises nothing about
durability (the fsync still does), so where the call is missing (not Linux,
not glibc) or fails, nothing happens.
"""

from __future__ import annotations

import ctypes
import functools
import io
import sys
from collections.abc import Callable

#: bytes written between two requests (PostgreSQL's backend_flush_after is 512 KiB,
#: its checkpoint_flush_after 256 KiB; larger requests mean fewer calls for the same effect)
WRITEBACK_STEP = 8 << 20
#: linux/fs.h: start writeback of the dirty pages of the range, do not wait for it
SYNC_FILE_RANGE_WRITE = 2

StartWriteback = Callable[[int, int, int], None]


@functools.cache
def _sync_file_range() -> StartWriteback | None:
    """glibc's `sync_file_range`, or None where there is none (macOS, musl without it)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        call = ctypes.CDLL("libc.so.6", use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    call.argtypes = [ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong, ctypes.c_uint]
    call.restype = ctypes.c_int

    def start(fd: int, offset: int, length: int) -> None:
        call(fd, offset, length, SYNC_FILE_RANGE_WRITE)  # a hint: its result is not needed

    return start


def start_writeback(fd: int, offset: int, length: int) -> None:
    """Ask the kernel to start writing `length` bytes of `fd` from `offset` to disk."""
    start = _sync_file_range()
    if start is not None:
        start(fd, offset, length)


class WritebackFile(io.FileIO):
    """A file written from start to end that starts each WRITEBACK_STEP's writeback behind it.

    Used under a BufferedWriter (`writeback_writer`), which hands it the
    large writes of the seal unchanged. Only appends are tracked: the
    bundle files are written once, in order.
    """

    def __init__(self, fd: int, step: int = WRITEBACK_STEP) -> None:
        super().__init__(fd, "wb")
        self._step = step
        self._written = 0
        self._requested = 0  # everything before this offset has been handed to the disk

    def write(self, data: object, /) -> int:
        count = super().write(data)  # type: ignore[arg-type]
        if count:
            self._written += count
            if self._written - self._requested >= self._step:
                start_writeback(self.fileno(), self._requested, self._written - self._requested)
                self._requested = self._written
        return count or 0


def writeback_writer(fd: int, step: int = WRITEBACK_STEP) -> io.BufferedWriter:
    """A buffered binary file over `fd` (owned: closed with it) that writes back as it goes."""
    return io.BufferedWriter(WritebackFile(fd, step))
