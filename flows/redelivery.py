"""A corrected re-delivery after the client's reservations: the exit goes round again.

"Accepted with reservations" is not an acceptance: the one-way doors stay
closed. The signed statement with its reservations is kept as evidence, the
provider declares what it corrected (a pause form: who, and what), and the
export, credentials, documentation, sealing and delivery run again into a
new bundle named `<first bundle>-r<revision>`, which the client then
accepts, accepts with reservations again, or refuses. Each replaced
delivery stays in the exit state, whole, with its statement and the
correction, for the signed exit record and for the erasure (an S3 delivery
leaves one prefix per revision in the provider's bucket).

Crash safety: the correction is saved the moment it is answered; switching
to the next revision is one atomic write of the exit state; the checklist
items are reopened after that, and `reopen_for_redelivery`, called at the
start of every run, finishes a reopening that a crash cut short (the state
records the revision whose items were reopened).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol

from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput

from flows._phase import PhaseRun
from flows.waits import back_to_running, poll_interval
from handover.exit.progress import Correction, ExitState

CORRECTION_TIMEOUT_S = 30 * 24 * 3600
#: What a corrected re-delivery does again, in checklist order.
REDELIVERY_ITEMS = (
    "datasets-exported",
    "credentials-exported",
    "documentation-exported",
    "bundle-sealed",
    "bundle-delivered",
    "client-acceptance",
)


class CorrectionMade(RunInput):
    """The provider states what it corrected after the client's reservations.

    Resuming with both fields filled exports, seals and delivers a corrected
    bundle; the client is then asked to accept that one.
    """

    corrected_by: str
    corrections: str


class ExitInProgress(Protocol):
    """What a re-delivery needs of the exit (flows.reversibility.Exit)."""

    run: PhaseRun
    state: ExitState

    def save(self) -> None: ...


def correction_key(revision: int, attempt: int = 1) -> str:
    """`correction-r2` for the correction leading to the second delivery (then `-2`, ...)."""
    base = f"correction-r{revision}"
    return base if attempt == 1 else f"{base}-{attempt}"


def redeliver(ex: ExitInProgress) -> bool:
    """After reservations: wait for the correction, then start the next revision.

    Returns False, leaving the reservations open and the item failed, when
    nobody declared a correction in time; a rerun asks again.
    """
    if ex.state.correction is None:
        correction = await_correction(ex)
        if correction is None:
            return False
        ex.state.correction = correction
        ex.save()
    replaced = ex.state
    ex.state = replaced.supersede()
    ex.save()
    ex.run.log.warning(
        "corrected re-delivery %s of %s: %s replaced after reservations",
        ex.state.revision,
        ex.run.contract,
        replaced.bundle_name,
    )
    reopen_for_redelivery(ex)
    return True


def await_correction(ex: ExitInProgress) -> Correction | None:
    """Pause until someone declares what was corrected; None if the pause expires."""
    acceptance = ex.state.acceptance
    reservations = acceptance.reservations if acceptance else ""
    revision = ex.state.revision + 1
    attempt = 0
    while True:
        attempt += 1
        try:
            answer = pause_flow_run(
                wait_for_input=CorrectionMade.with_initial_data(
                    description=(
                        f"The client accepted {ex.state.bundle_name} with reservations:\n\n"
                        f"{reservations}\n\nCorrect what they name (the playbook, the "
                        "sources), then say who corrected what: the bundle is exported, "
                        f"sealed and delivered again as revision {revision}. Nothing "
                        "irreversible happens before the client accepts it."
                    ),
                    corrected_by="",
                    corrections="",
                ),
                timeout=CORRECTION_TIMEOUT_S,
                poll_interval=poll_interval(),
                key=correction_key(revision, attempt),
            )
        except FlowPauseTimeout:
            back_to_running("no correction declared in time")
            ex.run.log.error("no correction declared after the reservations: exit stopped")
            return None
        if answer.corrected_by.strip() and answer.corrections.strip():
            return Correction(
                corrected_by=answer.corrected_by.strip(),
                corrections=answer.corrections.strip(),
                at=datetime.now(UTC).isoformat(),
            )
        ex.run.log.warning("correction form answered without who or what: asking again")


def reopen_for_redelivery(ex: ExitInProgress) -> None:
    """Reopen the re-delivery's items, once per revision (idempotent across crashes)."""
    revision = ex.state.revision
    if revision == 1 or ex.state.reopened_for == revision:
        return
    previous = ex.state.redeliveries[-1]
    reason = (
        f"corrected re-delivery {revision}: {previous.bundle_name} accepted with reservations "
        f"(signed by {previous.acceptance.signer_fingerprint or 'unknown key'}), corrected by "
        f"{previous.correction.corrected_by}"
    )
    for item_id in REDELIVERY_ITEMS:
        ex.run.reopen(item_id, reason)
    ex.state.reopened_for = revision
    ex.save()
