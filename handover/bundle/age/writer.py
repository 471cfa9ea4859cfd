"""AgeWriter: push-style age encryption, optionally on a background thread.

The writer encrypts whole chunks into one preallocated batch buffer and
hands the batch to `dst` in one call, so memory stays bounded (a few MiB)
whatever the size of the stream. Separate from the reader because the two
share only the STREAM construction (`stream.py`) and the header encoding.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Sequence
from types import TracebackType
from typing import Self

from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from handover.bundle.age.compat import recipients_problem
from handover.bundle.age.header import encode_header
from handover.bundle.age.primitives import FILE_KEY_SIZE
from handover.bundle.age.stanza import Recipient
from handover.bundle.age.stream import (
    BATCH_BYTES,
    BATCH_CHUNKS,
    CHUNK_SIZE,
    ENC_CHUNK_SIZE,
    NONCE_SIZE,
    TAG_SIZE,
    ByteSink,
    LendingSink,
    chunk_nonce,
    stream_key,
)
from handover.errors import KeyFormatError

_BACKGROUND_BUFFERS = 3


class AgeWriter:
    """Push-style age encryptor: `write()` plaintext, `close()` seals the final chunk.

    `dst` is never closed here. Leaving a with-block on an exception does not
    write the final chunk, so an aborted stream never decrypts as complete.
    Batches are handed to `dst.write` as memoryviews of a reused buffer: as the
    io contract says, `dst` must not keep a reference after `write` returns.

    A sink that lends its own buffers (`LendingSink`: the bundle writer's
    threaded hashing writer) gets its chunks sealed straight into them, one
    copy of the ciphertext less.

    With `background=True`, encryption and `dst.write` run on one worker
    thread (ChaCha20-Poly1305 and most sinks release the GIL), so the caller's
    own work (tar parsing, hashing) overlaps with them; `write` then copies the
    plaintext into one of three 1 MiB batch buffers, and an error of `dst` is
    raised by the next `write` or by `close`.
    """

    def __init__(
        self, dst: ByteSink, recipients: Sequence[Recipient], *, background: bool = False
    ) -> None:
        problem = recipients_problem(recipients)
        if problem is not None:
            raise KeyFormatError(f"age recipients: {problem}")
        self._dst = dst
        file_key = os.urandom(FILE_KEY_SIZE)
        stanzas = [s for r in recipients for s in r.wrap(file_key)]
        nonce = os.urandom(NONCE_SIZE)
        self._aead = stream_key(file_key, nonce)
        dst.write(memoryview(encode_header(stanzas, file_key) + nonce))
        self._counter = 0
        self._closed = False
        self._worker: _SealWorker | None = None
        if background:
            self._worker = _SealWorker(dst, self._aead)
            self._batch, self._batch_view = self._worker.free_buffer()
            self._batch_len = 0
        else:
            self._pending = bytearray(CHUNK_SIZE)
            self._pending_view = memoryview(self._pending)
            self._pending_len = 0
            self._lender = dst if isinstance(dst, LendingSink) else None
            self._out_view: memoryview | None = (
                None
                if self._lender is not None
                else memoryview(bytearray(BATCH_CHUNKS * ENC_CHUNK_SIZE))
            )
            self._out_len = 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Encrypt `data`; returns len(data). The last chunk is held back until close()."""
        if self._closed:
            raise ValueError("write to a closed AgeWriter")
        view = memoryview(data)
        if view.ndim != 1 or view.format not in ("B", "b", "c"):
            view = view.cast("B")
        if self._worker is not None:
            return self._write_background(view)
        size = view.nbytes
        pos = 0
        if self._pending_len:
            take = min(CHUNK_SIZE - self._pending_len, size)
            self._pending[self._pending_len : self._pending_len + take] = view[:take]
            self._pending_len += take
            pos = take
            if pos == size:
                return size
            self._seal(self._pending_view, final=False)
            self._pending_len = 0
        if size - pos > CHUNK_SIZE:
            # every whole chunk but the last, which may turn out to be the final one
            pos = self._seal_run(view, pos, pos + (size - pos - 1) // CHUNK_SIZE * CHUNK_SIZE)
        rest = size - pos
        self._pending[:rest] = view[pos:]
        self._pending_len = rest
        return size

    def _write_background(self, view: memoryview) -> int:
        assert self._worker is not None
        size = view.nbytes
        pos = 0
        while pos < size:
            if self._batch_len == BATCH_BYTES:  # full, and more data follows: not final
                self._submit(final=False)
            take = min(BATCH_BYTES - self._batch_len, size - pos)
            self._batch[self._batch_len : self._batch_len + take] = view[pos : pos + take]
            self._batch_len += take
            pos += take
        return size

    def _submit(self, final: bool) -> None:
        assert self._worker is not None
        chunks = max(1, -(-self._batch_len // CHUNK_SIZE))
        self._worker.submit(self._batch, self._batch_len, self._counter, final)
        self._counter += chunks
        if not final:
            self._batch, self._batch_view = self._worker.free_buffer()
            self._batch_len = 0

    def _seal(self, chunk: memoryview, final: bool) -> None:
        out = self._out_view
        if out is None:  # a lending sink: seal straight into its next buffer
            assert self._lender is not None
            out = self._out_view = self._lender.lend()
        end = self._out_len + len(chunk) + TAG_SIZE
        self._aead.encrypt_into(
            chunk_nonce(self._counter, final), chunk, None, out[self._out_len : end]
        )
        self._counter += 1
        self._out_len = end
        if end + ENC_CHUNK_SIZE > len(out):
            self._flush()

    def _seal_run(self, view: memoryview, pos: int, stop: int) -> int:
        """Seal the whole chunks of `view[pos:stop]` (none final); return `stop`.

        `_seal` chunk by chunk, with the per-chunk work kept to the cipher
        call: one volume seals 16,384 chunks per GiB.
        """
        encrypt = self._aead.encrypt_into
        counter = self._counter
        out = self._out_view
        out_len = self._out_len
        while pos < stop:
            if out is None:
                assert self._lender is not None
                out = self._out_view = self._lender.lend()
            room = (len(out) - out_len) // ENC_CHUNK_SIZE
            count = min(room, (stop - pos) // CHUNK_SIZE)
            for _ in range(count):
                end = out_len + ENC_CHUNK_SIZE
                nonce = (counter << 8).to_bytes(12, "big")  # chunk_nonce(counter, False)
                encrypt(nonce, view[pos : pos + CHUNK_SIZE], None, out[out_len:end])
                counter += 1
                pos += CHUNK_SIZE
                out_len = end
            self._counter, self._out_len = counter, out_len
            if out_len + ENC_CHUNK_SIZE > len(out):
                self._flush()
                out, out_len = self._out_view, 0
        return stop

    def _flush(self) -> None:
        if self._lender is not None:
            if self._out_view is not None:
                self._lender.commit(self._out_len)
                self._out_view = None
            self._out_len = 0
        elif self._out_len and self._out_view is not None:
            self._dst.write(self._out_view[: self._out_len])
            self._out_len = 0

    def _flush_dst(self) -> None:
        flush = getattr(self._dst, "flush", None)
        if flush is not None:
            flush()

    def flush(self) -> None:
        """Hand the sealed chunks to dst (the held-back last chunk stays)."""
        if self._worker is None:
            if not self._closed:
                self._flush()
            self._flush_dst()

    def close(self) -> None:
        """Seal the final chunk and flush; dst stays open. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._worker is not None:
            try:
                self._submit(final=True)
            finally:
                self._worker.finish()
        else:
            self._seal(self._pending_view[: self._pending_len], final=True)
            self._flush()
        self._flush_dst()

    def abort(self) -> None:
        """Stop without a final chunk: what was written will fail to decrypt as truncated."""
        if self._closed:
            return
        self._closed = True
        if self._worker is not None:
            self._worker.abort()

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


class _SealWorker:
    """One thread that encrypts plaintext batches in order and writes them to dst.

    Three plaintext buffers circulate between the caller and the thread, so
    memory stays bounded and a slow `dst` slows the caller down (backpressure).
    """

    def __init__(self, dst: ByteSink, aead: ChaCha20Poly1305) -> None:
        self._dst = dst
        self._aead = aead
        self._jobs: queue.Queue[tuple[bytearray, int, int, bool] | None] = queue.Queue()
        self._free: queue.Queue[bytearray] = queue.Queue()
        for _ in range(_BACKGROUND_BUFFERS):
            self._free.put(bytearray(BATCH_BYTES))
        self._out = bytearray(BATCH_CHUNKS * ENC_CHUNK_SIZE)
        self._error: BaseException | None = None
        self._aborted = False
        self._thread = threading.Thread(target=self._run, name="age-seal", daemon=True)
        self._thread.start()

    def _raise_error(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def free_buffer(self) -> tuple[bytearray, memoryview]:
        buffer = self._free.get()
        self._raise_error()
        return buffer, memoryview(buffer)

    def submit(self, buffer: bytearray, length: int, counter: int, final: bool) -> None:
        self._raise_error()
        self._jobs.put((buffer, length, counter, final))

    def finish(self) -> None:
        self._jobs.put(None)
        self._thread.join()
        self._raise_error()

    def abort(self) -> None:
        self._aborted = True
        self._jobs.put(None)
        self._thread.join()
        self._error = None

    def _run(self) -> None:
        out = memoryview(self._out)
        while (job := self._jobs.get()) is not None:
            buffer, length, counter, final = job
            try:
                if self._error is None and not self._aborted:
                    self._seal_batch(memoryview(buffer), length, counter, final, out)
            except BaseException as exc:  # handed to the caller's next write/close
                self._error = exc
            finally:
                self._free.put(buffer)

    def _seal_batch(
        self, plain: memoryview, length: int, counter: int, final: bool, out: memoryview
    ) -> None:
        chunks = max(1, -(-length // CHUNK_SIZE))
        written = 0
        for i in range(chunks):
            chunk = plain[i * CHUNK_SIZE : min(length, (i + 1) * CHUNK_SIZE)]
            end = written + len(chunk) + TAG_SIZE
            is_final = final and i == chunks - 1
            self._aead.encrypt_into(
                chunk_nonce(counter + i, is_final), chunk, None, out[written:end]
            )
            written = end
        self._dst.write(out[:written])
