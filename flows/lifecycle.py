"""The whole contract, in order; and the helper the CLI uses to run one phase."""

from __future__ import annotations

import re
import threading
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

from prefect import flow
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
    FlowRunFilterTags,
)
from prefect.client.schemas.objects import FlowRun, State, StateType
from prefect.flow_runs import resume_flow_run
from pydantic import BaseModel, ConfigDict

from flows._phase import ExitOutcome, PhaseOutcome, phase_run_name
from flows.playbook_guard import guard_playbook_path
from handover.contract.loader import read_contract_id
from handover.phases import Phase, parse_phase
from tasks.tags import phase_tags, tag_flow_run


class LifecycleOutcome(BaseModel):
    """The result of each phase of the contract, in order."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    takeover: PhaseOutcome
    implementation: PhaseOutcome
    operational: PhaseOutcome
    reversibility: ExitOutcome


@flow(name="lifecycle", flow_run_name=phase_run_name, log_prints=True)
def lifecycle(playbook_path: str, fresh: bool = False) -> LifecycleOutcome:
    """Takeover, implementation, one operational run, then reversibility (as subflows).

    The run is tagged `phase:lifecycle` and each subflow is created with its
    own phase tag (both with the contract's), so a contract's history lists
    them all, each under its phase.
    """
    from flows.implementation import implementation
    from flows.operational import operational
    from flows.reversibility import reversibility
    from flows.takeover import takeover

    guard_playbook_path(playbook_path)  # a deployment run: only playbooks in the folders
    contract = read_contract_id(Path(playbook_path))
    tag_flow_run(contract, "lifecycle")
    with phase_tags(contract, Phase.TAKEOVER):
        took_over = takeover(playbook_path, fresh=fresh)
    with phase_tags(contract, Phase.IMPLEMENTATION):
        implemented = implementation(playbook_path, fresh=fresh)
    with phase_tags(contract, Phase.OPERATIONAL):
        operated = operational(playbook_path)
    with phase_tags(contract, Phase.REVERSIBILITY):
        exited = reversibility(playbook_path, fresh=fresh)
    return LifecycleOutcome(
        takeover=took_over,
        implementation=implemented,
        operational=operated,
        reversibility=exited,
    )


AUTO_ANSWER_NOTE = "answered automatically by handover (--accept: demo, drill or test)"


def answer_acceptance_when_paused(
    playbook_path: Path, stop: threading.Event, timeout_s: float = 3600
) -> threading.Thread:
    """Answer the exit's human steps through the API when the flow pauses (demo, drills, tests).

    The client's acceptance, a statement signed with the test key of
    HANDOVER_TEST_SIGNER_KEY (declared in the playbook's client_signers like
    any client key; accepted, asking for early erasure so a drill need not
    wait for the retrieval period), and the incoming team's knowledge-transfer
    confirmation. A real exit is answered by people; this stands in for them
    by calling the same API the UI calls, and every answer says it was
    automatic.
    """
    from flows.acceptance import auto_acceptance_input
    from handover.contract.loader import load_playbook

    playbook = load_playbook(playbook_path)
    contract = playbook.contract_id
    incoming = f"{playbook.contract.parties.client.legal_name} ({AUTO_ANSWER_NOTE})"

    def watch() -> None:
        answered: set[tuple[str, str]] = set()
        deadline = time.monotonic() + timeout_s
        # one client for the whole watch: a new one per poll cost a TLS context each second
        # (~20 ms of CPU, 58 of them in a 1 GiB exit, in the exit's own process)
        with get_client(sync_client=True) as client:
            while not stop.is_set() and time.monotonic() < deadline:
                answer_paused(client, answered)
                stop.wait(1.0)

    def answer_paused(client: SyncPrefectClient, answered: set[tuple[str, str]]) -> None:
        for paused in paused_flow_runs(contract, client):
            key = pause_key(paused)
            if (str(paused.id), key) in answered:
                continue
            if key == "client-acceptance" or re.fullmatch(r"client-acceptance-r\d+", key):
                resume_flow_run(paused.id, run_input=auto_acceptance_input(playbook, paused.id))
            elif key == "knowledge-transfer":
                confirm_knowledge_transfer(paused.id, incoming)
            else:
                continue
            answered.add((str(paused.id), key))

    thread = threading.Thread(target=watch, name="acceptance", daemon=True)
    thread.start()
    return thread


def pause_key(run: FlowRun) -> str:
    """The key of the pause a paused run waits at ("" when unknown)."""
    details = run.state.state_details if run.state else None
    return (details.pause_key or "") if details else ""


def paused_flow_runs(contract: str, client: SyncPrefectClient | None = None) -> list[FlowRun]:
    """The contract's paused exit runs, found by their tags (never by name)."""
    if client is None:
        with get_client(sync_client=True) as own:
            return paused_flow_runs(contract, own)
    return client.read_flow_runs(
        flow_run_filter=FlowRunFilter(
            tags=FlowRunFilterTags(all_=[f"contract:{contract}", "phase:reversibility"]),
            state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED])),
        )
    )


def confirm_knowledge_transfer(flow_run_id: UUID, confirmed_by: str) -> None:
    """Resume a paused reversibility run with the knowledge-transfer confirmation."""
    resume_flow_run(
        flow_run_id,
        run_input={"confirmed_by": confirmed_by, "sessions": AUTO_ANSWER_NOTE},
    )


def drill_notice_date(playbook_path: Path) -> date:
    """A notice date whose switch-over is today: a drill exports at once, as a real exit
    would on its switch-over day (the calendar itself is kept and shown)."""
    from handover.contract.loader import load_playbook

    deadlines = load_playbook(playbook_path).reversibility.deadlines
    return date.today() - timedelta(days=31 * deadlines.notice_months + deadlines.transition_days)


def run_phase(
    phase: str,
    playbook: Path,
    *,
    pin_host_keys: bool = False,
    auto_accept: bool = False,
    fresh: bool = False,
    notice_date: date | None = None,
) -> bool:
    """Run one phase flow in this process; True when it completed.

    `auto_accept` (reversibility): answer the human steps automatically and,
    unless `notice_date` is given, date the notice so the switch-over is today.
    """

    which = parse_phase(phase)
    stop = threading.Event()
    if which == Phase.REVERSIBILITY and auto_accept:
        answer_acceptance_when_paused(playbook, stop)
    try:
        if which == Phase.REVERSIBILITY and auto_accept and notice_date is None:
            notice_date = drill_notice_date(playbook)
        state = run_phase_flow(
            which, str(playbook), pin_host_keys=pin_host_keys, fresh=fresh, notice_date=notice_date
        )
    finally:
        stop.set()
    return state.is_completed()


def run_phase_flow(
    phase: Phase, path: str, *, pin_host_keys: bool, fresh: bool, notice_date: date | None = None
) -> State[Any]:
    """Call the phase's flow and return its final state (an operational run is always fresh).

    The run is created with the tags `contract:<id>` and `phase:<phase>`
    (the contract as the playbook names it), so it belongs to the
    contract's history even if it fails before reading its playbook.
    """
    # Each phase's flow is imported when it runs: a process running one phase (the CLI, the
    # exit) does not hold the others' modules (~5 MiB of the exit's peak RSS).
    with phase_tags(read_contract_id(Path(path)), phase):
        match phase:
            case Phase.TAKEOVER:
                from flows.takeover import takeover

                return takeover(path, pin_host_keys=pin_host_keys, fresh=fresh, return_state=True)
            case Phase.IMPLEMENTATION:
                from flows.implementation import implementation

                return implementation(path, fresh=fresh, return_state=True)
            case Phase.OPERATIONAL:
                from flows.operational import operational

                return operational(path, return_state=True)
            case Phase.REVERSIBILITY:
                from flows.reversibility import reversibility

                return reversibility(path, notice_date, fresh=fresh, return_state=True)
