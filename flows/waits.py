"""Waiting inside a phase flow: for a date of the exit calendar, or for a person.

An exit does not run in one go: the final export waits for the switch-over
and the erasure for the end of the retrieval period. A wait is a Prefect
pause whose timeout is the date itself, so the run shows as Paused in the
UI with what it waits for, and goes on by itself when the date comes. If
the process dies while paused, a rerun (the exit's state is on disk) waits
again for the same date; nothing is lost but the waiting.

When the pause times out Prefect leaves the run Paused and raises
FlowPauseTimeout; the date having come is exactly what we waited for, so
the run is set back to Running (forced: the server refuses to resume an
expired pause) and goes on.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from datetime import UTC, date, datetime, time
from uuid import UUID

from prefect import get_run_logger
from prefect.client.orchestration import get_client
from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput
from prefect.states import Running

from tasks.runtime import flow_run_id


def poll_interval() -> int:
    """Seconds between two looks at a paused run (HANDOVER_PAUSE_POLL_SECONDS, default 10)."""
    try:
        return max(1, int(os.environ.get("HANDOVER_PAUSE_POLL_SECONDS", "10")))
    except ValueError:
        return 10


class ContinueNow(RunInput):
    """An operator goes on before the date: the reason is recorded with the exit."""

    reason: str


def start_of(day: date) -> datetime:
    """The moment a calendar date begins (UTC)."""
    return datetime.combine(day, time.min, tzinfo=UTC)


def wait_until(
    key: str,
    due: datetime,
    what: str,
    *,
    may_continue_early: bool,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> str:
    """Pause the flow run until `due`; return how the wait ended, for the record.

    `may_continue_early`: the pause takes a ContinueNow form (an operator's
    decision, with a reason) and returns as soon as it is answered. When
    False, resuming early changes nothing: the run pauses again until
    `due` (the erasure waits for the end of the retrieval period whoever
    clicks Resume).
    """
    log = get_run_logger()
    attempt = 0
    while True:
        left = (due - now()).total_seconds()
        if left <= 0:
            return f"{what}: {due.date().isoformat()} reached"
        attempt += 1
        log.info("waiting until %s: %s", due.isoformat(timespec="minutes"), what)
        try:
            if may_continue_early:
                answer = pause_flow_run(
                    wait_for_input=ContinueNow.with_initial_data(
                        description=(
                            f"Waiting until {due.isoformat(timespec='minutes')}: {what}. "
                            "The run goes on by itself then; resume now only with a reason."
                        ),
                        reason="",
                    ),
                    timeout=math.ceil(left),
                    poll_interval=poll_interval(),
                    key=f"{key}-{attempt}",
                )
                reason = answer.reason.strip() if answer is not None else ""
                if reason:
                    return f"{what}: continued early on {now().date().isoformat()}: {reason}"
                log.warning("%s: resumed without a reason, waiting again", key)
            else:
                pause_flow_run(
                    timeout=math.ceil(left), poll_interval=poll_interval(), key=f"{key}-{attempt}"
                )
                if now() < due:
                    log.warning("%s: resumed before %s, waiting again", key, due.date())
        except FlowPauseTimeout:
            back_to_running("the awaited date has come")


def back_to_running(why: str) -> None:
    """Set the run Running again after its pause expired (forced: the server refuses to
    resume an expired pause), so the flow goes on or fails its item cleanly."""
    run_id = flow_run_id()
    if run_id is None:
        return
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(UUID(run_id), Running(message=why), force=True)
