"""A contract's backup schedule as a Prefect deployment of the operational flow.

The implementation phase deploys it (`deploy_backup_schedule`) and records it
in the handover home (`handover.operations.schedules`); `handover serve`
rebuilds the same deployment from that record (`scheduled_deployment`), so
the scheduled runs execute in the serving process. The deployment's tags,
`contract:<id>` and `phase:operational`, are on every run the scheduler
creates, so the contract's run history finds them, future ones included.
"""

from __future__ import annotations

from pathlib import Path
from typing import cast
from uuid import UUID

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.deployments.runner import RunnerDeployment
from pydantic import BaseModel, ConfigDict

from flows.operational import operational
from handover.operations.run_history import run_tags
from handover.operations.schedules import BackupSchedule, record_schedule


class ScheduleDeployed(BaseModel):
    """The deployment that runs a contract's operational flow on its schedule (no secret)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    deployment: str  # <flow>/<deployment>, as `prefect deployment run` names it
    deployment_id: str
    cron: str
    served_by: str


def scheduled_deployment(contract: str, schedule: BackupSchedule) -> RunnerDeployment:
    """The operational flow of `contract`, run on the schedule's cron with its playbook."""
    deployment = operational.to_deployment(
        name=f"{contract}-scheduled",
        cron=schedule.cron,
        parameters={"playbook_path": schedule.playbook_path},
        description=f"Scheduled operational run of {contract}: health checks, backups, reports.",
        # Runs the scheduler creates carry these (and Prefect's `auto-scheduled`) from
        # their creation, future ones included; the flow adds `trigger:schedule` when it runs.
        tags=run_tags(contract, "operational"),
    )
    # Called from synchronous code only (a sync task, the serve command), where Prefect's
    # async_dispatch runs the synchronous implementation; its typing still offers a coroutine.
    return cast(RunnerDeployment, deployment)


# A task that stays beside the flows: it deploys the operational flow object, which the
# tasks layer cannot import (flows use tasks, never the other way).
@task(cache_policy=NO_CACHE, task_run_name="deploy backup schedule of {contract}")
def deploy_backup_schedule(playbook_path: str, contract: str, cron: str) -> ScheduleDeployed:
    """Register the contract's scheduled operational deployment; served by `handover serve`."""
    schedule = BackupSchedule(playbook_path=str(Path(playbook_path).resolve()), cron=cron)
    # Synchronous here too (see scheduled_deployment): apply() returns the id itself.
    deployment_id = cast(UUID, scheduled_deployment(contract, schedule).apply())
    record_schedule(contract, schedule)
    return ScheduleDeployed(
        deployment=f"operational/{contract}-scheduled",
        deployment_id=str(deployment_id),
        cron=cron,
        served_by="handover serve",
    )
