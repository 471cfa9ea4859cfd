"""The age payload: a push-style writer, a streaming reader (STREAM over ChaCha20-Poly1305).

Files written here open with Debian's `age -d -i KEY` or `rage`, and files
they write open here. The payload is STREAM over ChaCha20-Poly1305 in 64 KiB
chunks: the writer encrypts whole chunks into one preallocated batch buffer
and hands the batch to `dst` in one call; the reader authenticates each chunk
before any of its bytes is returned, so a truncated or tampered file never
yields unauthenticated plaintext. Memory stays bounded (a few MiB) whatever the
size of the stream.

    with AgeWriter(dst, [parse_recipient("age1...")]) as w:
        shutil.copyfileobj(src, w, 1 << 20)
    with AgeReader(src, load_identities(path)) as r:
        shutil.copyfileobj(r, dst, 1 << 20)
"""

from __future__ import annotations

import hashlib
import hmac
import os
import queue
import threading
from collections.abc import Sequence
from types import TracebackType
from typing import Protocol, Self

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from handover.bundle.age.keys import (
    FILE_KEY_SIZE,
    Identity,
    MLKEM768X25519Recipient,
    Recipient,
    ScryptRecipient,
    Stanza,
    b64decode_strict,
    b64encode_raw,
    hkdf_sha256,
)
from handover.errors import AgeFormatError, NoMatchingIdentity


class ByteSink(Protocol):
    """Where AgeWriter writes: a binary file, a socket wrapper, an upload part buffer.

    `flush()` is called when present. `write` receives memoryviews of a reused
    buffer and must not keep a reference after it returns (the io contract).
    """

    def write(self, data: memoryview, /) -> object: ...


class ByteSource(Protocol):
    """What AgeReader reads from; `readinto` is used when present (one copy less)."""

    def read(self, size: int, /) -> bytes: ...


VERSION_LINE = b"age-encryption.org/v1\n"
CHUNK_SIZE = 64 * 1024
TAG_SIZE = 16
ENC_CHUNK_SIZE = CHUNK_SIZE + TAG_SIZE
NONCE_SIZE = 16
BATCH_CHUNKS = 16  # chunks per write to dst / per read from src: 1 MiB
MAX_HEADER_BYTES = 1 << 20
_COLUMNS = 64


# --- header --------------------------------------------------------------------------------


def _valid_arg(arg: str) -> bool:
    return bool(arg) and all(33 <= ord(c) <= 126 for c in arg)


def encode_header(stanzas: Sequence[Stanza], file_key: bytes) -> bytes:
    """Serialise the header, MAC line included, keyed by `file_key`."""
    out = bytearray(VERSION_LINE)
    for stanza in stanzas:
        if not _valid_arg(stanza.type) or not all(_valid_arg(a) for a in stanza.args):
            raise ValueError(f"invalid stanza {stanza.type!r}")
        out += ("-> " + " ".join([stanza.type, *stanza.args]) + "\n").encode("ascii")
        body = b64encode_raw(stanza.body)
        for i in range(0, len(body), _COLUMNS):
            out += body[i : i + _COLUMNS].encode("ascii") + b"\n"
        if len(body) % _COLUMNS == 0:
            out += b"\n"  # a full last line (or no body) is followed by an empty line
    out += b"---"
    mac = hmac.new(_header_key(file_key), bytes(out), hashlib.sha256).digest()
    out += b" " + b64encode_raw(mac).encode("ascii") + b"\n"
    return bytes(out)


def _header_key(file_key: bytes) -> bytes:
    return hkdf_sha256(file_key, b"", b"header")


class _HeaderParser:
    """Reads header lines from a stream; keeps whatever it read past the header."""

    def __init__(self, src: ByteSource, name: str) -> None:
        self._src = src
        self._name = name
        self._buf = bytearray()
        self._pos = 0
        self._eof = False

    def _fail(self, message: str) -> AgeFormatError:
        return AgeFormatError(f"{self._name}: malformed age header: {message}", "header")

    def line(self) -> bytes:
        """One line including its LF; header failure on EOF or an oversized header."""
        while True:
            end = self._buf.find(b"\n", self._pos)
            if end >= 0:
                out = bytes(self._buf[self._pos : end + 1])
                self._pos = end + 1
                return out
            if self._eof or len(self._buf) > MAX_HEADER_BYTES:
                if self._eof and not self._buf:
                    raise self._fail("empty file")
                raise self._fail("unexpected end of header")
            self._more()

    def _more(self) -> None:
        data = self._src.read(CHUNK_SIZE)
        if data:
            self._buf += data
        else:
            self._eof = True

    def exact(self, size: int) -> bytes:
        while len(self._buf) - self._pos < size and not self._eof:
            self._more()
        out = bytes(self._buf[self._pos : self._pos + size])
        self._pos += len(out)
        return out

    def rest(self) -> bytes:
        return bytes(self._buf[self._pos :])

    def parse(self) -> tuple[list[Stanza], bytes, bytes]:
        """Return (stanzas, bytes covered by the MAC, MAC)."""
        first = self.line()
        if first != VERSION_LINE:
            if first.startswith(b"age-encryption.org/"):
                raise self._fail(f"unsupported version {first.strip()[:40]!r}")
            raise self._fail("not an age file (bad first line)")
        covered = bytearray(first)
        stanzas: list[Stanza] = []
        while True:
            line = self.line()
            if line.startswith(b"---"):
                covered += b"---"
                if not line.startswith(b"--- ") or line[-1:] != b"\n":
                    raise self._fail("malformed MAC line")
                try:
                    mac = b64decode_strict(line[4:-1])
                except ValueError as exc:
                    raise self._fail(f"MAC: {exc}") from exc
                if len(mac) != 32:
                    raise self._fail("MAC has the wrong length")
                return stanzas, bytes(covered), mac
            covered += line
            if not line.startswith(b"-> "):
                raise self._fail("expected a stanza or the MAC line")
            try:
                text = line[3:-1].decode("ascii")
            except UnicodeDecodeError as exc:
                raise self._fail("non-ASCII stanza line") from exc
            args = text.split(" ")
            if not all(_valid_arg(a) for a in args):
                raise self._fail("empty or invalid stanza argument")
            body = bytearray()
            while True:
                bline = self.line()
                covered += bline
                chunk = bline[:-1]
                if len(chunk) > _COLUMNS:
                    raise self._fail("stanza body line longer than 64 columns")
                try:
                    body += b64decode_strict(chunk)
                except ValueError as exc:
                    raise self._fail(f"stanza body: {exc}") from exc
                if len(chunk) < _COLUMNS:
                    break
            stanzas.append(Stanza(args[0], args[1:], bytes(body)))


def _stream_key(file_key: bytes, nonce: bytes) -> ChaCha20Poly1305:
    return ChaCha20Poly1305(hkdf_sha256(file_key, nonce, b"payload"))


def _nonce(counter: int, final: bool) -> bytes:
    return ((counter << 8) | final).to_bytes(12, "big")


# --- writer --------------------------------------------------------------------------------


class AgeWriter:
    """Push-style age encryptor: `write()` plaintext, `close()` seals the final chunk.

    `dst` is never closed here. Leaving a with-block on an exception does not
    write the final chunk, so an aborted stream never decrypts as complete.
    Batches are handed to `dst.write` as memoryviews of a reused buffer: as the
    io contract says, `dst` must not keep a reference after `write` returns.

    With `background=True`, encryption and `dst.write` run on one worker
    thread (ChaCha20-Poly1305 and most sinks release the GIL), so the caller's
    own work (tar parsing, hashing) overlaps with them; `write` then copies the
    plaintext into one of three 1 MiB batch buffers, and an error of `dst` is
    raised by the next `write` or by `close`.
    """

    def __init__(
        self, dst: ByteSink, recipients: Sequence[Recipient], *, background: bool = False
    ) -> None:
        if not recipients:
            raise ValueError("AgeWriter needs at least one recipient")
        self._dst = dst
        file_key = os.urandom(FILE_KEY_SIZE)
        if len(recipients) > 1 and any(isinstance(r, ScryptRecipient) for r in recipients):
            raise ValueError("a passphrase (scrypt) recipient must be the only recipient")
        post_quantum = [isinstance(r, MLKEM768X25519Recipient) for r in recipients]
        if any(post_quantum) and not all(post_quantum):
            raise ValueError(
                "post-quantum (age1pq1...) and classic recipients cannot be mixed: "
                "the classic ones would void the quantum resistance"
            )
        stanzas = [s for r in recipients for s in r.wrap(file_key)]
        nonce = os.urandom(NONCE_SIZE)
        self._aead = _stream_key(file_key, nonce)
        dst.write(memoryview(encode_header(stanzas, file_key) + nonce))
        self._counter = 0
        self._closed = False
        self.bytes_in = 0
        self._worker: _SealWorker | None = None
        if background:
            self._worker = _SealWorker(dst, self._aead)
            self._batch, self._batch_view = self._worker.free_buffer()
            self._batch_len = 0
        else:
            self._pending = bytearray(CHUNK_SIZE)
            self._pending_view = memoryview(self._pending)
            self._pending_len = 0
            self._out = bytearray(BATCH_CHUNKS * ENC_CHUNK_SIZE)
            self._out_view = memoryview(self._out)
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
                self.bytes_in += size
                return size
            self._seal(self._pending_view, final=False)
            self._pending_len = 0
        while size - pos > CHUNK_SIZE:
            self._seal(view[pos : pos + CHUNK_SIZE], final=False)
            pos += CHUNK_SIZE
        rest = size - pos
        self._pending[:rest] = view[pos:]
        self._pending_len = rest
        self.bytes_in += size
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
        self.bytes_in += size
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
        end = self._out_len + len(chunk) + TAG_SIZE
        self._aead.encrypt_into(
            _nonce(self._counter, final), chunk, None, self._out_view[self._out_len : end]
        )
        self._counter += 1
        self._out_len = end
        if end + ENC_CHUNK_SIZE > len(self._out):
            self._flush()

    def _flush(self) -> None:
        if self._out_len:
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


BATCH_BYTES = BATCH_CHUNKS * CHUNK_SIZE
_BACKGROUND_BUFFERS = 3


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
            self._aead.encrypt_into(_nonce(counter + i, is_final), chunk, None, out[written:end])
            written = end
        self._dst.write(out[:written])


# --- reader --------------------------------------------------------------------------------


class AgeReader:
    """Streaming age decryptor: the header is parsed and the file key unwrapped at once.

    Raises (from the constructor) AgeFormatError(kind="header") for a malformed
    header, NoMatchingIdentity when no identity unwraps the file key, and
    AgeFormatError(kind="hmac") when the header MAC does not match; (from reads)
    AgeFormatError(kind="payload") for a truncated, tampered or over-long payload,
    before any unauthenticated byte is returned.
    """

    def __init__(self, src: ByteSource, identities: Sequence[Identity], name: str = "") -> None:
        self._src = src
        self.name = name or str(getattr(src, "name", "") or "age file")
        parser = _HeaderParser(src, self.name)
        stanzas, covered, mac = parser.parse()
        if any(s.type == "scrypt" for s in stanzas) and len(stanzas) != 1:
            raise AgeFormatError(f"{self.name}: scrypt stanza must be alone", "header")
        file_key = self._unwrap(stanzas, identities)
        expected = hmac.new(_header_key(file_key), covered, hashlib.sha256).digest()
        if not hmac.compare_digest(expected, mac):
            raise AgeFormatError(f"{self.name}: header MAC does not match (tampered?)", "hmac")
        nonce = parser.exact(NONCE_SIZE)
        if len(nonce) != NONCE_SIZE:
            raise AgeFormatError(f"{self.name}: file ends before the payload nonce", "header")
        self._aead = _stream_key(file_key, nonce)
        self._counter = 0
        # Ciphertext: fixed buffer [start:end), refilled with readinto when possible.
        self._raw = bytearray((BATCH_CHUNKS + 1) * ENC_CHUNK_SIZE)
        self._raw_view = memoryview(self._raw)
        leftover = parser.rest()
        self._raw[: len(leftover)] = leftover
        self._raw_start = 0
        self._raw_end = len(leftover)
        self._src_eof = False
        self._readinto = getattr(src, "readinto", None)
        # Plaintext that passed authentication: [start:end).
        self._plain = bytearray(BATCH_CHUNKS * CHUNK_SIZE)
        self._plain_view = memoryview(self._plain)
        self._plain_start = 0
        self._plain_end = 0
        self._done = False
        self._closed = False

    def _unwrap(self, stanzas: list[Stanza], identities: Sequence[Identity]) -> bytes:
        for identity in identities:
            file_key = identity.unwrap(stanzas)
            if file_key is not None:
                return file_key
        kinds = ", ".join(sorted({s.type for s in stanzas})) or "none"
        raise NoMatchingIdentity(
            f"{self.name}: none of the {len(identities)} identities opens this file "
            f"(recipient types in it: {kinds})"
        )

    def readable(self) -> bool:
        return True

    def _payload_error(self, message: str) -> AgeFormatError:
        return AgeFormatError(f"{self.name}: payload {message}", "payload")

    def _fill_raw(self) -> None:
        """Read until more than one encrypted chunk is buffered, or EOF."""
        if self._raw_start:
            size = self._raw_end - self._raw_start
            self._raw[:size] = self._raw_view[self._raw_start : self._raw_end]
            self._raw_start, self._raw_end = 0, size
        while self._raw_end - self._raw_start <= ENC_CHUNK_SIZE and not self._src_eof:
            target = self._raw_view[self._raw_end :]
            if self._readinto is not None:
                got = self._readinto(target)
            else:
                data = self._src.read(len(target))
                got = len(data)
                target[:got] = data
            if not got:
                self._src_eof = True
            else:
                self._raw_end += got

    def _decrypt_batch(self) -> None:
        """Authenticate and decrypt up to BATCH_CHUNKS chunks into the plaintext buffer."""
        self._plain_start = 0
        self._plain_end = self._decrypt_into(self._plain_view)

    def _decrypt_into(self, dest: memoryview) -> int:
        """Decrypt whole chunks into `dest` while a full chunk fits; returns bytes produced.

        On an authentication failure the chunk's room in `dest` is zeroed before
        raising, so not even the caller's buffer keeps unauthenticated bytes.
        """
        produced = 0
        while len(dest) - produced >= CHUNK_SIZE and not self._done:
            if self._raw_end - self._raw_start <= ENC_CHUNK_SIZE and not self._src_eof:
                self._fill_raw()
            avail = self._raw_end - self._raw_start
            start = self._raw_start
            plain = dest[produced : produced + CHUNK_SIZE]
            try:
                if avail > ENC_CHUNK_SIZE:
                    chunk = self._raw_view[start : start + ENC_CHUNK_SIZE]
                    try:
                        self._aead.decrypt_into(_nonce(self._counter, False), chunk, None, plain)
                    except InvalidTag:
                        raise self._bad_full_chunk(chunk) from None
                    self._raw_start += ENC_CHUNK_SIZE
                    produced += CHUNK_SIZE
                else:
                    produced += self._decrypt_last(self._raw_view[start : start + avail], plain)
            except AgeFormatError:
                plain[:] = bytes(CHUNK_SIZE)
                raise
            self._counter += 1
        return produced

    def _bad_full_chunk(self, chunk: memoryview) -> AgeFormatError:
        try:
            self._aead.decrypt(_nonce(self._counter, True), chunk, None)
        except InvalidTag:
            return self._payload_error(
                f"chunk {self._counter} failed authentication (corrupted or tampered with)"
            )
        return self._payload_error(f"has trailing data after the final chunk {self._counter}")

    def _bad_last_chunk(self, chunk: memoryview) -> AgeFormatError:
        if len(chunk) == ENC_CHUNK_SIZE:
            try:  # a good non-final chunk at EOF: the file was cut at a chunk boundary
                self._aead.decrypt(_nonce(self._counter, False), chunk, None)
            except InvalidTag:
                pass
            else:
                return self._payload_error(
                    f"is truncated: final chunk missing after chunk {self._counter}"
                )
        return self._payload_error(
            f"chunk {self._counter} failed authentication (truncated, corrupted or tampered)"
        )

    def _decrypt_last(self, chunk: memoryview, plain: memoryview) -> int:
        size = len(chunk)
        if size == 0:
            if self._counter == 0:
                raise self._payload_error("is missing (no chunks after the header)")
            raise self._payload_error(
                f"is truncated: final chunk missing after chunk {self._counter - 1}"
            )
        if size < TAG_SIZE:
            raise self._payload_error(f"is truncated: chunk {self._counter} is too short")
        if size == TAG_SIZE and self._counter:
            raise self._payload_error("has an empty final chunk")
        try:
            self._aead.decrypt_into(
                _nonce(self._counter, True), chunk, None, plain[: size - TAG_SIZE]
            )
        except InvalidTag:
            raise self._bad_last_chunk(chunk) from None
        self._raw_start += size
        self._done = True
        return size - TAG_SIZE

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[type-arg]
        """Fill `buffer` with authenticated plaintext; 0 at the (verified) end."""
        if self._closed:
            raise ValueError("read from a closed AgeReader")
        target = memoryview(buffer).cast("B")
        total = 0
        want = len(target)
        while total < want:
            if self._plain_start == self._plain_end:
                if self._done:
                    break
                room = (want - total) // CHUNK_SIZE * CHUNK_SIZE
                if room:  # straight into the caller's buffer: one copy less
                    total += self._decrypt_into(target[total : total + room])
                else:
                    self._decrypt_batch()
                continue
            n = min(want - total, self._plain_end - self._plain_start)
            target[total : total + n] = self._plain_view[self._plain_start : self._plain_start + n]
            self._plain_start += n
            total += n
        return total

    def read(self, size: int | None = -1) -> bytes:
        """Return up to `size` bytes of plaintext (everything left when size < 0)."""
        if size is None or size < 0:
            parts: list[bytes] = []
            while True:
                part = self.read(BATCH_CHUNKS * CHUNK_SIZE)
                if not part:
                    return b"".join(parts)
                parts.append(part)
        if self._closed:
            raise ValueError("read from a closed AgeReader")
        if self._plain_start == self._plain_end and not self._done:
            self._decrypt_batch()
        n = min(size, self._plain_end - self._plain_start)
        if n == 0 and size and not self._done:
            return self.read(size)
        out = bytes(self._plain_view[self._plain_start : self._plain_start + n])
        self._plain_start += n
        return out

    def drain(self) -> int:
        """Read and discard the rest, so a truncated or extended file is still detected.

        Call it when the consumer stops early (a tar reader stops at its
        end-of-archive blocks): the final chunk is only checked when reached.
        Returns the number of plaintext bytes discarded.
        """
        discarded = self._plain_end - self._plain_start
        self._plain_start = self._plain_end
        while not self._done:
            self._decrypt_batch()
            discarded += self._plain_end
            self._plain_start = self._plain_end
        return discarded

    def close(self) -> None:
        """Release buffers; src stays open."""
        self._closed = True

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
        self.close()
