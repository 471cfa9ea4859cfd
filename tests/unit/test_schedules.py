"""The backup schedules record (`schedules.json` under the handover home)."""

from __future__ import annotations

import json

from handover.operations.schedules import (
    SCHEDULES_FILE,
    BackupSchedule,
    load_schedules,
    record_schedule,
)
from handover.state.home import handover_home


def test_schedules_are_recorded_by_contract_and_read_back() -> None:
    assert load_schedules() == {}
    record_schedule("acme", BackupSchedule(playbook_path="/p/acme.yaml", cron="0 2 * * *"))
    record_schedule("beta", BackupSchedule(playbook_path="/p/beta.yaml", cron="0 3 * * *"))
    record_schedule("acme", BackupSchedule(playbook_path="/p/acme.yaml", cron="30 1 * * *"))
    assert load_schedules() == {
        "acme": BackupSchedule(playbook_path="/p/acme.yaml", cron="30 1 * * *"),
        "beta": BackupSchedule(playbook_path="/p/beta.yaml", cron="0 3 * * *"),
    }
    on_disk = json.loads((handover_home() / SCHEDULES_FILE).read_text())
    assert on_disk["beta"] == {"playbook_path": "/p/beta.yaml", "cron": "0 3 * * *"}


def test_an_unreadable_schedules_file_reads_as_none() -> None:
    (handover_home() / SCHEDULES_FILE).write_text("{not json")
    assert load_schedules() == {}
