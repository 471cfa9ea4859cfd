"""The seal's buffer pool: made lazily, never more than its bound, and a None wakes a waiter."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest

from handover.bundle.buffers import Buffer, BufferPool


def test_buffers_are_made_only_when_needed_and_reused() -> None:
    pool = BufferPool(3, 1024)
    assert pool.made == 0
    first = pool.get()
    assert isinstance(first, Buffer) and len(first) == 1024 and pool.made == 1
    assert first[:] == bytes(1024)  # zeroed
    pool.put(first)
    assert pool.get() is first and pool.made == 1  # a returned buffer before a new one


def test_a_get_beyond_the_bound_waits_for_a_returned_buffer() -> None:
    pool = BufferPool(2, 16)
    held = [pool.get(), pool.get()]
    got: list[Buffer | None] = []
    waiter = threading.Thread(target=lambda: got.append(pool.get()), daemon=True)
    waiter.start()
    waiter.join(0.3)
    assert waiter.is_alive() and not got and pool.made == 2  # waiting, nothing new made
    pool.put(held[0])
    waiter.join(30)
    assert got == [held[0]] and got[0] is held[0]


def test_none_wakes_a_waiting_get() -> None:
    pool = BufferPool(1, 16)
    pool.get()
    got: list[Buffer | None] = []
    waiter = threading.Thread(target=lambda: got.append(pool.get()), daemon=True)
    waiter.start()
    pool.put(None)
    waiter.join(30)
    assert got == [None]


@pytest.mark.parametrize(("count", "size"), [(0, 16), (1, 0)])
def test_an_empty_pool_is_refused(count: int, size: int) -> None:
    with pytest.raises(ValueError, match="at least one"):
        BufferPool(count, size)


def test_buffers_go_back_to_the_system_when_dropped_whatever_malloc_did_before() -> None:
    """A freed 16 MiB block raises glibc's mmap threshold; pool buffers are returned anyway.

    On threads, as the seal's stages run: bytearrays of 4 MiB would stay in
    the threads' malloc arenas (over 100 MiB here), maps go back at once.
    """

    def rss_kib() -> int:
        with open("/proc/self/status") as status:
            return int(next(line for line in status if line.startswith("VmRSS")).split()[1])

    def seal_like() -> None:
        for _ in range(3):  # one volume after another on the same thread
            pool = BufferPool(8, 4 << 20)
            buffers = [pool.get() for _ in range(8)]
            assert all(buffer is not None for buffer in buffers)

    big = bytes(16 << 20)
    del big  # from here on, malloc keeps freed blocks of a few MiB in its arenas
    before = rss_kib()
    threads = [threading.Thread(target=seal_like) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert rss_kib() - before < 16 << 10  # 4 x 32 MiB made, 3 times; under 16 MiB stays


_TRIM_CHILD = """
import threading
from handover.bundle.buffers import trim_heap

def rss_kib():
    with open("/proc/self/status") as status:
        return int(next(line for line in status if line.startswith("VmRSS")).split()[1])

kept = []

def volume_like():
    blocks = [bytes([n % 251]) * (64 << 10) for n in range(1024)]  # 64 MiB
    kept.append(bytes([1]) * (64 << 10))  # above them in the arena: no free top
    del blocks

before = rss_kib()
thread = threading.Thread(target=volume_like)
thread.start()
thread.join(60)
left = rss_kib() - before
trimmed = trim_heap()
print(left, int(trimmed), rss_kib() - before, len(kept))
"""


def test_trim_heap_gives_back_what_a_thread_freed_under_a_live_block() -> None:
    """What a volume's thread freed stays in its arena (a live block above it) until trimmed.

    Blocks of 64 KiB come from the thread's malloc arena; the last one stays
    alive, so free() cannot shrink the arena's top and the pages stay resident.
    In a child process: in a test worker, a thread may be given an arena whose
    free pages earlier tests left resident, and then nothing grows to be given
    back (CI saw 1.1 MiB).
    """
    run = subprocess.run(
        [sys.executable, "-c", _TRIM_CHILD],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    left, trimmed, after, kept = (int(word) for word in run.stdout.split())
    assert left > 32 << 10  # freed, but still resident: what the exit's traces showed
    assert trimmed == 1  # Linux with glibc, as the tests and the service run
    assert after < left - (32 << 10)
    assert kept == 1  # the live block is untouched


def _child_kib(script: str, mode: str) -> int:
    """The KiB a child process running `script` in `mode` prints last (malloc settings are
    process-wide: set in this process, they would outlive the test)."""
    run = subprocess.run(
        [sys.executable, "-c", script, mode],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return int(run.stdout.split()[-1])


_ARENAS_CHILD = """
import sys, threading
from handover.bundle.buffers import limit_arenas

def rss_kib():
    with open("/proc/self/status") as status:
        return int(next(line for line in status if line.startswith("VmRSS")).split()[1])

if sys.argv[1] == "limit":
    assert limit_arenas(2)
elif sys.argv[1] == "flows":
    import flows  # caps them as the flows' processes do, before their threads
done = threading.Event()
kept = []

def volume_like():
    blocks = [bytes([n % 251]) * (64 << 10) for n in range(256)]  # 16 MiB
    kept.append(bytes(64 << 10))  # above them: the freed blocks stay in the arena
    del blocks
    done.wait()  # alive, as an export's threads are while the others run

before = rss_kib()
threads = [threading.Thread(target=volume_like) for _ in range(8)]
for thread in threads:
    thread.start()
    thread.join(0.5)  # one after another, all alive: each may take an arena of its own
print(rss_kib() - before)
done.set()
"""


def test_limit_arenas_lets_threads_reuse_what_others_freed() -> None:
    """Eight live threads each free 16 MiB: one arena each keeps ~128 MiB, two arenas far less.

    In a child process: the cap is process-wide and would outlive this test.
    """

    default, limited, flows = (_child_kib(_ARENAS_CHILD, m) for m in ("default", "limit", "flows"))
    assert default > 96 << 10  # the threads' arenas keep what they freed
    assert limited < default // 2
    assert flows < default // 2  # importing the flows package set the cap


_THRESHOLD_CHILD = """
import sys
from handover.bundle.buffers import fix_mmap_threshold

def rss_kib():
    with open("/proc/self/status") as status:
        return int(next(line for line in status if line.startswith("VmRSS")).split()[1])

if sys.argv[1] == "fixed":
    assert fix_mmap_threshold()
elif sys.argv[1] == "flows":
    import flows  # tunes malloc as the flows' processes do
big = bytes([1]) * (16 << 20)  # an S3 range: a map of its own, whatever the threshold
del big  # by default glibc now raises its threshold to 16 MiB
before = rss_kib()
blocks, kept = [], []
for n in range(8):
    blocks.append(bytes([n + 2]) * (4 << 20))  # written: resident
    kept.append(bytes([n]) * (64 << 10))  # alive above it: the freed block cannot be trimmed
del blocks
print(rss_kib() - before)
"""


def test_fixed_mmap_threshold_gives_back_large_blocks_after_a_larger_one() -> None:
    """Once a 16 MiB block is freed, freed 4 MiB blocks stay resident unless the threshold is fixed.

    In a child process: the setting is process-wide and would outlive this test.
    """

    default, fixed, flows = (_child_kib(_THRESHOLD_CHILD, m) for m in ("default", "fixed", "flows"))
    assert default > 24 << 10  # 8 x 4 MiB came from the heap and stayed there
    assert fixed < 4 << 10  # each was a map of its own, gone when freed
    assert flows < 4 << 10  # importing the flows package fixed it
