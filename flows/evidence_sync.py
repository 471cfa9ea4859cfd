"""Each run's copy of the contract's evidence, kept in step with the evidence store.

With `HANDOVER_EVIDENCE_URL=s3://bucket/prefix`, a worker's contract folder
is its copy of a mirror (`handover.state.evidence`): runs of one contract
land on any worker, and each must see what the others wrote (the exit seals
the takeover's baseline, whichever machine took it). So a run of a phase:

1. registers this worker as a holder of local copies, then pulls the
   evidence the store has (new or changed files, deletions made elsewhere);
2. pushes what it wrote before each checklist item is recorded done
   (`sync_point`), so an item is never done in the shared checklist with its
   evidence only on the disk of a worker that may die next;
3. pushes again when it ends, however it ends, and then, if no other run of
   the contract on this machine still uses the folder, removes its local
   copies of client data (`ContractPaths.working_copies`) and its holder
   entry: between runs a worker keeps no copy of client data, and a worker
   that still may (a run killed with -9) stays named in the index, which the
   erasure certificate reports.

Without the variable (or with a shared `file:` folder) the folder is the
evidence, and all of this does nothing.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from handover.errors import HandoverError
from handover.evidence import EvidenceMirror, evidence_mirror
from handover.state.layout import ContractPaths
from tasks.runtime import flow_run_id

_log = logging.getLogger(__name__)
_active: dict[str, tuple[EvidenceMirror, threading.Lock]] = {}
_active_lock = threading.Lock()


def working_relpaths(paths: ContractPaths) -> list[str]:
    """The working copies of client data, as relpaths of the contract folder (POSIX)."""
    root = paths.root
    return [folder.relative_to(root).as_posix() for folder, _ in paths.working_copies()]


@contextmanager
def evidence_synced(contract: str, *, pull: bool = True) -> Iterator[EvidenceMirror | None]:
    """Hold this worker's copy of `contract`'s evidence in step with the store for the block.

    `pull=False` for a run that only adds files of its own (the health
    round): it publishes what it wrote without first fetching the rest.
    """
    paths = ContractPaths(contract)
    mirror = evidence_mirror(contract, paths.root)
    if mirror is None:
        yield None
        return
    run = flow_run_id() or f"process-{os.getpid()}"
    # At the end, alone on the folder: this worker's copies of client data go (they are in
    # the store); another run of the contract here still at work keeps them.
    with mirror.in_use(run, evict=working_relpaths(paths)):
        if pull:
            got = mirror.pull()
            _log.info(
                "evidence of %s from %s: %d file(s), %d byte(s) fetched, %d removed",
                contract,
                mirror.where,
                got.files,
                got.bytes,
                got.removed,
            )
        lock = threading.Lock()
        with _active_lock:
            _active[contract] = (mirror, lock)
        failed = True
        try:
            yield mirror
            failed = False
        finally:
            with _active_lock:
                _active.pop(contract, None)
            _publish(mirror, lock, contract, raise_errors=not failed)


def sync_point(contract: str) -> None:
    """Publish what this run wrote so far (before an item is recorded done); no mirror: nothing."""
    with _active_lock:
        active = _active.get(contract)
    if active is not None:
        _publish(*active, contract, raise_errors=True)


def _publish(
    mirror: EvidenceMirror, lock: threading.Lock, contract: str, *, raise_errors: bool
) -> None:
    """Push under the run's lock (items of one run may finish on several threads)."""
    try:
        with lock:
            sent = mirror.push()
    except HandoverError as exc:
        if raise_errors:
            raise
        # The run already failed: its own error is the one to report; this one is logged.
        _log.error("evidence of %s not published to %s: %s", contract, mirror.where, exc)
        return
    if sent.files:
        _log.info(
            "evidence of %s to %s: %d file(s), %d byte(s)",
            contract,
            mirror.where,
            sent.files,
            sent.bytes,
        )
