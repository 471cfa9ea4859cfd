"""The zero-copy hand-off between the age encryptor and the threaded ciphertext hasher.

AgeWriter seals chunks straight into buffers lent by ThreadedHashingWriter:
the file must be byte for byte what age reads back, the hash and size those
of the bytes written, and a failing target must surface, not hang.
"""

from __future__ import annotations

import hashlib
import io
import os

import pytest

from handover.bundle.age import CHUNK_SIZE, AgeReader, AgeWriter, X25519Identity
from handover.bundle.age.stream import LendingSink
from handover.bundle.hashing import ThreadedHashingWriter


def _seal_through_lender(data: bytes, step: int) -> tuple[bytes, ThreadedHashingWriter]:
    identity = X25519Identity.generate()
    raw = io.BytesIO()
    with (
        ThreadedHashingWriter(raw).running() as out,
        AgeWriter(out, [identity.recipient()]) as age,
    ):
        for start in range(0, len(data), step):
            age.write(memoryview(data)[start : start + step])
    blob = raw.getvalue()
    with AgeReader(io.BytesIO(blob), [identity]) as reader:
        assert reader.read() == data
    return blob, out


@pytest.mark.parametrize(
    ("size", "step"),
    [
        (0, 1),
        (1, 1),
        (CHUNK_SIZE, CHUNK_SIZE),
        (CHUNK_SIZE + 1, 4096),
        # more than the pool holds at once: the encryptor waits for buffers to come back
        (ThreadedHashingWriter.POOL * 64 * CHUNK_SIZE + 12_345, 4 << 20),
        (3 * 64 * CHUNK_SIZE - 1, 1_000_003),
    ],
)
def test_sealed_into_lent_buffers_reads_back_and_hashes_what_was_written(
    size: int, step: int
) -> None:
    data = os.urandom(size)
    blob, out = _seal_through_lender(data, step)
    assert out.size == len(blob)
    assert out.hexdigest() == hashlib.sha256(blob).hexdigest()


def test_the_hashing_writer_is_a_lending_sink_and_a_file_is_not() -> None:
    assert isinstance(ThreadedHashingWriter(io.BytesIO()), LendingSink)
    assert not isinstance(io.BytesIO(), LendingSink)


def test_written_bytes_come_before_the_lent_buffer() -> None:
    raw = io.BytesIO()
    with ThreadedHashingWriter(raw).running() as out:
        out.write(b"header;")
        view = out.lend()
        view[:5] = b"chunk"
        out.commit(5)
        out.write(b";tail")
    assert raw.getvalue() == b"header;chunk;tail"
    assert out.size == 17 and out.hexdigest() == hashlib.sha256(b"header;chunk;tail").hexdigest()


def test_lend_twice_or_commit_without_lend_is_a_programming_error() -> None:
    out = ThreadedHashingWriter(io.BytesIO())
    with pytest.raises(RuntimeError, match="commit"):
        out.commit(1)
    out.lend()
    with pytest.raises(RuntimeError, match="twice"):
        out.lend()
    out.abort()


class _FailingTarget(io.BytesIO):
    def write(self, data: object) -> int:
        raise OSError(28, "No space left on device")


def test_a_failing_target_surfaces_and_nothing_hangs() -> None:
    identity = X25519Identity.generate()
    data = os.urandom(16 << 20)
    with (
        pytest.raises(OSError, match="No space"),
        ThreadedHashingWriter(_FailingTarget()).running() as out,
        AgeWriter(out, [identity.recipient()]) as age,
    ):
        for start in range(0, len(data), 1 << 20):
            age.write(data[start : start + (1 << 20)])


def _payload(blob: bytes) -> bytes:
    """The STREAM payload: what follows the header's MAC line and the 16-byte nonce."""
    return blob[blob.index(b"\n", blob.index(b"\n---") + 1) + 1 + 16 :]


@pytest.mark.parametrize("step", [1 << 20, 4 << 20, 65_537, 3 * CHUNK_SIZE])
def test_lent_buffers_and_a_plain_file_get_the_same_payload_bytes(
    step: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same file key and nonce: the lending path seals exactly the bytes the plain path does."""
    fixed = iter(range(1_000_000))
    monkeypatch.setattr(
        "handover.bundle.age.writer.os.urandom", lambda n: bytes([next(fixed) % 251]) * n
    )
    data = bytes(range(256)) * (9 * 256 + 3)  # 9 chunks and 768 bytes
    recipient = X25519Identity.generate().recipient()
    fixed = iter(range(1_000_000))
    plain = io.BytesIO()
    with AgeWriter(plain, [recipient]) as age:
        age.write(data)
    fixed = iter(range(1_000_000))
    lent = io.BytesIO()
    with ThreadedHashingWriter(lent).running() as out, AgeWriter(out, [recipient]) as age:
        for start in range(0, len(data), step):
            age.write(data[start : start + step])
    assert _payload(lent.getvalue()) == _payload(plain.getvalue())
    assert len(_payload(plain.getvalue())) == len(data) + 10 * 16  # ten chunks, ten tags
