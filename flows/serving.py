"""Deployments: the four phase flows served for the Prefect UI, and each contract's schedule.

`handover serve` serves one deployment per phase (the UI builds the run form
from the flow's parameters: a playbook path, never a secret) plus, for each
contract whose implementation phase deployed a backup schedule, the
scheduled operational deployment, so scheduled runs execute here too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from prefect import serve, task
from prefect.cache_policies import NO_CACHE
from prefect.deployments.runner import RunnerDeployment

from handover.state.atomic import write_atomic
from handover.state.home import handover_home

SCHEDULES_FILE = "schedules.json"


def _schedules_path() -> Path:
    return handover_home() / SCHEDULES_FILE


def _load_schedules() -> dict[str, dict[str, str]]:
    try:
        data: dict[str, dict[str, str]] = json.loads(_schedules_path().read_text())
        return data
    except (OSError, ValueError):
        return {}


def scheduled_deployment(contract: str, playbook_path: str, cron: str) -> RunnerDeployment:
    from flows.operational import operational

    return operational.to_deployment(
        name=f"{contract}-scheduled",
        cron=cron,
        parameters={"playbook_path": playbook_path},
        description=f"Scheduled operational run of {contract}: health checks, backups, reports.",
        tags=[f"contract:{contract}"],
    )


@task(cache_policy=NO_CACHE, task_run_name="deploy backup schedule of {contract}")
def deploy_backup_schedule(playbook_path: str, contract: str, cron: str) -> dict[str, Any]:
    """Register the contract's scheduled operational deployment; served by `handover serve`."""
    absolute = str(Path(playbook_path).resolve())
    deployment_id = scheduled_deployment(contract, absolute, cron).apply()
    schedules = _load_schedules()
    schedules[contract] = {"playbook_path": absolute, "cron": cron}
    write_atomic(_schedules_path(), json.dumps(schedules, indent=2).encode())
    return {
        "deployment": f"operational/{contract}-scheduled",
        "deployment_id": str(deployment_id),
        "cron": cron,
        "served_by": "handover serve",
    }


def phase_deployments() -> list[RunnerDeployment]:
    from flows.implementation import implementation
    from flows.lifecycle import lifecycle
    from flows.operational import operational
    from flows.reversibility import reversibility
    from flows.takeover import takeover

    return [
        takeover.to_deployment(name="takeover", description="Prise en charge of a contract."),
        implementation.to_deployment(name="implementation", description="Mise en œuvre."),
        operational.to_deployment(name="operational", description="One operational run."),
        reversibility.to_deployment(name="reversibility", description="Réversibilité: the exit."),
        lifecycle.to_deployment(name="lifecycle", description="The four phases in order."),
    ]


def serve_phases(limit: int = 4) -> None:
    """Serve the phase flows (and the contracts' schedules) until interrupted."""
    deployments = phase_deployments()
    for contract, entry in sorted(_load_schedules().items()):
        deployments.append(scheduled_deployment(contract, entry["playbook_path"], entry["cron"]))
    serve(*deployments, limit=limit)
