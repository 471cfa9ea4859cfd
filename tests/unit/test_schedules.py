"""Each operational task's clock, the period checklists they tick, and the contracts' record."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from handover.contract.cron import cron_problem
from handover.contract.loader import load_playbook
from handover.contract.playbook import Playbook, phase_items
from handover.errors import HandoverError
from handover.operations.schedules import (
    SCHEDULES_FILE,
    ScheduleRecord,
    load_schedules,
    period_bounds,
    period_checklist,
    period_items,
    period_of,
    previous_period,
    record_schedule,
    task_schedules,
)
from handover.state.home import handover_home

DEMO = Path(__file__).resolve().parents[2] / "playbooks" / "examples" / "demo.yaml"
PARIS = "Europe/Paris"


def _playbook(tmp_path: Path, **changes: Any) -> Playbook:
    """The demo playbook with `changes` merged into its top-level sections."""
    data = yaml.safe_load(DEMO.read_text())
    for section, values in changes.items():
        if isinstance(values, dict) and isinstance(data.get(section), dict):
            data[section].update(values)
        else:
            data[section] = values
    path = tmp_path / "playbook.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    for name in ("keys", "recipients"):  # files the demo playbook names, beside it
        source = DEMO.parent / name
        if source.exists() and not (tmp_path / name).exists():
            (tmp_path / name).symlink_to(source)
    return load_playbook(path)


# -- periods ----------------------------------------------------------------------------------


def test_the_period_is_the_month_of_the_contracts_zone_not_of_utc() -> None:
    # 23:30 UTC on 31 October is already 1 November in Paris (UTC+1 in winter time).
    late = datetime(2026, 10, 31, 23, 30, tzinfo=UTC)
    assert period_of(late, "month", PARIS) == "2026-11"
    assert period_of(late, "month", "UTC") == "2026-10"
    assert period_of(late, "month", "America/New_York") == "2026-10"
    assert period_of(late, "quarter", PARIS) == "2026-q4"
    assert period_of(datetime(2026, 9, 30, 21, 59, tzinfo=UTC), "quarter", PARIS) == "2026-q3"
    assert period_of(datetime(2026, 9, 30, 22, 0, tzinfo=UTC), "quarter", PARIS) == "2026-q4"


def test_period_bounds_are_local_midnights_whatever_the_dst_change_in_them() -> None:
    start, end = period_bounds("2026-10", PARIS)
    assert (start.isoformat(), end.isoformat()) == (
        "2026-10-01T00:00:00+02:00",
        "2026-11-01T00:00:00+01:00",
    )
    # October in Paris has the autumn change: 31 days and one hour.
    assert end.astimezone(UTC) - start.astimezone(UTC) == timedelta(days=31, hours=1)
    start, end = period_bounds("2026-03", PARIS)
    assert end.astimezone(UTC) - start.astimezone(UTC) == timedelta(days=31, hours=-1)
    start, end = period_bounds("2026-q4", PARIS)
    assert (start.date().isoformat(), end.date().isoformat()) == ("2026-10-01", "2027-01-01")
    start, end = period_bounds("2026-12", "UTC")
    assert end == datetime(2027, 1, 1, tzinfo=ZoneInfo("UTC"))


def test_the_report_run_on_the_first_day_covers_the_period_just_ended() -> None:
    first = datetime(2026, 12, 1, 5, 0, tzinfo=UTC)  # 06:00 in Paris
    assert previous_period(first, "month", PARIS) == "2026-11"
    assert previous_period(datetime(2027, 1, 1, 5, tzinfo=UTC), "month", PARIS) == "2026-12"
    assert previous_period(datetime(2027, 1, 1, 5, tzinfo=UTC), "quarter", PARIS) == "2026-q4"
    # Still 31 December in New York at 03:00 UTC on 1 January: the period before is November.
    assert previous_period(datetime(2027, 1, 1, 3, tzinfo=UTC), "month", "America/New_York") == (
        "2026-11"
    )


def test_each_period_checklist_holds_the_items_of_its_period(tmp_path: Path) -> None:
    playbook = _playbook(tmp_path)
    template = phase_items(playbook, "operational")
    month = [i["id"] for i in period_items(template, "2026-11", "month")]
    quarter = [i["id"] for i in period_items(template, "2026-q4", "month")]
    assert "reversibility-drill" not in month and quarter == ["reversibility-drill"]
    assert {"backups", "restore-check", "security-updates", "sla-report"} <= set(month)
    quarterly = [i["id"] for i in period_items(template, "2026-q4", "quarter")]
    assert set(quarterly) == {"health-checks", "incidents", "sla-report", "reversibility-drill"}
    assert period_checklist("2026-11") == "operational-2026-11"


# -- schedules --------------------------------------------------------------------------------


def test_default_schedules(tmp_path: Path) -> None:
    playbook = _playbook(tmp_path)
    by_task = {s.task: s for s in task_schedules(playbook)}
    assert set(by_task) == {
        "health",
        "backups",
        "updates",
        "sla-report",
        "drill",
        "technology-watch",
    }
    assert by_task["health"].interval_seconds == 300 and by_task["health"].cron is None
    assert by_task["backups"].cron == "0 2 * * *"  # the demo's backups.schedule
    assert by_task["sla-report"].cron == "0 6 1 * *"
    assert by_task["drill"].cron == "0 3 15 2,5,8,11 *"
    assert by_task["technology-watch"].cron == "0 7 * * 1"
    assert {s.timezone for s in by_task.values()} == {playbook.contract.timezone}
    assert by_task["backups"].items == ("backups", "restore-check")


def test_playbook_overrides_and_a_quarterly_report(tmp_path: Path) -> None:
    playbook = _playbook(
        tmp_path,
        operations={"schedules": {"drill": "0 4 1 */2 *", "health": "*/10 * * * *"}},
        sla={"reporting_period": "quarterly"},
    )
    by_task = {s.task: s for s in task_schedules(playbook)}
    assert by_task["drill"].cron == "0 4 1 */2 *"
    assert by_task["health"].cron == "*/10 * * * *" and by_task["health"].interval_seconds is None
    assert by_task["sla-report"].cron == "0 6 1 1,4,7,10 *"


@pytest.mark.parametrize(
    ("cron", "why"),
    [
        ("0 2 * *", "4 field(s)"),
        ("61 2 * * *", "bad minute"),
        ("0 2 * * * *", "6 field(s)"),
        ("H 2 * * *", "hashed"),
    ],
)
def test_a_bad_cron_is_refused_when_the_playbook_is_read(
    tmp_path: Path, cron: str, why: str
) -> None:
    assert why in (cron_problem(cron) or "")
    with pytest.raises(HandoverError) as refused:
        _playbook(tmp_path, operations={"schedules": {"updates": cron}})
    message = str(refused.value)
    assert "operations.schedules.updates" in message and why in message
    with pytest.raises(HandoverError, match=r"backups\.schedule"):
        _playbook(tmp_path, backups={"schedule": cron})


def test_next_runs_are_prefects_wall_clock_times_of_the_zone_across_dst(tmp_path: Path) -> None:
    """What `handover schedules show` prints is what Prefect's scheduler computes."""
    from flows.schedules import next_runs

    playbook = _playbook(tmp_path)
    report = next(s for s in task_schedules(playbook) if s.task == "sla-report")
    runs = next_runs(report, datetime(2026, 2, 15, tzinfo=UTC), 3)
    # 06:00 in Paris on each first day: 05:00 UTC in winter time, 04:00 UTC in summer time.
    assert [r.astimezone(UTC).isoformat() for r in runs] == [
        "2026-03-01T05:00:00+00:00",
        "2026-04-01T04:00:00+00:00",
        "2026-05-01T04:00:00+00:00",
    ]
    nightly = report.model_copy(update={"cron": "30 2 * * *", "task": "backups"})
    spring = next_runs(nightly, datetime(2026, 3, 28, 12, tzinfo=UTC), 2)
    # 02:30 does not exist on 29 March 2026 in Paris: Prefect runs it an hour later.
    assert [r.isoformat() for r in spring] == [
        "2026-03-29T03:30:00+02:00",
        "2026-03-30T02:30:00+02:00",
    ]
    autumn = next_runs(nightly, datetime(2026, 10, 24, 12, tzinfo=UTC), 2)
    # 02:30 happens twice on 25 October: one run only.
    assert [r.isoformat() for r in autumn] == [
        "2026-10-25T02:30:00+02:00",
        "2026-10-26T02:30:00+01:00",
    ]
    health = next(s for s in task_schedules(playbook) if s.task == "health")
    first, second = next_runs(health, datetime(2026, 3, 29, 0, 58, tzinfo=UTC), 2)
    assert second - first == timedelta(minutes=5)


# -- the record -------------------------------------------------------------------------------


def test_contracts_are_recorded_and_read_back() -> None:
    assert load_schedules() == {}
    record_schedule("acme", ScheduleRecord(playbook_path="/p/acme.yaml"))
    record_schedule("beta", ScheduleRecord(playbook_path="/p/beta.yaml", work_pool="handover"))
    record_schedule("acme", ScheduleRecord(playbook_path="/p/acme2.yaml"))
    assert load_schedules() == {
        "acme": ScheduleRecord(playbook_path="/p/acme2.yaml"),
        "beta": ScheduleRecord(playbook_path="/p/beta.yaml", work_pool="handover"),
    }
    on_disk = json.loads((handover_home() / SCHEDULES_FILE).read_text())
    assert on_disk["beta"] == {"playbook_path": "/p/beta.yaml", "work_pool": "handover"}


def test_a_record_from_the_single_nightly_run_still_reads() -> None:
    (handover_home() / SCHEDULES_FILE).write_text(
        json.dumps({"acme": {"playbook_path": "/p/acme.yaml", "cron": "0 2 * * *"}})
    )
    assert load_schedules()["acme"].playbook_path == "/p/acme.yaml"


def test_an_unreadable_schedules_file_reads_as_none() -> None:
    (handover_home() / SCHEDULES_FILE).write_text("{not json")
    assert load_schedules() == {}
