"""Append-only JSON-lines journals (incidents, on-site interventions, visits): one way to append.

A change is decided on the journal as read under an exclusive `flock`, so two
writers never both add the same step; its lines go in one `write`, then
fsync (and the folder's fsync when the file was created): a crash leaves the
journal as it was or with the whole change.

With a shared state store (`HANDOVER_STATE_URL=postgresql://...`) the
contract's journal is the store's journal of the same name: the change is
decided and appended in one transaction under the journal's lock there, so
workers on several machines append to one journal; the file is this
worker's copy, rewritten from the store (`handover.state.shared_blob`).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from handover.state.atomic import ensure_private_dir
from handover.state.shared_blob import journal_copy, shared_journal

R = TypeVar("R", bound=BaseModel)


def locked_append(path: Path, decide: Callable[[bytes], Sequence[R]]) -> list[R]:
    """Under an exclusive lock: read the journal, let `decide` return records, append them."""
    shared = shared_journal(path)
    if shared is not None:
        decided: list[R] = []

        def lines(data: bytes) -> list[bytes]:
            decided[:] = list(decide(data))
            return [r.model_dump_json().encode() for r in decided]

        journal_copy(path)  # refuses a copy from before the store was shared
        shared.append_decided(lines)
        journal_copy(path)
        return decided
    created = not path.exists()
    ensure_private_dir(path.parent)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "r+b") as handle, _flocked(handle):
        handle.seek(0)
        records = list(decide(handle.read()))
        handle.seek(0, os.SEEK_END)
        handle.write(b"".join((r.model_dump_json() + "\n").encode() for r in records))
        handle.flush()
        os.fsync(handle.fileno())
    if created:
        folder = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)
    return records


@contextlib.contextmanager
def _flocked(handle: Any) -> Iterator[None]:
    fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
