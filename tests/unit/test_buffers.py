"""The seal's buffer pool: made lazily, never more than its bound, and a None wakes a waiter."""

from __future__ import annotations

import threading

import pytest

from handover.bundle.buffers import BufferPool


def test_buffers_are_made_only_when_needed_and_reused() -> None:
    pool = BufferPool(3, 1024)
    assert pool.made == 0
    first = pool.get()
    assert isinstance(first, bytearray) and len(first) == 1024 and pool.made == 1
    pool.put(first)
    assert pool.get() is first and pool.made == 1  # a returned buffer before a new one


def test_a_get_beyond_the_bound_waits_for_a_returned_buffer() -> None:
    pool = BufferPool(2, 16)
    held = [pool.get(), pool.get()]
    got: list[bytearray | None] = []
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
    got: list[bytearray | None] = []
    waiter = threading.Thread(target=lambda: got.append(pool.get()), daemon=True)
    waiter.start()
    pool.put(None)
    waiter.join(30)
    assert got == [None]


@pytest.mark.parametrize(("count", "size"), [(0, 16), (1, 0)])
def test_an_empty_pool_is_refused(count: int, size: int) -> None:
    with pytest.raises(ValueError, match="at least one"):
        BufferPool(count, size)
