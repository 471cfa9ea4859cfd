"""A bounded pool of large buffers, each made only when first needed.

The seal's stages (tar reader, parser, encryptor, ciphertext hasher and
writer) pass buffers of a few MiB between threads; a fixed pool bounds the
memory and makes a slow stage slow the others down. A buffer is resident
memory from the moment it exists (bytearray fills it with zeros), and a
stage whose consumer keeps up never needs the whole pool: made lazily, the
buffers of a small volume, of the index, or of a fast target mostly never
exist, which counts when several volumes are sealed at once.
"""

from __future__ import annotations

import queue
import threading


class BufferPool:
    """At most `count` bytearrays of `size` bytes; `get` waits when all are out.

    `put(None)` wakes one waiting `get` with None (how a stage is told to stop).
    """

    def __init__(self, count: int, size: int) -> None:
        if count < 1 or size < 1:
            raise ValueError("a buffer pool needs at least one buffer of at least one byte")
        self.size = size
        self._queue: queue.Queue[bytearray | None] = queue.Queue()
        self._lock = threading.Lock()
        self._count = count
        self._unmade = count

    def get(self) -> bytearray | None:
        """A free buffer: a returned one, else a new one while the pool allows, else wait."""
        try:
            return self._queue.get_nowait()
        except queue.Empty:
            pass
        with self._lock:
            if self._unmade > 0:
                self._unmade -= 1
                return bytearray(self.size)
        return self._queue.get()

    def put(self, buffer: bytearray | None) -> None:
        self._queue.put(buffer)

    @property
    def made(self) -> int:
        """How many buffers exist so far (for tests and benchmarks)."""
        with self._lock:
            return self._count - self._unmade
