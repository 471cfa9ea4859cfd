"""Sealing large buckets over HTTP: 10,000 small objects, and one 1 GiB object (slow).

Both bundles are opened the way a client does (`sha256sum -c`, `age -d | tar -x`,
`sha256sum -c`); the 1 GiB seal also checks that memory stays bounded while
ranged GETs stream the object.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import Any

import pytest

from handover.bundle.writer import BundleWriter
from handover.connectors.s3 import S3PrefixSource
from tests.fixtures.s3 import BundleKeys, fill_bucket, open_with_standard_tools

pytestmark = pytest.mark.integration
MiB = 1 << 20


def _rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _seal(client: Any, bucket: str, prefix: str, keys: BundleKeys, out: Path) -> Any:
    out.mkdir()
    writer = BundleWriter(out, [keys.recipient], keys.signing_key)
    record = writer.add_volume(S3PrefixSource(client, bucket, prefix, "bucket"))
    writer.finish()
    return record


def test_seal_ten_thousand_small_objects(
    s3_client: Any, s3_bucket: str, bundle_keys: BundleKeys, tmp_path: Path
) -> None:
    objects = {
        f"tenk/d{i // 1000}/obj-{i:05d}.txt": f"object {i}\n".encode() * (1 + i % 5)
        for i in range(10_000)
    }
    fill_bucket(s3_client, s3_bucket, objects, workers=24)
    record = _seal(s3_client, s3_bucket, "tenk/", bundle_keys, tmp_path / "bundle")
    files = [m for m in record.members if m.type == "file"]
    assert len(files) == 10_000
    (folder,) = open_with_standard_tools(tmp_path / "bundle", bundle_keys.key_file, tmp_path / "o")
    extracted = sorted(p for p in folder.rglob("obj-*.txt"))
    assert len(extracted) == 10_000
    assert (folder / "d9" / "obj-09999.txt").read_bytes() == objects["tenk/d9/obj-09999.txt"]


class _Pattern:
    """A 1 GiB readable of repeated random blocks, hashed as it is read (no 1 GiB in memory)."""

    def __init__(self, size: int) -> None:
        import os

        self.left = size
        self.block = os.urandom(4 * MiB)
        self.counter = 0
        self.sha = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        size = min(self.left, 4 * MiB if size < 0 else size)
        out = bytearray()
        while len(out) < size:  # exactly `size` bytes: s3transfer takes a short read for EOF
            self.counter += 1
            out += self.counter.to_bytes(8, "big") + self.block
        data = bytes(out[:size])
        self.left -= len(data)
        self.sha.update(data)
        return data


@pytest.mark.slow
def test_seal_one_gib_object_with_bounded_memory(
    s3_client: Any, s3_bucket: str, bundle_keys: BundleKeys, tmp_path: Path
) -> None:
    pattern = _Pattern(1 << 30)
    s3_client.upload_fileobj(pattern, s3_bucket, "big/one-gib.bin")
    s3_client.put_object(Bucket=s3_bucket, Key="big/small.txt", Body=b"beside the big one\n")

    base = _rss_mib()
    peak = [base]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.01):
            peak[0] = max(peak[0], _rss_mib())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        record = _seal(s3_client, s3_bucket, "big/", bundle_keys, tmp_path / "bundle")
    finally:
        stop.set()
        sampler.join()
    growth = peak[0] - base
    assert growth < 200, f"sealing 1 GiB from S3 grew RSS by {growth:.0f} MiB"
    by_path = {m.path: m for m in record.members}
    assert by_path["one-gib.bin"].size == 1 << 30
    assert by_path["one-gib.bin"].sha256 == pattern.sha.hexdigest()

    (folder,) = open_with_standard_tools(tmp_path / "bundle", bundle_keys.key_file, tmp_path / "o")
    assert (folder / "one-gib.bin").stat().st_size == 1 << 30
    assert (folder / "small.txt").read_bytes() == b"beside the big one\n"
