"""The seal's buffer pool: made lazily, never more than its bound, and a None wakes a waiter."""

from __future__ import annotations

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
