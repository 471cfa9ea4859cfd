"""Hashing streams: what passes through is hashed and counted exactly once."""

from __future__ import annotations

import hashlib
import io

from handover.bundle.hashing import HashingReader, HashingWriter


def test_hashing_reader_covers_reads_readinto_and_the_drained_rest() -> None:
    data = bytes(range(256)) * 10_000
    reader = HashingReader(io.BytesIO(data))
    first = reader.read(1000)
    buffer = bytearray(5000)
    got = reader.readinto(buffer)
    reader.drain()
    assert first == data[:1000] and bytes(buffer[:got]) == data[1000 : 1000 + got]
    assert reader.size == len(data)
    assert reader.hexdigest() == hashlib.sha256(data).hexdigest()


def test_hashing_writer_passes_everything_through() -> None:
    out = io.BytesIO()
    writer = HashingWriter(out)
    for piece in (b"abc", memoryview(b"defg"), b""):
        writer.write(piece)
    writer.flush()
    assert out.getvalue() == b"abcdefg" and writer.size == 7
    assert writer.hexdigest() == hashlib.sha256(b"abcdefg").hexdigest()
