"""A bounded pool of large buffers, each made only when first needed.

The seal's stages (tar reader, parser, encryptor, ciphertext hasher and
writer) pass buffers of a few MiB between threads; a fixed pool bounds the
memory and makes a slow stage slow the others down. A buffer is resident
memory once it is written, and a
stage whose consumer keeps up never needs the whole pool: made lazily, the
buffers of a small volume, of the index, or of a fast target mostly never
exist, which counts when several volumes are sealed at once.

Each buffer is an anonymous memory map, not a bytearray, so that its memory
goes back to the system when its volume ends. A bytearray of a few MiB comes
from malloc, which maps it on its own only while it is above malloc's mmap
threshold; glibc raises that threshold to the largest block freed so far (an
S3 range of 16 MiB, for one), and after that the seal's buffers come from
per-thread arenas that keep their pages when freed: an exit's process stayed
at its peak of the exports (some 180 MiB above its start) for the rest of the
run. A map is also filled with zeros only where it is written.

What a seal frees through malloc all the same (the parser's rows, member
records, boto3's reads, JSON being written) goes back to the arena of the
thread that made it, and glibc hands back only the free top of an arena:
`trim_heap` asks it for every free page, once a volume has ended.
"""

from __future__ import annotations

import ctypes
import functools
import mmap
import queue
import sys
import threading

#: a buffer of the seal's stages: writable, sliceable, a buffer for memoryview and readinto
Buffer = mmap.mmap


def new_buffer(size: int) -> Buffer:
    """A zeroed buffer of `size` bytes, returned to the system as soon as it is dropped."""
    return mmap.mmap(-1, size)


#: mallopt's parameter for the number of malloc arenas (glibc's malloc.h)
M_ARENA_MAX = -8
#: arenas for a sealing process: the threads allocate mostly holding the GIL
SEAL_ARENAS = 2


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    """glibc, or None where there is none (musl, macOS, Windows)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    except (OSError, AttributeError):
        return None
    return libc


def limit_arenas(count: int = SEAL_ARENAS) -> bool:
    """Cap the process's malloc arenas at `count` (from now on); False where nothing can.

    Why, though it is process-wide: glibc gives threads up to 8 arenas per core,
    each keeping its own freed memory; an exit seals four volumes at once on
    some 30 threads (tar, parser, hashers, 16 S3 downloads), and with one arena
    per thread what they freed stayed resident after the exports (1 GiB exit,
    single runs on a loaded machine: ~195-230 MiB afterwards, 181-194 with 2
    arenas). Python threads allocate
    holding the GIL, so fewer arenas add little lock contention. Arenas made
    before the call stay; threads started after it share at most `count`,
    but only if the process had not yet made 8 arenas: glibc fixes its
    limit then (`arena_get2`), and a later call changes nothing. So the flows
    call it when their package is imported (flows/__init__.py).
    """
    libc = _glibc()
    return libc is not None and libc.mallopt(M_ARENA_MAX, count) == 1


#: mallopt's parameter for the size from which malloc maps a block on its own
M_MMAP_THRESHOLD = -3
#: blocks this large or larger are maps of their own, unmapped as soon as they are freed
MMAP_THRESHOLD = 1 << 20


def fix_mmap_threshold(size: int = MMAP_THRESHOLD) -> bool:
    """Map every block of `size` bytes or more on its own, for good; False where nothing can.

    Why: glibc starts at 128 KiB and raises its threshold to the largest
    mapped block freed so far (up to 32 MiB). One S3 range of 16 MiB
    freed, and every block under 16 MiB came from the arenas from then on:
    8 MiB objects, boto3's reads, the bytes of a pipe read. Freed in the
    middle of a live heap, their pages stayed resident; a 1 GiB exit of
    100,000 files held ~30 MiB of free arena memory after its exports
    (that a malloc_trim could not give back: pages shared with live
    chunks). A fixed threshold turns the raising off: a large block costs
    an mmap and its page faults, and its memory goes back when it is freed.
    Measured on that exit (one run each): peak RSS 259 MiB instead of 296,
    the takeover 221 instead of 243, at the same CPU.
    """
    libc = _glibc()
    return libc is not None and libc.mallopt(M_MMAP_THRESHOLD, size) == 1


def tune_malloc() -> bool:
    """Both settings a long process of many threads and large blocks needs; False where none can.

    Call it before the process starts threads (see `limit_arenas`).
    """
    return limit_arenas() and fix_mmap_threshold()


def trim_heap() -> bool:
    """Return the free pages of every malloc arena to the system; False where nothing can.

    Why: an exit seals its volumes at once on many threads, each with its own
    arena; what a volume allocated and freed (tens of MiB for 100,000 files)
    stayed resident after it ended, under the next peak (the credentials
    export's Argon2, the index). malloc_trim(0) walks all arenas and gives back
    every whole free page, not only the top ones; it costs a few milliseconds.
    """
    libc = _glibc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    return True


class BufferPool:
    """At most `count` buffers of `size` bytes; `get` waits when all are out.

    `put(None)` wakes one waiting `get` with None (how a stage is told to stop).
    """

    def __init__(self, count: int, size: int) -> None:
        if count < 1 or size < 1:
            raise ValueError("a buffer pool needs at least one buffer of at least one byte")
        self.size = size
        self._queue: queue.Queue[Buffer | None] = queue.Queue()
        self._lock = threading.Lock()
        self._count = count
        self._unmade = count

    def get(self) -> Buffer | None:
        """A free buffer: a returned one, else a new one while the pool allows, else wait."""
        try:
            return self._queue.get_nowait()
        except queue.Empty:
            pass
        with self._lock:
            if self._unmade > 0:
                self._unmade -= 1
                return new_buffer(self.size)
        return self._queue.get()

    def put(self, buffer: Buffer | None) -> None:
        self._queue.put(buffer)

    @property
    def made(self) -> int:
        """How many buffers exist so far (for tests and benchmarks)."""
        with self._lock:
            return self._count - self._unmade
