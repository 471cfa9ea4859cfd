"""Streams that hash the bytes passing through them, so that data is read or written once.

A volume's ciphertext is hashed while the decryptor pulls it (verify, open,
the backup restore check) or while the encryptor pushes it to its store
(backups), instead of in a second pass over the file.
"""

from __future__ import annotations

import hashlib
from typing import IO, Any

DRAIN_SIZE = 1 << 20


class HashingReader:
    """Hashes and counts what is read from `src`; `readinto` is kept when `src` has it."""

    def __init__(self, src: IO[bytes]) -> None:
        self._src = src
        self._sha = hashlib.sha256()
        self.size = 0

    def readinto(self, buffer: Any) -> int:
        got = self._src.readinto(buffer)  # type: ignore[attr-defined]
        if got:
            self._sha.update(memoryview(buffer)[:got])
            self.size += got
        return int(got or 0)

    def read(self, size: int = -1, /) -> bytes:
        data = self._src.read(size)
        self._sha.update(data)
        self.size += len(data)
        return data

    def drain(self) -> None:
        """Read what the consumer left (nothing, for a valid file) so the hash covers it all."""
        while chunk := self._src.read(DRAIN_SIZE):
            self._sha.update(chunk)
            self.size += len(chunk)

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
