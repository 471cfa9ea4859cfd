"""The exit's client acceptance: wait for a signed statement, check it, record it, publish it.

The acceptance opens the one-way doors, so the flow acts only on a statement
signed by a key of `reversibility.client_signers` (handover.exit.acceptance
says what is checked). Three ways in, one check:

- the Prefect pause form `SignedAcceptance`: the statement and its armored
  signature pasted, or `file`, the name of a pair dropped beside the delivery;
- `handover acceptance submit`, which checks the pair and drops it there;
- the client drops `acceptance.txt` and `acceptance.txt.sig` there itself.

While paused, a watcher thread looks at the drop location every poll
interval and resumes the run with `file` when a new pair appears, so all
three end in the same code. A forged, unsigned or foreign answer changes
nothing: it is recorded `acceptance.rejected` in the audit log with the
reason, and the run pauses again (a new pause key each time: Prefect hands a
reused key its old input back). A valid one is recorded `acceptance.signed`,
shown as a markdown artifact and announced as the event
`handover.acceptance.<decision>` naming the signer's key fingerprint.

`auto_acceptance_input` makes the same signed answer for tests, drills and
the demo, with the key in HANDOVER_TEST_SIGNER_KEY: there is no unsigned
path, even automatic.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID

from prefect import get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.client.orchestration import get_client
from prefect.events import emit_event
from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import pause_flow_run, resume_flow_run
from prefect.input import RunInput

from flows.waits import back_to_running, poll_interval
from handover.actor import actor
from handover.bundle.sshsig import SigningKey, sign
from handover.checklist.store import ChecklistStore
from handover.contract.loader import load_playbook
from handover.contract.playbook import Playbook
from handover.errors import HandoverError, UsageError
from handover.exit.acceptance import (
    NAMESPACE,
    AcceptanceRejected,
    Decision,
    VerifiedAcceptance,
    bundle_sums_sha256,
    pair_sha256,
    playbook_signers,
    render_statement,
    statement_for,
    verify_statement,
)
from handover.exit.acceptance_drop import DROP_NAME, drop_location, read_dropped
from handover.exit.delivery import DeliveryRecord
from handover.exit.progress import AcceptanceRecord, ExitProgress, ExitState
from tasks.runtime import flow_run_id

if TYPE_CHECKING:
    from handover.connectors.s3 import S3Client

ACCEPTANCE_TIMEOUT_S = 30 * 24 * 3600  # the retrieval period: the client may take its time
PAUSE_KEY = "client-acceptance"
TEST_SIGNER_ENV = "HANDOVER_TEST_SIGNER_KEY"
AUTO_SIGNATORY_NOTE = "automatic answer: demo/drill/test"

_log = logging.getLogger(__name__)


class SignedAcceptance(RunInput):
    """The client's signed acceptance: the statement and its signature, or a dropped pair."""

    statement: str = ""  # the statement exactly as signed (`handover acceptance statement`)
    signature: str = ""  # `ssh-keygen -Y sign -n handover-acceptance` output (armored)
    file: str = ""  # or: a statement's name beside the delivery (acceptance.txt + .sig)


def pause_key(attempt: int, revision: int = 1) -> str:
    """`client-acceptance`, then `client-acceptance-2`, ... after each rejected answer.

    A corrected re-delivery waits at `client-acceptance-r2` (then `-r2-2`, ...):
    Prefect never pauses a run twice at the same key.
    """
    base = PAUSE_KEY if revision == 1 else f"{PAUSE_KEY}-r{revision}"
    return base if attempt == 1 else f"{base}-{attempt}"


class _Exit:
    """What the wait needs of the exit: the playbook, the delivered bundle, where to look."""

    def __init__(self, playbook: Playbook, state: ExitState, s3: S3Client | None) -> None:
        if state.sealed is None or state.delivery is None:
            raise HandoverError("the bundle was not delivered: nothing to accept")
        self.playbook = playbook
        self.contract = playbook.contract_id
        self.bundle = state.bundle_name
        self.delivery: DeliveryRecord = state.delivery
        self.s3 = s3
        self.signers = playbook_signers(playbook)  # none named: the item fails, doors closed
        self.sums_sha256 = bundle_sums_sha256(state.sealed, state.delivery)
        self.drop = drop_location(playbook, self.bundle, self.delivery)

    def dropped(self, name: str = DROP_NAME) -> tuple[bytes, str] | None:
        return read_dropped(self.playbook, self.bundle, self.delivery, name, s3=self.s3)

    def verify(self, statement: bytes | str, signature: str) -> VerifiedAcceptance:
        return verify_statement(
            statement,
            signature,
            self.signers,
            self.bundle,
            self.sums_sha256,
            expected_contract=self.contract,
        )


def await_signed_acceptance(
    playbook: Playbook, state: ExitState, *, s3: S3Client | None = None
) -> AcceptanceRecord:
    """Pause until a valid signed acceptance of the delivered bundle comes in; its record.

    A pair already dropped beside the delivery (a rerun, or `handover
    acceptance submit` before the flow got here) is taken without pausing.
    The pair of an earlier decision recorded in `state` is not taken again.
    Raises AcceptanceRejected when the playbook names no client signer, and
    HandoverError when nobody answers within the retrieval period.
    """
    ex = _Exit(playbook, state, s3)
    seen: set[str] = set()
    if state.acceptance is not None and state.acceptance.statement:
        seen.add(pair_sha256(state.acceptance.statement.encode(), state.acceptance.signature))
    pending: SignedAcceptance | None = None
    dropped = _look(ex.dropped)
    if dropped is not None and pair_sha256(*dropped) not in seen:
        pending = SignedAcceptance(file=DROP_NAME)
    watcher = _DropWatcher(ex.dropped, seen, flow_run_id())
    deadline = time.monotonic() + ACCEPTANCE_TIMEOUT_S
    attempt = 0
    try:
        while True:
            answer = pending
            pending = None
            if answer is None:
                attempt += 1
                answer = _pause(ex, pause_key(attempt, state.revision), watcher, deadline)
            try:
                verified, source = _check(ex, answer, seen)
            except (AcceptanceRejected, UsageError) as exc:
                _reject(ex, answer, str(exc))
                continue
            record = acceptance_record(verified)
            _publish(ex, verified, record, source)
            return record
    finally:
        watcher.stop()


def _look(dropped: Callable[[], tuple[bytes, str] | None]) -> tuple[bytes, str] | None:
    """The dropped pair, or None (also when the drop location cannot be read now)."""
    try:
        return dropped()
    except (HandoverError, OSError) as exc:
        _log.warning("acceptance: cannot look at the drop location: %s", exc)
        return None


def _pause(ex: _Exit, key: str, watcher: _DropWatcher, deadline: float) -> SignedAcceptance:
    left = int(deadline - time.monotonic())
    if left <= 0:
        raise HandoverError("no signed acceptance from the client within the retrieval period")
    get_run_logger().info("waiting for the client's signed acceptance (pause %s)", key)
    watcher.watch(key)
    try:
        return pause_flow_run(
            wait_for_input=SignedAcceptance.with_initial_data(
                description=_form_description(ex),
                statement=_template(ex),
                signature="",
                file="",
            ),
            timeout=left,
            poll_interval=poll_interval(),
            key=key,
        )
    except FlowPauseTimeout as exc:
        back_to_running("no signed acceptance in time")
        raise HandoverError(
            "no signed acceptance from the client within the retrieval period"
        ) from exc


def _template(ex: _Exit) -> str:
    """The statement prefilled in the form: accepted, signed by the client (to adjust)."""
    client = ex.playbook.contract.parties.client.legal_name
    return render_statement(
        statement_for(ex.playbook, ex.bundle, ex.sums_sha256, decision="accepted", signatory=client)
    )


def _form_description(ex: _Exit) -> str:
    return (
        f"Client acceptance of `{ex.bundle}` (procès-verbal de réception). The client checks "
        "and opens the bundle with the commands of its README.txt, then signs a statement "
        "with a key of the playbook's `reversibility.client_signers`: "
        f"`handover acceptance statement PLAYBOOK --signatory NAME [--decision ...]` prints it "
        f"(or adjust the one below; {ex.bundle}'s SHA256SUMS has SHA-256 `{ex.sums_sha256}`), "
        f"`ssh-keygen -Y sign -n {NAMESPACE} -f KEY acceptance.txt` signs it. Paste the "
        "statement and the signature here, or put `acceptance.txt` and `acceptance.txt.sig` "
        f"in `{ex.drop}` (the run goes on by itself), or name a pair there in `file`. "
        "An unsigned or wrongly signed answer is refused and the run waits again."
    )


def _check(ex: _Exit, answer: SignedAcceptance, seen: set[str]) -> tuple[VerifiedAcceptance, str]:
    """Verify one answer; (the verified statement, where it came from)."""
    if answer.file.strip():
        # The statement field holds the prefilled template unless replaced: only a pasted
        # signature makes the answer ambiguous.
        if answer.signature.strip():
            raise AcceptanceRejected("give the statement and its signature, or a file, not both")
        pair = ex.dropped(answer.file)
        if pair is None:
            raise AcceptanceRejected(
                f"{answer.file}: no statement with its .sig beside it in {ex.drop}"
            )
        seen.add(pair_sha256(*pair))
        return ex.verify(*pair), f"{ex.drop}/{answer.file.strip()}"
    seen.add(pair_sha256(answer.statement.encode("utf-8"), answer.signature))
    return ex.verify(answer.statement, answer.signature), "pause form"


def _reject(ex: _Exit, answer: SignedAcceptance, reason: str) -> None:
    """Record a refused answer; the run then waits again."""
    get_run_logger().warning("client acceptance rejected: %s", reason)
    ChecklistStore().audit_log(ex.contract).append(
        "acceptance.rejected",
        actor(),
        bundle=ex.bundle,
        reason=reason,
        source=f"file {answer.file.strip()}" if answer.file.strip() else "pause form",
    )


def acceptance_record(verified: VerifiedAcceptance) -> AcceptanceRecord:
    """The exit state's record of a verified statement (`accepted` only for `accepted`)."""
    s = verified.statement
    return AcceptanceRecord(
        accepted=s.decision == "accepted",
        accepted_by=s.signatory,
        comment=s.reservations,
        at=datetime.now(UTC).isoformat(),
        early_erasure=s.early_erasure,
        decision=s.decision,
        reservations=s.reservations,
        signer_principal=verified.principal,
        signer_fingerprint=verified.signer_fingerprint,
        statement_sha256=verified.statement_sha256,
        statement=verified.statement_text,
        signature=verified.signature,
    )


def _publish(
    ex: _Exit, verified: VerifiedAcceptance, record: AcceptanceRecord, source: str
) -> None:
    """The audit entry, the run's artifact and the event of a valid acceptance."""
    s = verified.statement
    facts: dict[str, Any] = {
        "bundle": ex.bundle,
        "decision": s.decision,
        "signatory": s.signatory,
        "signer": verified.principal,
        "signer_fingerprint": verified.signer_fingerprint,
        "statement_sha256": verified.statement_sha256,
        "early_erasure": s.early_erasure,
        "reservations": s.reservations,
    }
    ChecklistStore().audit_log(ex.contract).append(
        "acceptance.signed", actor(), source=source, **facts
    )
    create_markdown_artifact(
        acceptance_markdown(ex.bundle, record),
        key=f"{ex.contract}-acceptance",
        description=f"Client acceptance: {s.decision}",
    )
    emit_event(
        f"handover.acceptance.{s.decision}",
        resource={
            "prefect.resource.id": f"handover.contract.{ex.contract}",
            "prefect.resource.name": ex.contract,
        },
        related=[
            {
                "prefect.resource.id": f"handover.ssh-key.{verified.signer_fingerprint}",
                "prefect.resource.role": "signer",
                "prefect.resource.name": verified.principal,
            }
        ],
        payload=facts,
    )
    get_run_logger().info(
        "client acceptance: %s by %s, signed with %s",
        s.decision,
        s.signatory,
        verified.signer_fingerprint,
    )


def acceptance_markdown(bundle: str, record: AcceptanceRecord) -> str:
    """The artifact: decision, who signed with which key, and the statement as signed."""
    lines = [
        f"## Client acceptance of `{bundle}`: {record.decision}",
        "",
        f"- Signatory: {record.accepted_by}",
        f"- Signed by: `{record.signer_principal}` with key `{record.signer_fingerprint}`",
        f"- Statement SHA-256: `{record.statement_sha256}`",
        f"- Early erasure asked: {'yes' if record.early_erasure else 'no'}",
    ]
    if record.reservations:
        lines += [
            "",
            "Reservations:",
            "",
            *(f"> {line}" for line in record.reservations.split("\n")),
        ]
    lines += ["", "```text", record.statement.rstrip("\n"), "```"]
    return "\n".join(lines)


class _DropWatcher:
    """While the run waits at a pause, resume it with `file` when a new pair is dropped."""

    def __init__(
        self,
        dropped: Callable[[], tuple[bytes, str] | None],
        seen: set[str],
        run_id: str | None,
    ) -> None:
        self._dropped = dropped
        self._seen = seen
        self._run_id = run_id
        self._offered: set[str] = set()
        self._key = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def watch(self, key: str) -> None:
        """Watch for the pause `key` from now on (started on the first pause)."""
        self._key = key
        if self._thread is None and self._run_id is not None:
            self._thread = threading.Thread(target=self._run, name="acceptance-drop", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        assert self._run_id is not None
        run_id = UUID(self._run_id)
        while not self._stop.wait(poll_interval()):
            pair = _look(self._dropped)
            if pair is None:
                continue
            digest = pair_sha256(*pair)
            if digest in self._seen or digest in self._offered or not self._paused(run_id):
                continue
            try:
                resume_flow_run(
                    run_id, run_input={"file": DROP_NAME, "statement": "", "signature": ""}
                )
            except Exception as exc:  # answered meanwhile in the UI: look again later
                _log.info("acceptance: could not resume with the dropped pair: %s", exc)
                continue
            self._offered.add(digest)

    def _paused(self, run_id: UUID) -> bool:
        with get_client(sync_client=True) as client:
            run = client.read_flow_run(run_id)
        state = run.state
        return bool(
            state is not None and state.is_paused() and state.state_details.pause_key == self._key
        )


def auto_acceptance_input(
    playbook: Playbook | str | Path,
    flow_run_id: UUID | str | None = None,
    *,
    early_erasure: bool = True,
    decision: Decision = "accepted",
    reservations: str = "",
) -> dict[str, str]:
    """The pause form's answer for tests, drills and the demo: a statement signed with a test key.

    The statement is the real one (the delivered bundle's name and SUMS
    hash, read from the exit state), its signatory says the answer is
    automatic, and it is signed with the OpenSSH Ed25519 key at
    $HANDOVER_TEST_SIGNER_KEY, which the playbook must name in
    `reversibility.client_signers` like any client key. `flow_run_id` names
    the paused run being answered (logged).
    """
    pb = playbook if isinstance(playbook, Playbook) else load_playbook(Path(playbook))
    key_path = os.environ.get(TEST_SIGNER_ENV, "").strip()
    if not key_path:
        raise UsageError(
            f"{TEST_SIGNER_ENV} is not set: an automatic acceptance is signed too, with the "
            "OpenSSH Ed25519 key it names (declared in reversibility.client_signers)"
        )
    key = SigningKey.load(Path(key_path))
    state = ExitProgress(pb.contract_id).load()
    if state is None or state.sealed is None or state.delivery is None:
        raise UsageError(f"{pb.contract_id}: no bundle delivered yet: nothing to accept")
    client = pb.contract.parties.client.legal_name
    text = render_statement(
        statement_for(
            pb,
            state.bundle_name,
            bundle_sums_sha256(state.sealed, state.delivery),
            decision=decision,
            signatory=f"{client} ({AUTO_SIGNATORY_NOTE})",
            reservations=reservations,
            early_erasure=early_erasure,
        )
    )
    _log.info(
        "automatic %s of %s for flow run %s, signed with %s",
        decision,
        state.bundle_name,
        flow_run_id,
        key.fingerprint(),
    )
    return {"statement": text, "signature": sign(text.encode("utf-8"), key, NAMESPACE), "file": ""}
