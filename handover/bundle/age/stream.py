"""The STREAM construction of the age payload, shared by the writer and the reader.

The payload is STREAM over ChaCha20-Poly1305 in 64 KiB chunks, keyed by
HKDF of the file key and a random nonce; each chunk's nonce holds its
counter and a last-chunk flag, so a reordered, truncated or extended file
fails authentication. The writer (`writer.py`) and the reader (`reader.py`)
agree on these sizes and keys through this module alone.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from handover.bundle.age.primitives import hkdf_sha256

CHUNK_SIZE = 64 * 1024
TAG_SIZE = 16
ENC_CHUNK_SIZE = CHUNK_SIZE + TAG_SIZE
NONCE_SIZE = 16
BATCH_CHUNKS = 16  # chunks per write to dst / per read from src: 1 MiB
BATCH_BYTES = BATCH_CHUNKS * CHUNK_SIZE


class ByteSink(Protocol):
    """Where AgeWriter writes: a binary file, a socket wrapper, an upload part buffer.

    `flush()` is called when present. `write` receives memoryviews of a reused
    buffer and must not keep a reference after it returns (the io contract).
    """

    def write(self, data: memoryview, /) -> object: ...


@runtime_checkable
class LendingSink(Protocol):
    """A sink that lends its own buffers, so the encryptor seals chunks straight into them.

    `lend()` returns a writable buffer (it may wait for one: backpressure);
    `commit(count)` hands back its first `count` bytes, in stream order after
    anything given to `write` before. Saves one copy of every byte sealed.
    """

    def write(self, data: memoryview, /) -> object: ...

    def lend(self) -> memoryview: ...

    def commit(self, count: int, /) -> None: ...


class ByteSource(Protocol):
    """What AgeReader reads from; `readinto` is used when present (one copy less)."""

    def read(self, size: int, /) -> bytes: ...


def stream_key(file_key: bytes, nonce: bytes) -> ChaCha20Poly1305:
    """The payload cipher for a file key and the payload nonce that follows the header."""
    return ChaCha20Poly1305(hkdf_sha256(file_key, nonce, b"payload"))


def chunk_nonce(counter: int, final: bool) -> bytes:
    """The 12-byte nonce of chunk `counter`: 11 bytes of counter, then the last-chunk flag."""
    return ((counter << 8) | final).to_bytes(12, "big")
