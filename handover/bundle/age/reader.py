"""AgeReader: streaming age decryption that never returns unauthenticated plaintext.

The header is parsed and the file key unwrapped when the reader is made;
then each 64 KiB chunk is authenticated before any of its bytes is
returned, so a truncated or tampered file never yields unauthenticated
plaintext, and memory stays bounded whatever the size of the stream.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from types import TracebackType
from typing import Self

from cryptography.exceptions import InvalidTag

from handover.bundle.age.header import HeaderParser, header_key
from handover.bundle.age.stanza import Identity, Stanza
from handover.bundle.age.stream import (
    BATCH_CHUNKS,
    CHUNK_SIZE,
    ENC_CHUNK_SIZE,
    NONCE_SIZE,
    TAG_SIZE,
    ByteSource,
    chunk_nonce,
    stream_key,
)
from handover.errors import AgeFormatError, NoMatchingIdentity


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
        parser = HeaderParser(src, self.name)
        file_key = self._file_key(parser, identities)
        nonce = parser.exact(NONCE_SIZE)
        if len(nonce) != NONCE_SIZE:
            raise AgeFormatError(f"{self.name}: file ends before the payload nonce", "header")
        self._aead = stream_key(file_key, nonce)
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

    def _file_key(self, parser: HeaderParser, identities: Sequence[Identity]) -> bytes:
        """Parse the header, unwrap the file key, and only then check the header MAC with it."""
        stanzas, covered, mac = parser.parse()
        if any(s.type == "scrypt" for s in stanzas) and len(stanzas) != 1:
            raise AgeFormatError(f"{self.name}: scrypt stanza must be alone", "header")
        file_key = self._unwrap(stanzas, identities)
        expected = hmac.new(header_key(file_key), covered, hashlib.sha256).digest()
        if not hmac.compare_digest(expected, mac):
            raise AgeFormatError(f"{self.name}: header MAC does not match (tampered?)", "hmac")
        return file_key

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
                        self._aead.decrypt_into(
                            chunk_nonce(self._counter, False), chunk, None, plain
                        )
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
            self._aead.decrypt(chunk_nonce(self._counter, True), chunk, None)
        except InvalidTag:
            return self._payload_error(
                f"chunk {self._counter} failed authentication (corrupted or tampered with)"
            )
        return self._payload_error(f"has trailing data after the final chunk {self._counter}")

    def _bad_last_chunk(self, chunk: memoryview) -> AgeFormatError:
        if len(chunk) == ENC_CHUNK_SIZE:
            try:  # a good non-final chunk at EOF: the file was cut at a chunk boundary
                self._aead.decrypt(chunk_nonce(self._counter, False), chunk, None)
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
                chunk_nonce(self._counter, True), chunk, None, plain[: size - TAG_SIZE]
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
