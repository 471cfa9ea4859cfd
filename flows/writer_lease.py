"""One writer per contract and phase: a Prefect concurrency lease around each phase run.

Two runs of one phase of one contract (a scheduled and a manual one, two
operators, two workers) would interleave their checklist moves and their
exit state. Each phase run therefore holds the slot of a global concurrency
limit `contract-<id>-<phase>` (one slot, created if absent, never reset)
through a lease it renews while it lives, paused runs included. A second run
waits, logging which run holds the contract, and after
HANDOVER_WRITER_WAIT_SECONDS (default 120) fails with that name, before it
has touched anything.

The lease is per phase, not per contract, on purpose: an exit paused for
weeks until the switch-over must not stop the nightly backups of the same
contract, and the phases write different checklists (the audit log has its
own file lock). The operational tasks, each on its own clock, hold a lease
each (`operational-backups`, ...: `contract-<id>-operational-backups`, its
record `writer-backups.lease` in the operational folder): a drill never
makes the backups wait, and two runs of one task never overlap. Patching
holds `contract-<id>-operational-patching`: two runs never patch one host
at once.

Inside the lease, the contract's evidence is kept in step with the S3
evidence store when there is one (`flows.evidence_sync`).

A process killed with -9 cannot release its lease; Prefect frees it when it
expires (60 s without renewal). On the same machine a rerun does not wait
for that: the lease's id is kept in the phase folder with the holder's pid
and process start time, and a lease whose process is gone is released at
once (`writer.lease`). The dead run itself is marked Crashed by Prefect
(heartbeats and the zombie automation, `flows.zombies`), and the running
item it left is reopened by the rerun (`ChecklistStore.prepare_rerun`).
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
import os
import socket
import threading
import time
import typing
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ParamSpec, TypeVar
from uuid import UUID

from httpx import HTTPStatusError
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
    FlowRunFilterTags,
)
from prefect.client.schemas.objects import ConcurrencyLeaseHolder, StateType

from flows.evidence_sync import evidence_synced
from flows.playbook_guard import guard_playbook_path
from handover.contract.loader import read_contract_id
from handover.errors import HandoverError
from handover.state.atomic import write_atomic
from handover.state.layout import ContractPaths
from tasks.runtime import ensure_concurrency_limit, flow_run_id

LEASE_S = 60.0  # the shortest lease Prefect grants
RENEW_EVERY_S = 15.0
DEFAULT_WAIT_S = 120  # > a lease left by a dead process on another machine: 60 s + 15 s
LEASE_FILE = "writer.lease"
_log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")


class PhaseBusy(HandoverError):
    """Another run of the same phase of the contract holds it."""


def limit_name(contract: str, phase: str) -> str:
    return f"contract-{contract}-{phase}"


def wait_seconds() -> float:
    try:
        return max(0.0, float(os.environ.get("HANDOVER_WRITER_WAIT_SECONDS", DEFAULT_WAIT_S)))
    except ValueError:
        return float(DEFAULT_WAIT_S)


def one_writer(phase: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a phase flow's function (under `@flow`): its body runs holding the lease.

    The contract is read from the `playbook_path` argument; a playbook without
    a readable id runs unguarded, and the flow reports the playbook's problems.
    """

    def decorate(body: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(body)
        def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
            path = kwargs.get("playbook_path", args[0] if args else None)
            if path is None:
                return body(*args, **kwargs)
            guard_playbook_path(str(path))  # before reading it: a deployment run's rule
            contract = read_contract_id(Path(str(path)))
            if contract is None:
                return body(*args, **kwargs)
            with writer_lease(contract, phase), evidence_synced(contract):
                return body(*args, **kwargs)

        # Prefect builds the run form and validates parameters from the annotations, which
        # `from __future__ import annotations` leaves as strings to resolve in the module
        # that wrote them: resolve them there, not here.
        guarded.__annotations__ = typing.get_type_hints(body)
        guarded.__signature__ = inspect.signature(body, eval_str=True)  # type: ignore[attr-defined]
        return guarded

    return decorate


@contextmanager
def writer_lease(contract: str, phase: str) -> Iterator[None]:
    """Hold `contract-<id>-<phase>` for the block; PhaseBusy if another run keeps it."""
    name = limit_name(contract, phase)
    ensure_concurrency_limit(name, 1)
    # `operational-backups`: one task of the operational run, its lease file in the phase's folder.
    folder, _, task = phase.partition("-")
    record = ContractPaths(contract).phase_dir(folder) / (
        f"writer-{task}.lease" if task else LEASE_FILE
    )
    _release_if_dead(record)
    lease_id = _acquire(name, contract, phase)
    write_atomic(record, json.dumps(_holder_record(lease_id)).encode("utf-8"))
    stop = threading.Event()
    renewer = threading.Thread(
        target=_renew, args=(lease_id, stop), name=f"lease-{name}", daemon=True
    )
    renewer.start()
    try:
        yield
    finally:
        stop.set()
        renewer.join(timeout=5)
        _release(lease_id)
        record.unlink(missing_ok=True)


def _acquire(name: str, contract: str, phase: str) -> UUID:
    run_id = flow_run_id()
    holder = ConcurrencyLeaseHolder(type="flow_run", id=UUID(run_id)) if run_id else None
    deadline = time.monotonic() + wait_seconds()
    announced = False
    while True:
        with get_client(sync_client=True) as client:
            try:
                response = client.increment_concurrency_slots_with_lease(
                    names=[name], slots=1, mode="concurrency", lease_duration=LEASE_S, holder=holder
                )
                return UUID(response.json()["lease_id"])
            except HTTPStatusError as exc:
                if exc.response.status_code != 423:  # 423 Locked: the slot is taken
                    raise
        holders = _other_runs(contract, phase, run_id)
        if time.monotonic() >= deadline:
            raise PhaseBusy(
                f"{contract} {phase}: another run holds this phase ({holders}); run it again "
                "when that one has ended (a run whose process died frees it within "
                f"{int(LEASE_S)} s)"
            )
        if not announced:
            _log.warning("%s %s: waiting for %s to end", contract, phase, holders)
            announced = True
        time.sleep(1.0)


def _other_runs(contract: str, phase: str, mine: str | None) -> str:
    """The runs of this contract's phase that are running or paused, by name, or a fallback."""
    try:
        with get_client(sync_client=True) as client:
            runs = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(
                    tags=FlowRunFilterTags(all_=[f"contract:{contract}", f"phase:{phase}"]),
                    state=FlowRunFilterState(
                        type=FlowRunFilterStateType(any_=[StateType.RUNNING, StateType.PAUSED])
                    ),
                )
            )
    except Exception:  # the name is a courtesy: never let it hide the real answer
        runs = []
    names = [
        f"{run.name} ({run.state.name if run.state else 'unknown'})"
        for run in runs
        if str(run.id) != mine
    ]
    return ", ".join(names) or "a run of another process"


def _renew(lease_id: UUID, stop: threading.Event) -> None:
    while not stop.wait(RENEW_EVERY_S):
        try:
            with get_client(sync_client=True) as client:
                client.renew_concurrency_lease(lease_id, lease_duration=LEASE_S)
        except Exception as exc:  # a blip: the next renewal may succeed before expiry
            _log.warning("could not renew the phase lease %s: %s", lease_id, exc)


def _release(lease_id: UUID) -> None:
    try:
        with get_client(sync_client=True) as client:
            client.release_concurrency_slots_with_lease(lease_id)
    except Exception as exc:  # it expires by itself within LEASE_S
        _log.warning("could not release the phase lease %s: %s", lease_id, exc)


def _holder_record(lease_id: UUID) -> dict[str, Any]:
    return {
        "lease_id": str(lease_id),
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "started": process_start(os.getpid()),
        "flow_run_id": flow_run_id(),
    }


def process_start(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), to tell a reused pid apart."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def holder_alive(record: dict[str, Any]) -> bool:
    """Whether the process that wrote `record` still runs (True when it is on another host)."""
    if record.get("host") != socket.gethostname():
        return True
    pid = record.get("pid")
    if not isinstance(pid, int):
        return False
    started = process_start(pid)
    return started is not None and started == record.get("started")


def _release_if_dead(record_path: Path) -> None:
    """Release the lease a dead process of this machine left (kill -9), without waiting."""
    try:
        record = json.loads(record_path.read_text())
    except (OSError, ValueError):
        return
    if not isinstance(record, dict) or holder_alive(record):
        return
    try:
        lease_id = UUID(str(record.get("lease_id")))
    except ValueError:
        return
    _log.warning(
        "releasing the phase lease of process %s, which is gone (run %s)",
        record.get("pid"),
        record.get("flow_run_id"),
    )
    _release(lease_id)
    record_path.unlink(missing_ok=True)
