"""Writeback as a file is written: requested every step behind the writer, content unchanged."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from handover.bundle import writeback
from handover.bundle.local import DirectoryTarget
from handover.bundle.writeback import WRITEBACK_STEP, start_writeback, writeback_writer


def _record(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int, int]]:
    """Record each request as (path, offset, length), the path read through /proc."""
    requests: list[tuple[str, int, int]] = []

    def start(fd: int, offset: int, length: int) -> None:
        requests.append((os.readlink(f"/proc/self/fd/{fd}"), offset, length))

    monkeypatch.setattr(writeback, "start_writeback", start)
    return requests


def test_each_step_behind_the_writer_is_handed_to_the_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    requests = _record(monkeypatch)
    chunk = bytes(range(256)) * 2048  # 512 KiB, as the seal writes
    path = tmp_path / "v"
    with writeback_writer(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600), step=1 << 20) as out:
        out.write(b"age-header\n")  # small writes are buffered, then counted when they land
        for _ in range(5):
            out.write(chunk)
    size = 11 + 5 * len(chunk)
    assert path.read_bytes() == b"age-header\n" + chunk * 5
    # requests cover the file from its start, in order, without overlap, each >= one step
    assert [r[0] for r in requests] == [str(path)] * len(requests)
    assert len(requests) == 2
    offsets = [r[1] for r in requests]
    assert offsets[0] == 0
    assert all(r[2] >= 1 << 20 for r in requests)
    assert offsets[1] == requests[0][1] + requests[0][2]
    assert offsets[1] + requests[1][2] <= size  # never past what was written


def test_a_bundle_file_larger_than_the_step_is_written_back_as_it_goes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    requests = _record(monkeypatch)
    target = DirectoryTarget(tmp_path / "b")
    with target.open_write("volumes/0001-big.tar.age") as handle:
        for _ in range(3):
            handle.write(b"v" * WRITEBACK_STEP)
        assert [(r[1], r[2]) for r in requests] == [
            (i * WRITEBACK_STEP, WRITEBACK_STEP) for i in range(3)
        ]
        assert requests[0][0].endswith(".tmp")  # while it is still a temporary file
    with target.open_write("README.txt") as handle:
        handle.write(b"small")
    assert len(requests) == 3  # a small file is left to the fsync alone
    assert (tmp_path / "b" / "volumes" / "0001-big.tar.age").stat().st_size == 3 * WRITEBACK_STEP


def test_the_real_call_is_harmless_on_files_and_pipes(tmp_path: Path) -> None:
    """A hint: on a file it returns at once, on a pipe (ESPIPE) or a closed fd it is ignored."""
    path = tmp_path / "f"
    path.write_bytes(b"x" * 65536)
    fd = os.open(path, os.O_RDWR)
    try:
        start_writeback(fd, 0, 65536)
    finally:
        os.close(fd)
    read, write = os.pipe()
    try:
        start_writeback(write, 0, 1)
    finally:
        os.close(read)
        os.close(write)
    start_writeback(write, 0, 1)  # closed: EBADF, ignored
    assert writeback._sync_file_range() is not None  # Linux with glibc: the call is there
