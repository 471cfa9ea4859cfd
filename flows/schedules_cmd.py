"""`handover schedules`: each operational task's clock, shown and deployed.

`show` reads the playbook only (no server): which task runs when, in the
contract's time zone, and which checklist items it ticks. `deploy` creates
or updates the deployments, in a work pool for a team's process workers
(`--pool handover`), or for `handover serve` without one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import typer

from handover.cli import app, console, handles_errors

schedules_app = typer.Typer(help="Each operational task on its own schedule.")
app.add_typer(schedules_app, name="schedules")


@schedules_app.command("show")
@handles_errors
def schedules_show(
    playbook: Path = typer.Argument(..., help="The contract's playbook (YAML)."),
) -> None:
    """Each task's schedule, its next run and the items it ticks (reads the playbook only)."""
    from flows.schedules import next_runs
    from handover.contract.loader import load_playbook
    from handover.operations.schedules import task_schedules

    loaded = load_playbook(playbook)
    now = datetime.now(UTC)
    for schedule in task_schedules(loaded):
        (upcoming,) = next_runs(schedule, now)
        items = ", ".join(schedule.items) or "no item (samples for the SLA report)"
        console.print(
            f"{schedule.task}: {schedule.describe}, next {upcoming:%Y-%m-%d %H:%M %Z}; "
            f"ticks {items}",
            soft_wrap=True,
        )


@schedules_app.command("deploy")
@handles_errors
def schedules_deploy(
    playbook: Path = typer.Argument(..., help="The contract's playbook (YAML)."),
    pool: str = typer.Option(
        None,
        "--pool",
        help="Work pool whose process workers run them (e.g. handover); "
        "default: none, `handover serve` runs them.",
    ),
    workdir: Path = typer.Option(
        None,
        "--workdir",
        help="With --pool: the workers' working directory (their checkout; "
        "default: this directory).",
    ),
) -> None:
    """Create or update one deployment per operational task, on its schedule."""
    from handover.contract.loader import load_playbook

    load_playbook(playbook)  # an invalid playbook (a bad cron) never reaches the server
    from flows import server

    server.ensure_server()
    from flows.schedules import deploy_schedules, require_pool

    if pool:
        require_pool(pool)
    folder = str((workdir or Path.cwd()).resolve()) if pool else None
    for deployed in deploy_schedules(str(playbook), pool=pool, workdir=folder):
        console.print(f"{deployed.deployment:<45} {deployed.schedule}  ({deployed.served_by})")
    if pool:
        console.print(f"working directory of the runs: {folder}")
    else:
        console.print("run `handover serve` to run them on this machine")
