"""Each operational task on its own clock, and the period checklist each run ticks.

The operational run is not one nightly job: health is sampled every few
minutes, backups follow the playbook's cron, pending updates are read
daily, the SLA report is written once the reporting period is over, the
reversibility drill runs each quarter and the technology watch each week.
This module says, without Prefect, when each task is due (`task_schedules`)
and which checklist a run ticks (`period_checklist`):

- backups, restore check, security updates, the technology watch and items
  the playbook adds: the checklist of the month of the run,
  `operational-YYYY-MM`, in the contract's time zone (`contract.timezone`);
- health checks, incidents and the SLA report: the checklist of the
  reporting period they measure (`sla.reporting_period`: the month, or the
  quarter `operational-YYYY-qN`); the scheduled report runs on the first
  day after the period and ticks that period's checklist;
- the reversibility drill: the checklist of the quarter of the run.

The health samples (every 5 minutes) tick nothing: they feed the store the
SLA report reads, and one checklist tick per sample would bury the audit
log. `schedules.json` under the handover home remembers, per contract,
which playbook its schedules come from, so `handover serve` serves them
again after a restart. With `HANDOVER_STATE_URL=postgresql://...` each
contract's record is instead its store blob `schedules.json`, so that
`handover serve` or `handover schedules` on any worker sees a contract
recorded on another; a record this worker's file holds and the store does
not (written before the store was shared) is taken into the store when read.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal, get_args
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, TypeAdapter

from handover.contract.playbook import Playbook
from handover.phases import Phase, checklist_name
from handover.state.atomic import write_atomic
from handover.state.home import CONTRACT_ID_PATTERN, handover_home
from handover.state.store import ABSENT, StateConflict, state_url

if TYPE_CHECKING:
    from handover.state.postgres import PostgresStore

SCHEDULES_FILE = "schedules.json"

Task = Literal["health", "backups", "updates", "sla-report", "drill", "technology-watch"]
TASKS: tuple[Task, ...] = get_args(Task)
PeriodKind = Literal["month", "quarter"]

#: The checklist items each task ticks (the health samples tick none).
TASK_ITEMS: dict[Task, tuple[str, ...]] = {
    "health": (),
    "backups": ("backups", "restore-check"),
    "updates": ("security-updates",),
    "sla-report": ("health-checks", "incidents", "sla-report"),
    "drill": ("reversibility-drill",),
    "technology-watch": ("technology-watch",),
}

DEFAULT_BACKUP_CRON = "0 2 * * *"
DEFAULT_HEALTH_EVERY = timedelta(minutes=5)
DEFAULT_CRONS: dict[Task, str] = {
    "updates": "0 6 * * *",
    "drill": "0 3 15 2,5,8,11 *",  # mid-quarter: a failed drill can be redone within it
    "technology-watch": "0 7 * * 1",
}
SLA_REPORT_CRONS: dict[PeriodKind, str] = {"month": "0 6 1 * *", "quarter": "0 6 1 1,4,7,10 *"}


class TaskSchedule(BaseModel):
    """When one task of a contract runs: a cron in the contract's zone, or an interval."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    task: Task
    cron: str | None = None
    interval_seconds: int | None = None
    timezone: str
    items: tuple[str, ...]

    @property
    def describe(self) -> str:
        if self.cron:
            return f"cron {self.cron} ({self.timezone})"
        return f"every {timedelta(seconds=self.interval_seconds or 0)}"


def reporting_kind(playbook: Playbook) -> PeriodKind:
    """The period the SLA is reported on: `month` or `quarter`."""
    return "quarter" if playbook.sla.reporting_period == "quarterly" else "month"


def task_schedules(playbook: Playbook) -> list[TaskSchedule]:
    """Every task's schedule: the playbook's overrides (`operations.schedules`), else defaults.

    Backups follow `backups.schedule` (default nightly at 02:00); a contract
    without a backups section has no backups schedule. The crons are
    validated when the playbook is read (`handover.contract.cron`).
    """
    overrides = playbook.operations.schedules
    zone = playbook.contract.timezone
    crons: dict[Task, str | None] = {
        "health": overrides.health,
        "backups": (playbook.backups.schedule or DEFAULT_BACKUP_CRON) if playbook.backups else None,
        "updates": overrides.updates or DEFAULT_CRONS["updates"],
        "sla-report": overrides.sla_report or SLA_REPORT_CRONS[reporting_kind(playbook)],
        "drill": overrides.drill or DEFAULT_CRONS["drill"],
        "technology-watch": overrides.technology_watch or DEFAULT_CRONS["technology-watch"],
    }
    schedules: list[TaskSchedule] = []
    for task in TASKS:
        cron = crons[task]
        if task == "health" and cron is None:
            every = int(DEFAULT_HEALTH_EVERY.total_seconds())
            schedules.append(
                TaskSchedule(task=task, interval_seconds=every, timezone=zone, items=())
            )
        elif cron is not None:
            schedules.append(
                TaskSchedule(task=task, cron=cron, timezone=zone, items=TASK_ITEMS[task])
            )
    return schedules


# -- periods -------------------------------------------------------------------------------


def period_of(at: datetime, kind: PeriodKind, zone: str) -> str:
    """`2026-11` (month) or `2026-q4` (quarter) of the instant `at`, in the contract's zone."""
    local = at.astimezone(ZoneInfo(zone))
    if kind == "month":
        return f"{local.year:04d}-{local.month:02d}"
    return f"{local.year:04d}-q{(local.month - 1) // 3 + 1}"


def period_bounds(period: str, zone: str) -> tuple[datetime, datetime]:
    """The period's first instant and the first instant after it, midnight in the zone.

    Aware datetimes in the contract's zone: a month is 30 or 31 days of wall
    clock, whatever the DST change in it (its length in hours varies).
    """
    year, _, rest = period.partition("-")
    if rest.startswith("q"):
        first, months = (int(rest[1:]) - 1) * 3 + 1, 3
    else:
        first, months = int(rest), 1
    tz = ZoneInfo(zone)
    start = datetime(int(year), first, 1, tzinfo=tz)
    end_month = first + months
    end = datetime(int(year) + (end_month - 1) // 12, (end_month - 1) % 12 + 1, 1, tzinfo=tz)
    return start, end


def previous_period(at: datetime, kind: PeriodKind, zone: str) -> str:
    """The period that ended last before `at` (the one a report run at `at` covers)."""
    start, _ = period_bounds(period_of(at, kind, zone), zone)
    return period_of(start - timedelta(seconds=1), kind, zone)


def item_period_kind(item_id: str, reporting: PeriodKind) -> PeriodKind:
    """Whether an operational item belongs to the month's or the quarter's checklist."""
    if item_id in TASK_ITEMS["drill"]:
        return "quarter"
    if item_id in TASK_ITEMS["sla-report"]:
        return reporting
    return "month"


def period_checklist(period: str) -> str:
    """`operational-<period>`: the checklist name of an operational period."""
    return checklist_name(Phase.OPERATIONAL, period)


def period_items(
    template: Iterable[dict[str, object]], period: str, reporting: PeriodKind
) -> list[dict[str, object]]:
    """The template items that belong to the checklist of `period` (a month or a quarter)."""
    kind: PeriodKind = "quarter" if "-q" in period else "month"
    return [item for item in template if item_period_kind(str(item["id"]), reporting) == kind]


# -- the record of which contracts have schedules ------------------------------------------


class ScheduleRecord(BaseModel):
    """Where a contract's schedules come from: its playbook (absolute), and the pool if any."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    playbook_path: str  # absolute: `handover serve` may start in another folder
    cron: str | None = None  # written by versions with a single nightly run; ignored
    work_pool: str | None = None  # where `handover schedules deploy` put them, if anywhere


_SCHEDULES = TypeAdapter(dict[str, ScheduleRecord])


def load_schedules() -> dict[str, ScheduleRecord]:
    """Every recorded contract; none when the file is missing or unreadable.

    Under PostgreSQL: the contracts' store blobs, and this worker's file's
    records of contracts the store has none of, taken into it (see the
    module docstring); an unreadable blob counts as no record, as the file.
    """
    local = _load_file()
    store = _shared_store()
    if store is None:
        return local
    from handover.state.shared_blob import contracts_with_blob

    records: dict[str, ScheduleRecord] = {}
    for contract in contracts_with_blob(store, SCHEDULES_FILE):
        record = _parse_record(store.read_blob(contract, SCHEDULES_FILE))
        if record is not None:
            records[contract] = record
    for contract, record in local.items():
        if contract in records or not CONTRACT_ID_PATTERN.match(contract):
            continue
        try:
            store.write_blob_if(contract, SCHEDULES_FILE, _record_bytes(record), ABSENT)
            records[contract] = record
        except StateConflict:  # another worker recorded it meanwhile: the store's wins
            stored = _parse_record(store.read_blob(contract, SCHEDULES_FILE))
            if stored is not None:
                records[contract] = stored
    return records


def record_schedule(contract: str, record: ScheduleRecord) -> None:
    """Add or replace the contract's record, keeping the others (its blob under PostgreSQL)."""
    store = _shared_store()
    if store is not None:
        store.write_blob(contract, SCHEDULES_FILE, _record_bytes(record))
        return
    schedules = _load_file()
    schedules[contract] = record
    data = {name: entry.model_dump(exclude_none=True) for name, entry in schedules.items()}
    write_atomic(handover_home() / SCHEDULES_FILE, json.dumps(data, indent=2).encode())


def _load_file() -> dict[str, ScheduleRecord]:
    """The records of the home's `schedules.json`; none when missing or unreadable."""
    try:
        return _SCHEDULES.validate_json((handover_home() / SCHEDULES_FILE).read_bytes())
    except (OSError, ValueError):
        return {}


def _record_bytes(record: ScheduleRecord) -> bytes:
    return json.dumps(record.model_dump(exclude_none=True), indent=2).encode()


def _parse_record(data: bytes | None) -> ScheduleRecord | None:
    if data is None:
        return None
    try:
        return ScheduleRecord.model_validate_json(data)
    except ValueError:
        return None


def _shared_store() -> PostgresStore | None:
    """The PostgreSQL store `HANDOVER_STATE_URL` names; None for the local folder."""
    url = state_url()
    if url.kind != "postgresql" or url.url is None:
        return None
    # Imported here: SQLAlchemy and the driver load only where a database is used.
    from handover.state.postgres import PostgresStore

    return PostgresStore(url.url)
