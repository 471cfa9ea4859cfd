"""The whole contract, in order; and the helper the CLI uses to run one phase."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from prefect import flow

from flows._phase import phase_run_name
from flows.implementation import implementation
from flows.operational import operational
from flows.reversibility import reversibility
from flows.takeover import takeover

PHASE_FLOWS = {
    "takeover": takeover,
    "implementation": implementation,
    "operational": operational,
    "reversibility": reversibility,
}


@flow(name="lifecycle", flow_run_name=phase_run_name, log_prints=True)
def lifecycle(playbook_path: str, fresh: bool = False) -> dict[str, Any]:
    """Takeover, implementation, one operational run, then reversibility (as subflows)."""
    results: dict[str, Any] = {}
    results["takeover"] = takeover(playbook_path, fresh=fresh)
    results["implementation"] = implementation(playbook_path, fresh=fresh)
    results["operational"] = operational(playbook_path)
    results["reversibility"] = reversibility(playbook_path, fresh=fresh)
    return results


def answer_acceptance_when_paused(
    contract_flow_name: str, accepted_by: str, stop: threading.Event, timeout_s: float = 3600
) -> threading.Thread:
    """Answer the client-acceptance step through the API once the flow pauses (demo, drills).

    A real exit is answered by a person in the Prefect UI; this stands in for
    them by calling the same API the UI calls.
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterName,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.flow_runs import resume_flow_run

    def watch() -> None:
        deadline = time.monotonic() + timeout_s
        while not stop.is_set() and time.monotonic() < deadline:
            with get_client(sync_client=True) as client:
                runs = client.read_flow_runs(
                    flow_run_filter=FlowRunFilter(
                        name=FlowRunFilterName(like_=contract_flow_name),
                        state=FlowRunFilterState(
                            type=FlowRunFilterStateType(any_=[StateType.PAUSED])
                        ),
                    )
                )
            for run in runs:
                resume_flow_run(
                    run.id,
                    run_input={
                        "accepted": True,
                        "accepted_by": accepted_by,
                        "comment": "verified with age, tar, sha256sum -c and ssh-keygen -Y verify",
                    },
                )
                return
            stop.wait(1.0)

    thread = threading.Thread(target=watch, name="acceptance", daemon=True)
    thread.start()
    return thread


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

    path = str(playbook)
    kwargs: dict[str, Any] = {"return_state": True}
    if phase == "takeover":
        kwargs["pin_host_keys"] = pin_host_keys
    if phase != "operational":
        kwargs["fresh"] = fresh
    stop = threading.Event()
    if phase == "reversibility" and auto_accept:
        pb = load_playbook(playbook)
        answer_acceptance_when_paused(
            f"reversibility-{pb.contract_id}", pb.contract.parties.client.legal_name, stop
        )
    try:
        state = PHASE_FLOWS[phase](path, **kwargs)
    finally:
        stop.set()
    return bool(state.is_completed())
