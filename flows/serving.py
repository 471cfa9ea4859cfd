"""`handover serve`: the phase flows served as deployments for the Prefect UI.

One deployment per phase (the UI builds the run form from the flow's
parameters: a playbook path, never a secret), the whole lifecycle, and, for
each contract whose schedules were deployed (the implementation phase, or
`handover schedules deploy` without a pool), one deployment per operational
task on its own schedule (`flows.schedules`), so scheduled runs execute
here. A contract whose schedules are in a work pool is left to the pool's
workers: serving it here would take its deployments out of the pool.

Whoever reaches the API can start these with a `playbook_path` of their
choosing: each phase flow, run from a deployment, first checks that the
playbook is inside the playbook folders (`flows.playbook_guard`). A
contract's recorded schedule whose playbook is outside them (or no longer
reads) stops `handover serve` at start, with the setting to change, rather
than failing at every scheduled run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

from prefect import serve
from prefect.deployments.runner import RunnerDeployment

from flows.implementation import implementation
from flows.lifecycle import lifecycle
from flows.operational import operational
from flows.patching import patching
from flows.playbook_guard import check_deployment_playbook
from flows.reversibility import reversibility
from flows.schedules import contract_deployments
from flows.takeover import takeover
from handover.contract.playbook_dirs import PlaybookOutsideFolders
from handover.operations.run_history import run_tags
from handover.operations.schedules import load_schedules


def phase_deployments() -> list[RunnerDeployment]:
    """One deployment per phase flow, plus the lifecycle.

    Each carries its `phase:<phase>` tag, which every run it creates
    inherits; the contract is a parameter (the playbook), so its tag is
    added by the flow once it has read the playbook (`tasks.tags`).
    """
    deployments = [
        takeover.to_deployment(
            name="takeover", description="Prise en charge of a contract.", tags=_tags("takeover")
        ),
        implementation.to_deployment(
            name="implementation", description="Mise en œuvre.", tags=_tags("implementation")
        ),
        operational.to_deployment(
            name="operational", description="One operational run.", tags=_tags("operational")
        ),
        reversibility.to_deployment(
            name="reversibility",
            description="Réversibilité: the exit.",
            tags=_tags("reversibility"),
        ),
        lifecycle.to_deployment(
            name="lifecycle", description="The four phases in order.", tags=_tags("lifecycle")
        ),
        # Started by hand (or by a schedule an operator adds in the UI): it applies only
        # inside the maintenance window, and with `approval: ask` pauses for a named approver.
        patching.to_deployment(
            name="patching",
            description="Security updates applied in the maintenance window (MCO).",
            tags=_tags("operational"),
        ),
    ]
    # Built outside any run, where Prefect's async_dispatch runs the synchronous
    # implementation; its typing still offers a coroutine.
    return [cast(RunnerDeployment, deployment) for deployment in deployments]


def _tags(phase: str) -> list[str]:
    return run_tags(None, phase)


def serve_phases(limit: int = 4, *, announce: Callable[[], None] = lambda: None) -> None:
    """Serve the phase flows (and the contracts' schedules) until interrupted.

    Raises PlaybookOutsideFolders (exit 2) before serving anything, and
    before `announce` says it is serving, if a recorded schedule's playbook
    is outside the playbook folders.
    """
    deployments = phase_deployments()
    for contract, record in sorted(load_schedules().items()):
        if record.work_pool:  # the pool's workers run them (`handover schedules deploy --pool`)
            continue
        check_scheduled_playbook(contract, record.playbook_path)
        _, tasks = contract_deployments(record.playbook_path)
        deployments.extend(deployment for _, deployment in tasks)
    announce()
    serve(*deployments, limit=limit)


def check_scheduled_playbook(contract: str, playbook_path: str) -> None:
    """The schedule's playbook must pass the check its runs will face, said with the contract."""
    try:
        check_deployment_playbook(playbook_path)
    except PlaybookOutsideFolders as refused:
        raise PlaybookOutsideFolders(f"schedules of {contract}: {refused}") from None
