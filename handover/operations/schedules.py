"""The backup schedules of the contracts: `schedules.json` under the handover home.

The implementation phase deploys each contract's scheduled operational run;
`handover serve` must serve those deployments again after a restart, so it
needs to know, without asking Prefect, which contracts have a schedule and
with which playbook and cron. This record is that memory: plain file I/O,
kept apart from the Prefect deployment code that reads and writes it.
"""

from __future__ import annotations

import json

from pydantic import BaseModel, ConfigDict, TypeAdapter

from handover.state.atomic import write_atomic
from handover.state.home import handover_home

SCHEDULES_FILE = "schedules.json"


class BackupSchedule(BaseModel):
    """When a contract's operational run (health, backups, reports) is due, with which playbook."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    playbook_path: str  # absolute: `handover serve` may start in another folder
    cron: str


_SCHEDULES = TypeAdapter(dict[str, BackupSchedule])


def load_schedules() -> dict[str, BackupSchedule]:
    """Every recorded schedule by contract; none when the file is missing or unreadable."""
    try:
        return _SCHEDULES.validate_json((handover_home() / SCHEDULES_FILE).read_bytes())
    except (OSError, ValueError):
        return {}


def record_schedule(contract: str, schedule: BackupSchedule) -> None:
    """Add or replace the contract's schedule, keeping the others."""
    schedules = load_schedules()
    schedules[contract] = schedule
    data = {name: entry.model_dump() for name, entry in schedules.items()}
    write_atomic(handover_home() / SCHEDULES_FILE, json.dumps(data, indent=2).encode())
