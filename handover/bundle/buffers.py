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
"""

from __future__ import annotations

import mmap
import queue
import threading

#: a buffer of the seal's stages: writable, sliceable, a buffer for memoryview and readinto
Buffer = mmap.mmap


def new_buffer(size: int) -> Buffer:
    """A zeroed buffer of `size` bytes, returned to the system as soon as it is dropped."""
    return mmap.mmap(-1, size)


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
