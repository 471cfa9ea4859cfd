"""The items people do, asked for in the Prefect UI when a phase flow reaches them.

No flow can hold a meeting, audit a tenant or sign a paper; the items a
playbook adds (`manual: true`) are done by people. When a phase run reaches
one still pending (its prerequisites met), it pauses with a form
(`ManualItemAnswer`): done with what proves it, failed or waived with why,
or "later". The answer is recorded under the name the person gives, and
the text they wrote is kept as an evidence file beside the files the CLI
keeps (`<phase>/manual/<item>/`), so the bundle carries it.

The CLI path stays open while the run waits: `handover item done|fail|waive`
changes the store, a watcher sees it and resumes the run, which then finds
the item finished and goes on. Nobody answering within the wait
(HANDOVER_MANUAL_ITEM_WAIT_SECONDS, default one hour) leaves the item
pending, and the run is not Completed (`PhaseRun.finish`).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Literal
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import pause_flow_run, resume_flow_run
from prefect.input import RunInput

from flows.waits import back_to_running, poll_interval
from handover.checklist.model import Status
from handover.contract.checklists import ChecklistItemSpec
from tasks.runtime import flow_run_id

DEFAULT_WAIT_S = 3600
_log = logging.getLogger(__name__)

Outcome = Literal["done", "failed", "waived", "later"]


class ManualItemAnswer(RunInput):
    """A person records a checklist item they did (or could not do).

    outcome: done, failed, waived, or later (leave it pending: tick it with
    `handover item done` when it is done). `by`: who answers. `details`: what
    proves it was done (minutes, a ticket, a document's reference), or why
    it failed or is waived.
    """

    outcome: Outcome = "later"
    by: str = ""
    details: str = ""


def wait_seconds() -> int:
    """How long a run waits for a manual item (HANDOVER_MANUAL_ITEM_WAIT_SECONDS, default 1 h)."""
    try:
        return max(1, int(os.environ.get("HANDOVER_MANUAL_ITEM_WAIT_SECONDS", DEFAULT_WAIT_S)))
    except ValueError:
        return DEFAULT_WAIT_S


def pause_key(item_id: str, attempt: int = 1) -> str:
    """`manual-<item>`, then `manual-<item>-2`, ... when an answer lacked who or why."""
    return f"manual-{item_id}" if attempt == 1 else f"manual-{item_id}-{attempt}"


def problem(answer: ManualItemAnswer) -> str | None:
    """Why an answer cannot be recorded as it is (None when it can)."""
    if answer.outcome == "later":
        return None
    if not answer.by.strip():
        return "say who answers"
    if not answer.details.strip():
        return "say what proves it" if answer.outcome == "done" else "say why"
    return None


def ask(
    contract: str,
    phase: str,
    spec: ChecklistItemSpec,
    status_now: Callable[[], Status],
    log: logging.Logger | logging.LoggerAdapter[logging.Logger],
) -> ManualItemAnswer | None:
    """Pause until someone answers for `spec`; None on no answer in time or a CLI tick."""
    deadline = datetime.now(UTC).timestamp() + wait_seconds()
    watcher = _StoreWatcher(status_now, flow_run_id())
    attempt = 0
    try:
        while True:
            attempt += 1
            left = int(deadline - datetime.now(UTC).timestamp())
            if left <= 0:
                return None
            key = pause_key(spec.id, attempt)
            log.info(
                "%s: waiting for a person (pause %s): answer in the UI, or run "
                "`handover item done %s %s %s --evidence FILE --as NAME`",
                spec.id,
                key,
                contract,
                phase,
                spec.id,
            )
            watcher.watch(key)
            try:
                answer = pause_flow_run(
                    wait_for_input=ManualItemAnswer.with_initial_data(
                        description=_description(spec),
                        outcome="later",
                        by="",
                        details="",
                    ),
                    timeout=left,
                    poll_interval=poll_interval(),
                    key=key,
                )
            except FlowPauseTimeout:
                back_to_running(f"nobody answered for {spec.id}")
                log.warning("%s: no answer in time: left pending", spec.id)
                return None
            if status_now() is not Status.PENDING:
                return None  # ticked from the CLI meanwhile
            why = problem(answer)
            if why is None:
                return answer
            log.warning("%s: answer not recorded (%s): asking again", spec.id, why)
    finally:
        watcher.stop()


def _description(spec: ChecklistItemSpec) -> str:
    return (
        f"Checklist item **{spec.id}**: {spec.title} ({spec.clause}; owner: {spec.owner}).\n\n"
        "Answer `done` with what proves it, `failed` or `waived` with why, or `later` to "
        "leave it pending. It can also be recorded from the command line with its evidence "
        "file (`handover item done`), which ends this wait."
    )


class _StoreWatcher:
    """While the run waits at a manual item's pause, resume it once the item is ticked elsewhere."""

    def __init__(self, status_now: Callable[[], Status], run_id: str | None) -> None:
        self._status_now = status_now
        self._run_id = run_id
        self._key = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def watch(self, key: str) -> None:
        self._key = key
        if self._thread is None and self._run_id is not None:
            self._thread = threading.Thread(target=self._run, name="manual-item", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        assert self._run_id is not None
        run_id = UUID(self._run_id)
        while not self._stop.wait(poll_interval()):
            try:
                if self._status_now() is Status.PENDING or not self._paused(run_id):
                    continue
                resume_flow_run(run_id, run_input={"outcome": "later", "by": "", "details": ""})
                return
            except Exception as exc:  # answered meanwhile in the UI, or the API blinked
                _log.info("manual item: could not resume after a CLI tick: %s", exc)

    def _paused(self, run_id: UUID) -> bool:
        with get_client(sync_client=True) as client:
            state = client.read_flow_run(run_id).state
        return bool(
            state is not None and state.is_paused() and state.state_details.pause_key == self._key
        )
