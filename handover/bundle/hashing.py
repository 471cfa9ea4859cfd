"""Streams that hash the bytes passing through them, so that data is read or written once.

A volume's ciphertext is hashed while the decryptor pulls it (verify, open,
the backup restore check) or while the encryptor pushes it to its store
(backups, and the bundle writer on threads of its own), instead of in a
second pass over the file.
"""

from __future__ import annotations

import contextlib
import hashlib
import queue
import threading
from collections.abc import Callable, Iterator
from typing import IO, Any

from handover.bundle.buffers import Buffer, BufferPool, new_buffer

DRAIN_SIZE = 1 << 20


class HashingReader:
    """Hashes and counts what is read from `src`; `readinto` is kept when `src` has it.

    `on_read(count)`, when given, is told every count read (a progress display).
    """

    def __init__(self, src: IO[bytes], on_read: Callable[[int], None] | None = None) -> None:
        self._src = src
        self._sha = hashlib.sha256()
        self._on_read = on_read
        self.size = 0

    def _count(self, got: int) -> None:
        self.size += got
        if self._on_read is not None:
            self._on_read(got)

    def readinto(self, buffer: Any) -> int:
        got = self._src.readinto(buffer)  # type: ignore[attr-defined]
        if got:
            self._sha.update(memoryview(buffer)[:got])
            self._count(got)
        return int(got or 0)

    def read(self, size: int = -1, /) -> bytes:
        data = self._src.read(size)
        self._sha.update(data)
        self._count(len(data))
        return data

    def drain(self) -> None:
        """Read what the consumer left (nothing, for a valid file) so the hash covers it all."""
        while chunk := self._src.read(DRAIN_SIZE):
            self._sha.update(chunk)
            self._count(len(chunk))

    def hexdigest(self) -> str:
        return self._sha.hexdigest()


class HashingWriter:
    """Hashes and counts what is written to `dst`, inline (see the bundle writer for threads)."""

    def __init__(self, dst: IO[bytes]) -> None:
        self._dst = dst
        self._sha = hashlib.sha256()
        self.size = 0

    def write(self, data: Any) -> int:
        self._sha.update(data)
        self.size += len(data)
        self._dst.write(data)
        return len(data)

    def flush(self) -> None:
        self._dst.flush()

    def hexdigest(self) -> str:
        return self._sha.hexdigest()


class ThreadedHashingWriter:
    """Hashes and writes the ciphertext on a thread of its own, without copying it.

    SHA-256 of the ciphertext and the write to the target each cost about
    as much as the encryption: done inline they would make the encrypting
    thread the bottleneck. The encryptor borrows a pooled buffer (`lend`),
    seals its chunks straight into it and hands it back filled (`commit`);
    the worker thread hashes it, writes it and returns it to the pool.
    `write` (the age header, other callers) copies into a pooled buffer
    instead. At most POOL buffers are in flight, so memory stays bounded and
    a slow target slows the encryptor down. Errors of the target surface on
    the next `write`, `lend` or on `close`.

    One thread for both, not one each: on two cores the CPU of the stages is
    the bound either way, and each extra hand-off between threads is a
    wake-up (a sixth fewer voluntary context switches per volume measured,
    which count when the machine is busy or several volumes run at once).
    """

    POOL = 2
    # 8 sealed age chunks (64 KiB + 16-byte tag each): one hand-off per 512 KiB of plaintext,
    # as the pump reads (see pump.READ_SIZE for why not more)
    BUFFER_SIZE = 8 * (64 * 1024 + 16)

    def __init__(self, dst: IO[bytes]) -> None:
        self._dst = dst
        self._sha = hashlib.sha256()
        self.size = 0
        self._free = BufferPool(self.POOL, self.BUFFER_SIZE)
        self._current: Buffer | None = None  # filled by write()
        self._current_len = 0
        self._lent: Buffer | None = None  # filled by the borrower
        self._jobs: queue.Queue[tuple[Buffer, int] | None] = queue.Queue()
        self._error: BaseException | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="seal-hash-write", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        update = self._sha.update
        write = self._dst.write
        while (job := self._jobs.get()) is not None:
            buffer, count = job
            try:
                if self._error is None:
                    view = memoryview(buffer)[:count]
                    update(view)
                    write(view)
            except BaseException as exc:
                self._error = exc
            finally:
                self._free.put(buffer)

    def _take(self) -> Buffer:
        buffer = self._free.get()
        assert buffer is not None  # None is never put in this pool
        return buffer

    def _check(self) -> None:
        if self._error is not None:
            raise self._error

    def write(self, data: Any) -> int:
        """Copy `data` into a pooled buffer (handed on when full, or at the next `lend`)."""
        self._check()
        count = len(data)
        if self._current is not None and self._current_len + count > len(self._current):
            self._dispatch_current()
        if self._current is None:
            self._current = self._take()
            self._current_len = 0
            if len(self._current) < count:
                self._current = new_buffer(count)
        end = self._current_len + count
        self._current[self._current_len : end] = data
        self._current_len = end
        self.size += count
        return count

    def lend(self) -> memoryview:
        """A free buffer to fill (waits while all are in flight); give it back with `commit`."""
        self._check()
        if self._lent is not None:
            raise RuntimeError("lend() twice without commit()")
        self._dispatch_current()  # bytes written before come first
        self._lent = self._take()
        self._check()
        return memoryview(self._lent)

    def commit(self, count: int) -> None:
        """Hand on the first `count` bytes of the lent buffer, to be hashed and written."""
        buffer, self._lent = self._lent, None
        if buffer is None:
            raise RuntimeError("commit() without lend()")
        self.size += count
        self._dispatch(buffer, count)

    def _dispatch_current(self) -> None:
        buffer, count = self._current, self._current_len
        if buffer is not None:
            self._current = None
            self._dispatch(buffer, count)

    def _dispatch(self, buffer: Buffer, count: int) -> None:
        """Hand a filled buffer to the worker (an empty one back to the pool)."""
        if not count:
            self._free.put(buffer)
            return
        self._jobs.put((buffer, count))

    def flush(self) -> None:
        """Nothing to do: `close()` waits for the threads and flushes the target."""

    def _stop(self) -> None:
        self._closed = True
        self._jobs.put(None)
        self._thread.join()

    def close(self) -> None:
        """Wait until every byte is hashed and written; re-raise a target error."""
        if not self._closed:
            if self._lent is not None:
                raise RuntimeError("close() with a lent buffer not committed")
            self._dispatch_current()
            self._stop()
        self._check()
        self._dst.flush()

    def abort(self) -> None:
        """Stop the threads without raising (the caller is already failing)."""
        if not self._closed:
            self._error = self._error or RuntimeError("bundle: aborted")
            self._stop()

    def hexdigest(self) -> str:
        return self._sha.hexdigest()

    @contextlib.contextmanager
    def running(self) -> Iterator[ThreadedHashingWriter]:
        """Close on success, abort on error."""
        try:
            yield self
        except BaseException:
            self.abort()
            raise
        self.close()
