"""A contract's operational tasks as Prefect deployments, each on its own schedule.

One deployment per task (`<contract>-backups`, `<contract>-sla-report`, ...,
`<contract>-health`), each of the task's own flow (`flows.operational_tasks`,
`flows.health`), on the schedule `handover.operations.schedules` computes
from the playbook (crons in the contract's time zone). Their parameters are
the playbook's path only; their tags, `contract:<id>` and `phase:operational`
(`phase:health` for the samples), are on every run the scheduler creates,
so the contract's run history finds them, future ones included.

Two ways to run them, from the same definitions:

- a team: `deploy_schedules(..., pool="handover")` (`handover schedules
  deploy`) creates or updates them in the work pool, entry points as module
  paths and the working directory as a job variable, so the process workers
  of the pool (`prefect worker start --pool handover`) pick up their runs;
- one machine: `handover serve` serves them (`contract_deployments`),
  rebuilt from `schedules.json` at each start.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, cast
from uuid import UUID
from zoneinfo import ZoneInfo

from prefect import Flow, task
from prefect.cache_policies import NO_CACHE
from prefect.deployments.runner import RunnerDeployment
from prefect.schedules import Cron, Interval
from prefect.types.entrypoint import EntrypointType
from pydantic import BaseModel, ConfigDict

from flows.health import health
from flows.operational_tasks import (
    operational_backups,
    operational_drill,
    operational_sla_report,
    operational_technology_watch,
    operational_updates,
)
from handover.contract.loader import load_playbook
from handover.errors import UsageError
from handover.operations.run_history import run_tags
from handover.operations.schedules import (
    ScheduleRecord,
    Task,
    TaskSchedule,
    load_schedules,
    record_schedule,
    task_schedules,
)

#: The flow each task's deployment runs.
TASK_FLOWS: dict[Task, Flow[..., Any]] = {
    "health": health,
    "backups": operational_backups,
    "updates": operational_updates,
    "sla-report": operational_sla_report,
    "drill": operational_drill,
    "technology-watch": operational_technology_watch,
}


class ScheduleDeployed(BaseModel):
    """One deployment of a contract's task schedule, as created (no secret)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    deployment: str  # <flow>/<deployment>, as `prefect deployment run` names it
    deployment_id: str
    task: str
    schedule: str
    served_by: str  # `work pool <name>` or `handover serve`


def next_runs(schedule: TaskSchedule, after: datetime, count: int = 1) -> list[datetime]:
    """The next `count` times Prefect's scheduler will run the task after `after`.

    Computed by Prefect's own schedule code, so `handover schedules show`
    says what the scheduler does, DST days included (a 02:30 that does not
    exist runs at 03:30; a 02:30 that happens twice runs once).
    """
    from prefect.server.schemas.schedules import CronSchedule, IntervalSchedule

    when: CronSchedule | IntervalSchedule = (
        CronSchedule(cron=schedule.cron, timezone=schedule.timezone)
        if schedule.cron
        else IntervalSchedule(
            interval=timedelta(seconds=schedule.interval_seconds or 300),
            timezone=schedule.timezone,
        )
    )
    dates = asyncio.run(when.get_dates(count, start=after))
    return [d.astimezone(ZoneInfo(schedule.timezone)) for d in dates]


def deployment_name(contract: str, task: Task) -> str:
    return f"{contract}-{task}"


def task_deployment(
    contract: str,
    playbook_path: str,
    schedule: TaskSchedule,
    *,
    pool: str | None = None,
    workdir: str | None = None,
) -> RunnerDeployment:
    """The deployment of one task of `contract` on its schedule.

    With `pool`, for the workers of that work pool: the entry point is the
    flow's module path (the workers' checkouts install handover, wherever
    they are) and `workdir` the process's working directory (where the
    default playbook folder is); without, for `handover serve`.
    """
    flow = TASK_FLOWS[schedule.task]
    when = (
        Cron(schedule.cron, timezone=schedule.timezone)
        if schedule.cron
        else Interval(timedelta(seconds=schedule.interval_seconds or 300))
    )
    phase = "health" if schedule.task == "health" else "operational"
    deployment = flow.to_deployment(
        name=deployment_name(contract, schedule.task),
        schedule=when,
        parameters={"playbook_path": playbook_path},
        description=(
            f"{schedule.task} of {contract}, {schedule.describe}"
            + (f"; ticks {', '.join(schedule.items)}" if schedule.items else "")
        ),
        # Runs the scheduler creates carry these (and Prefect's `auto-scheduled`) from
        # their creation, future ones included; the flow adds `trigger:schedule` when it runs.
        tags=run_tags(contract, phase),
        entrypoint_type=EntrypointType.MODULE_PATH if pool else EntrypointType.FILE_PATH,
        work_pool_name=pool,
        job_variables={"working_dir": workdir} if pool and workdir else None,
    )
    # Called from synchronous code only (a sync task, the serve command), where Prefect's
    # async_dispatch runs the synchronous implementation; its typing still offers a coroutine.
    return cast(RunnerDeployment, deployment)


def contract_deployments(
    playbook_path: str, *, pool: str | None = None, workdir: str | None = None
) -> tuple[str, list[tuple[TaskSchedule, RunnerDeployment]]]:
    """The contract's id and one deployment per task schedule its playbook gives."""
    path = str(Path(playbook_path).resolve())
    playbook = load_playbook(Path(path))
    contract = playbook.contract_id
    return contract, [
        (schedule, task_deployment(contract, path, schedule, pool=pool, workdir=workdir))
        for schedule in task_schedules(playbook)
    ]


def require_pool(pool: str) -> None:
    """UsageError in one line unless the work pool exists (its workers would never see runs)."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            client.read_work_pool(pool)
        except ObjectNotFound:
            raise UsageError(
                f"work pool {pool!r} does not exist: create it with "
                f"`prefect work-pool create {pool} --type process`"
            ) from None


def deploy_schedules(
    playbook_path: str, *, pool: str | None = None, workdir: str | None = None
) -> list[ScheduleDeployed]:
    """Create or update the contract's task deployments, and record the contract.

    With `pool`, in that work pool (it must exist: `prefect work-pool create
    handover --type process`); without, as deployments `handover serve`
    serves. The record (`schedules.json`) lets `handover serve` rebuild them.
    """
    contract, deployments = contract_deployments(playbook_path, pool=pool, workdir=workdir)
    deployed = []
    for schedule, deployment in deployments:
        # Synchronous here (see task_deployment): apply() returns the id itself.
        deployment_id = cast(UUID, deployment.apply(work_pool_name=pool))
        deployed.append(
            ScheduleDeployed(
                deployment=f"{deployment.flow_name}/{deployment.name}",
                deployment_id=str(deployment_id),
                task=schedule.task,
                schedule=schedule.describe,
                served_by=f"work pool {pool}" if pool else "handover serve",
            )
        )
    record = ScheduleRecord(playbook_path=str(Path(playbook_path).resolve()), work_pool=pool)
    record_schedule(contract, record)
    return deployed


# A task that stays beside the flows: it deploys flow objects, which the tasks layer
# cannot import (flows use tasks, never the other way).
@task(cache_policy=NO_CACHE, task_run_name="deploy the operational schedules")
def deploy_operational_schedules(playbook_path: str) -> list[ScheduleDeployed]:
    """The implementation phase's deployment of the schedules, served by `handover serve`.

    A team deploys them into its work pool instead (`handover schedules
    deploy PLAYBOOK --pool handover`); the implementation phase keeps a pool
    chosen that way (recorded in `schedules.json`) when it deploys again.
    """
    playbook = load_playbook(Path(playbook_path))
    known = load_schedules().get(playbook.contract_id)
    pool = known.work_pool if known else None
    return deploy_schedules(playbook_path, pool=pool, workdir=str(Path.cwd()) if pool else None)
