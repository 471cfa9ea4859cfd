"""The alerts without a task of their own reach a real Prefect server as events, once:
an exit date coming (from the recorded exit calendar) and datasets with no recent backup."""

from __future__ import annotations

import os
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import yaml

from handover.contract.deadlines import ExitDeadlines
from handover.exit.progress import ExitProgress, ExitState
from tasks.alerts import alert_exit_deadlines, alert_missed_backups
from tests.fixtures.prefect_server import api_headers
from tests.unit.documents_fixtures import TEST_PLAYBOOK

pytestmark = [
    pytest.mark.integration,
    # The tasks run here on their own, as standalone task runs; the operational flow runs
    # them inside its flow run, where their log lines have a flow run to go to.
    pytest.mark.filterwarnings(
        "ignore:Logger 'prefect.task_runs' attempted to send logs to the API without a flow"
        " run id:UserWarning"
    ),
]


def _playbook(folder: Path, contract: str) -> str:
    data = yaml.safe_load(TEST_PLAYBOOK)
    data["contract"]["id"] = contract
    data["operations"] = {"notifications": {"block": "custom-webhook/none", "exit_warning_days": 7}}
    path = folder / "alerts.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return str(path)


def server_events(
    name: str, contract: str, want: int, timeout_s: float = 60
) -> list[dict[str, Any]]:
    """The `name` events of `contract` on the server, once `want` are there (or the timeout)."""
    body = {
        "filter": {
            "event": {"name": [name]},
            "resource": {"id": [f"handover.contract.{contract}"]},
            "occurred": {"since": "2000-01-01T00:00:00Z"},
        },
        "limit": 50,
    }
    deadline = time.monotonic() + timeout_s
    events: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        response = httpx.post(
            f"{os.environ['PREFECT_API_URL']}/events/filter", json=body, headers=api_headers()
        )
        response.raise_for_status()
        events = response.json()["events"]
        if len(events) >= want:
            time.sleep(2)  # one too many, if wrongly emitted, lands by now
            response = httpx.post(
                f"{os.environ['PREFECT_API_URL']}/events/filter", json=body, headers=api_headers()
            )
            return list(response.json()["events"])
        time.sleep(1)
    return events


def test_an_exit_date_coming_is_told_once(prefect_server: str, tmp_path: Path) -> None:
    contract = f"alerts-exit-{uuid.uuid4().hex[:8]}"  # the server is shared: our events only
    playbook = _playbook(tmp_path, contract)
    assert alert_exit_deadlines(playbook) == []  # no exit notice: nothing to say

    today = datetime.now(ZoneInfo("Europe/Paris")).date()  # the contract's calendar day
    dates = ExitDeadlines(
        notice_date=today - timedelta(days=60),
        switching_starts=today - timedelta(days=20),
        switch_over=today + timedelta(days=5),
        erasure_earliest=today + timedelta(days=35),
        erasure_by=today + timedelta(days=65),
        transition_basis="contract: 30 days",
    )
    ExitProgress(contract).save(ExitState(bundle_name="exit-1", deadlines=dates))
    (alert,) = alert_exit_deadlines(playbook)
    assert (alert.kind, alert.subject, alert.severity) == (
        "exit-deadline",
        "switch_over",
        "warning",
    )
    assert alert_exit_deadlines(playbook) == []  # told within the repeat interval: silent

    (event,) = server_events("handover.exit-deadline", contract, want=1)
    assert event["resource"]["handover.alert.subject"] == "switch_over"
    assert event["payload"]["message"] == (
        f"exit: switch_over on {dates.switch_over.isoformat()}, in 5 days"
    )


def test_datasets_without_a_recent_backup_are_told(
    prefect_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the playbook's backup target is relative: an empty store
    contract = f"alerts-backup-{uuid.uuid4().hex[:8]}"
    alerts = alert_missed_backups(_playbook(tmp_path, contract))
    assert sorted(a.subject for a in alerts) == ["db", "etc", "shares", "www"]

    events = server_events("handover.backup-missed", contract, want=4)
    assert sorted(e["payload"]["message"] for e in events) == [
        f"no backup of {name} in the store" for name in ("db", "etc", "shares", "www")
    ]
    assert all(e["payload"]["severity"] == "critical" for e in events)


def test_a_backup_that_fails_for_good_is_told(
    prefect_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect import flow

    from tasks.backups import backup_dataset

    monkeypatch.chdir(tmp_path)  # the dataset's local host root does not exist here
    contract = f"alerts-backupfail-{uuid.uuid4().hex[:8]}"
    playbook = _playbook(tmp_path, contract)

    @flow(name="backup-fails")
    def one_backup() -> None:
        backup_dataset(playbook, "www")

    with pytest.raises(Exception) as failure:
        one_backup()
    (event,) = server_events("handover.backup-failed", contract, want=1)
    assert event["payload"]["subject"] == "www"
    assert event["payload"]["message"].startswith("backup of www failed: ")
    assert type(failure.value).__name__ in event["payload"]["message"]
