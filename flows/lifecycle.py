"""The whole contract, in order; and the helper the CLI uses to run one phase."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any
from uuid import UUID

from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterName,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import FlowRun, State, StateType
from prefect.flow_runs import resume_flow_run
from pydantic import BaseModel, ConfigDict

from flows._phase import PhaseOutcome, phase_run_name
from flows.implementation import implementation
from flows.operational import operational
from flows.reversibility import ExitOutcome, reversibility
from flows.takeover import takeover
from handover.phases import Phase, parse_phase


class LifecycleOutcome(BaseModel):
    """The result of each phase of the contract, in order."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    takeover: PhaseOutcome
    implementation: PhaseOutcome
    operational: PhaseOutcome
    reversibility: ExitOutcome


@flow(name="lifecycle", flow_run_name=phase_run_name, log_prints=True)
def lifecycle(playbook_path: str, fresh: bool = False) -> LifecycleOutcome:
    """Takeover, implementation, one operational run, then reversibility (as subflows)."""
    return LifecycleOutcome(
        takeover=takeover(playbook_path, fresh=fresh),
        implementation=implementation(playbook_path, fresh=fresh),
        operational=operational(playbook_path),
        reversibility=reversibility(playbook_path, fresh=fresh),
    )


def answer_acceptance_when_paused(
    contract_flow_name: str, accepted_by: str, stop: threading.Event, timeout_s: float = 3600
) -> threading.Thread:
    """Answer the client-acceptance step through the API once the flow pauses (demo, drills).

    A real exit is answered by a person in the Prefect UI; this stands in for
    them by calling the same API the UI calls.
    """

    def watch() -> None:
        deadline = time.monotonic() + timeout_s
        while not stop.is_set() and time.monotonic() < deadline:
            paused = paused_flow_runs(contract_flow_name)
            if paused:
                accept_bundle(paused[0].id, accepted_by)
                return
            stop.wait(1.0)

    thread = threading.Thread(target=watch, name="acceptance", daemon=True)
    thread.start()
    return thread


def paused_flow_runs(name_like: str) -> list[FlowRun]:
    """The paused flow runs whose name contains `name_like`."""
    with get_client(sync_client=True) as client:
        return client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                name=FlowRunFilterName(like_=name_like),
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED])),
            )
        )


def accept_bundle(flow_run_id: UUID, accepted_by: str) -> None:
    """Resume a paused reversibility run with the client's acceptance (its ClientAcceptance)."""
    resume_flow_run(
        flow_run_id,
        run_input={
            "accepted": True,
            "accepted_by": accepted_by,
            "comment": "verified with age, tar, sha256sum -c and ssh-keygen -Y verify",
        },
    )


def run_phase(
    phase: str,
    playbook: Path,
    *,
    pin_host_keys: bool = False,
    auto_accept: bool = False,
    fresh: bool = False,
) -> bool:
    """Run one phase flow in this process; True when it completed."""
    from handover.contract.loader import load_playbook

    which = parse_phase(phase)
    stop = threading.Event()
    if which == Phase.REVERSIBILITY and auto_accept:
        pb = load_playbook(playbook)
        answer_acceptance_when_paused(
            f"reversibility-{pb.contract_id}", pb.contract.parties.client.legal_name, stop
        )
    try:
        state = run_phase_flow(which, str(playbook), pin_host_keys=pin_host_keys, fresh=fresh)
    finally:
        stop.set()
    return state.is_completed()


def run_phase_flow(phase: Phase, path: str, *, pin_host_keys: bool, fresh: bool) -> State[Any]:
    """Call the phase's flow and return its final state (an operational run is always fresh)."""
    match phase:
        case Phase.TAKEOVER:
            return takeover(path, pin_host_keys=pin_host_keys, fresh=fresh, return_state=True)
        case Phase.IMPLEMENTATION:
            return implementation(path, fresh=fresh, return_state=True)
        case Phase.OPERATIONAL:
            return operational(path, return_state=True)
        case Phase.REVERSIBILITY:
            return reversibility(path, fresh=fresh, return_state=True)
