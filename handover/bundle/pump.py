"""Pass a tar stream through unchanged while hashing every member, then seal it.

`pump_tar` runs three stages so both cores work: a reader thread fills
large buffers (`readinto`, GIL released), the calling thread parses and
hashes (hashlib releases the GIL on large buffers), a writer thread encrypts
and writes (cryptography releases it too). Buffers come from a fixed pool,
so memory stays bounded whatever the size of the stream. Separate from the
parser, which knows nothing of threads, and from the `SHA256SUMS` format,
which the trailer only uses.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any, Protocol

from handover.bundle.buffers import Buffer, BufferPool
from handover.bundle.sums import sums_trailer_chunks
from handover.bundle.tarparse import TarParser

# 512 KiB: an exit seals its volumes at once in one process, and each holds POOL_BUFFERS of
# these plus the ciphertext writer's (4 MiB buffers: ~29 MiB per volume, 1 MiB: ~5, 512 KiB:
# ~2.5). Smaller buffers mean more hand-offs, which measured as noise: 409 MiB sealed in one
# process cost 0.86 CPU-s with 1 MiB against 0.87-0.92 with 4 MiB (the data is still in
# cache when it is hashed), and `benchmarks/seal.py` (551 MiB, 2 cores, runs of 5 alternated
# on one morning) sealed in 1.40-1.80 s with 512 KiB against 1.47-1.53 s with 1 MiB, peak
# RSS 57 MiB against 59. Three buffers here and two in the writer: one being read, one
# parsed, one spare.
READ_SIZE = 1 << 19
POOL_BUFFERS = 3
READER_GRACE_S = 30.0


class _Sink(Protocol):
    def write(self, data: Any, /) -> Any: ...


def _read_full(src: IO[bytes], buffer: Buffer) -> int:
    """Fill `buffer` as far as the stream allows (short reads from pipes, sockets, decryptors)."""
    view = memoryview(buffer)
    total = 0
    size = len(buffer)
    readinto = getattr(src, "readinto", None)
    while total < size:
        if readinto is not None:
            got = readinto(view[total:])
        else:
            chunk = src.read(size - total)
            got = len(chunk)
            view[total : total + got] = chunk
        if not got:
            break
        total += got
    return total


class _Pipeline:
    """The queues and threads of one pump: read stage, parse stage (the caller), write stage.

    The first exception of any stage is kept in `error`; the other stages
    stop at their next step, and `pump_tar` raises it once all have stopped.
    """

    def __init__(self, src: IO[bytes], sink: _Sink | None, read_size: int) -> None:
        self.src = src
        self.sink = sink
        self.error: BaseException | None = None
        self._error_lock = threading.Lock()
        self.free = BufferPool(POOL_BUFFERS, read_size)
        self.full: queue.Queue[tuple[Buffer, int] | None] = queue.Queue()
        self.out: queue.Queue[tuple[Buffer, int] | None] = queue.Queue()
        self.stop = threading.Event()
        self.reader = threading.Thread(target=self._read_stage, name="tar-read", daemon=True)
        self.writer = (
            threading.Thread(target=self._write_stage, name="tar-write", daemon=True)
            if sink is not None
            else None
        )

    def fail(self, error: BaseException) -> None:
        with self._error_lock:
            if self.error is None:
                self.error = error

    def start(self) -> None:
        self.reader.start()
        if self.writer is not None:
            self.writer.start()

    def _read_stage(self) -> None:
        try:
            while not self.stop.is_set():
                buffer = self.free.get()
                if buffer is None or self.stop.is_set():
                    return
                count = _read_full(self.src, buffer)
                if not count:
                    break
                self.full.put((buffer, count))
        except BaseException as exc:
            self.fail(exc)
        finally:
            self.full.put(None)

    def _write_stage(self) -> None:
        assert self.sink is not None
        write = self.sink.write
        try:
            while True:
                item = self.out.get()
                if item is None:
                    return
                buffer, count = item
                if self.error is None:
                    write(memoryview(buffer)[:count])
                self.free.put(buffer)
        except BaseException as exc:
            self.fail(exc)
            self.stop.set()
            self.free.put(None)

    def parse_stage(
        self,
        parser: TarParser,
        trailer: Callable[[TarParser], Iterable[bytes]] | None,
        progress: Callable[[int], None] | None,
    ) -> int:
        """Feed every buffer read to `parser`, pass what it keeps on; return bytes passed."""
        written = 0
        while (item := self.full.get()) is not None and self.error is None:
            buffer, count = item
            kept = parser.feed(memoryview(buffer)[:count])
            if progress is not None:
                progress(count)
            if self.writer is not None:
                written += kept
                self.out.put((buffer, kept))
            else:
                written += count
                self.free.put(buffer)
        if self.error is None:
            parser.close()
            if self.writer is not None and trailer is not None:
                written += self._pass_trailer(trailer(parser))
        return written

    def _pass_trailer(self, chunks: Iterable[bytes]) -> int:
        """Copy the trailer's pieces into pool buffers and pass them on; return bytes passed.

        Through the pool, like the archive: a slow target holds at most the
        pool, never the whole trailer (a volume's `SHA256SUMS` is ~100 bytes
        per file).
        """
        pieces = iter(chunks)
        try:
            return self._copy_trailer(pieces)
        finally:
            close = getattr(pieces, "close", None)
            if close is not None:  # a generator: ends its turn (see seal_trailer) even on failure
                close()

    def _copy_trailer(self, pieces: Iterator[bytes]) -> int:
        passed = 0
        buffer: Buffer | None = None
        used = 0
        for chunk in pieces:
            view = memoryview(chunk)
            while view:
                if buffer is None:
                    buffer = self.free.get()
                    if buffer is None or self.error is not None:  # a stage failed
                        return passed
                    used = 0
                count = min(len(view), len(buffer) - used)
                buffer[used : used + count] = view[:count]
                used += count
                view = view[count:]
                if used == len(buffer):
                    self.out.put((buffer, used))
                    passed += used
                    buffer = None
        if buffer is not None:
            self.out.put((buffer, used))
            passed += used
        return passed

    def finish(self) -> None:
        """Stop the stages and wait for them; raise the first error of any stage."""
        self.stop.set()
        self.free.put(None)
        if self.writer is not None:
            self.out.put(None)
            self.writer.join()
        # On failure the reader stops after its current read (a stalled remote producer is
        # left behind after READER_GRACE_S rather than hanging the caller).
        self.reader.join(timeout=READER_GRACE_S if self.error is not None else None)
        if self.error is not None:
            raise self.error


def pump_tar(
    src: IO[bytes],
    parser: TarParser,
    sink: _Sink | None = None,
    *,
    trailer: Callable[[TarParser], Iterable[bytes]] | None = None,
    progress: Callable[[int], None] | None = None,
    read_size: int = READ_SIZE,
) -> int:
    """Stream `src` through `parser` (and on to `sink`, cut before end-of-archive).

    When `sink` is given, `trailer(parser)` is called once the archive has
    ended and its bytes (the `SHA256SUMS` member and a fresh end-of-archive)
    are written after the archive. Returns the number of bytes written to
    `sink` (or read from `src` without one). Raises BundleError when the
    stream is not a complete tar archive; errors of `src` and `sink` pass
    through unchanged.
    """
    pipeline = _Pipeline(src, sink, read_size)
    pipeline.start()
    written = 0
    try:
        written = pipeline.parse_stage(parser, trailer, progress)
    except BaseException as exc:
        pipeline.fail(exc)
    finally:
        pipeline.finish()
    return written


#: one volume of the process renders its trailer at a time (see `seal_trailer`)
_TRAILER_TURN = threading.Lock()


def seal_trailer(parser: TarParser) -> Iterator[bytes]:
    """`SHA256SUMS` member for the files seen, then end-of-archive blocks, in pieces.

    One volume at a time in the process: its {path: digest} map costs ~150
    bytes per file while it lasts (`FileSums`; ~280 with hex digests), and an
    exit's volumes of a similar size end together (three of 30,000 files
    lifted a 1 GiB exit by 14 MiB at once, with hex digests).
    The wait is the time another volume takes to write its trailer, a few
    MB. The turn ends when the generator is closed: `pump_tar` closes it on
    every path, failures included.
    """
    with _TRAILER_TURN:
        yield from sums_trailer_chunks(parser.sums(), parser.archive_size)
