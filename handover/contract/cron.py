"""Cron expressions in the playbook: checked when the playbook is read, not at the first run.

A schedule that cannot fire is found by `handover playbook check` and by the
phase that deploys it, in one line naming the field, instead of by Prefect
refusing the deployment (or, worse, by nobody, when a run never comes).
Five fields (minute hour day-of-month month day-of-week), as Prefect's cron
schedules take them; evaluated in the contract's time zone.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from cronsim import CronSim, CronSimError
from pydantic import AfterValidator


def cron_problem(expression: str) -> str | None:
    """Why `expression` is not a five-field cron expression, or None when it is one."""
    fields = expression.split()
    if len(fields) != 5:
        return f"{len(fields)} field(s); a cron expression has 5 (minute hour day month weekday)"
    if any(f.upper() in ("R", "H") for f in fields):
        return "random (R) and hashed (H) fields are not supported by Prefect"
    try:
        CronSim(expression, datetime(2026, 1, 1, tzinfo=UTC))
    except CronSimError as exc:
        return str(exc).lower()
    return None


def _check_cron(value: str) -> str:
    value = " ".join(value.split())
    problem = cron_problem(value)
    if problem:
        raise ValueError(f"{value!r} is not a cron expression: {problem}")
    return value


CronExpression = Annotated[str, AfterValidator(_check_cron)]
"""A five-field cron expression (spaces normalised), e.g. `0 2 * * *`."""
