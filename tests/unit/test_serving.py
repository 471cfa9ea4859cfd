"""What `handover serve` serves: the phases, and per scheduled contract one deployment per
operational task on its own schedule (contracts deployed into a work pool are left to it)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from flows import serving
from handover.operations.schedules import ScheduleRecord

DEMO = Path(__file__).resolve().parents[2] / "playbooks" / "examples" / "demo.yaml"


def test_each_scheduled_contract_gets_one_deployment_per_task(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HANDOVER_PLAYBOOK_DIRS", str(DEMO.parent))
    records = {
        "demo-estate": ScheduleRecord(playbook_path=str(DEMO)),
        "in-a-pool": ScheduleRecord(playbook_path=str(DEMO), work_pool="handover"),
    }
    monkeypatch.setattr(serving, "load_schedules", lambda: records)
    served: list[Any] = []
    monkeypatch.setattr(serving, "serve", lambda *deployments, limit: served.extend(deployments))

    serving.serve_phases()

    by_name = {deployment.name: deployment for deployment in served}
    tasks = {"backups", "updates", "sla-report", "drill", "technology-watch", "health"}
    assert {"takeover", "reversibility"} | {f"demo-estate-{t}" for t in tasks} == set(by_name) - {
        "implementation",
        "operational",
        "lifecycle",
        "patching",
    }
    health = by_name["demo-estate-health"]
    assert health.parameters == {"playbook_path": str(DEMO.resolve())}
    [schedule_of_health] = health.schedules
    assert schedule_of_health.schedule.interval == timedelta(minutes=5)
    report = by_name["demo-estate-sla-report"]
    [cron] = report.schedules
    assert (cron.schedule.cron, cron.schedule.timezone) == ("0 6 1 * *", "Europe/Paris")
    assert report.flow_name == "operational-sla-report"
    assert report.tags == ["contract:demo-estate", "phase:operational"]
    assert report.work_pool_name is None  # served here, not by a pool's workers


def test_a_schedule_outside_the_playbook_folders_stops_serve(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from handover.contract.playbook_dirs import PlaybookOutsideFolders

    monkeypatch.setenv("HANDOVER_PLAYBOOK_DIRS", str(tmp_path))
    records = {"demo-estate": ScheduleRecord(playbook_path=str(DEMO))}
    monkeypatch.setattr(serving, "load_schedules", lambda: records)
    monkeypatch.setattr(serving, "serve", lambda *deployments, limit: None)
    with pytest.raises(PlaybookOutsideFolders, match="schedules of demo-estate"):
        serving.serve_phases()


def test_the_implementation_phase_redeploys_into_the_pool_chosen_before(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from flows import schedules

    calls: list[tuple[str | None, str | None]] = []

    def deploy(playbook_path: str, *, pool: str | None, workdir: str | None) -> list[Any]:
        calls.append((pool, workdir))
        return []

    monkeypatch.setattr(schedules, "deploy_schedules", deploy)
    monkeypatch.setattr(schedules, "load_schedules", lambda: {})
    schedules.deploy_operational_schedules.fn(str(DEMO))
    record = ScheduleRecord(playbook_path=str(DEMO), work_pool="handover")
    monkeypatch.setattr(schedules, "load_schedules", lambda: {"demo-estate": record})
    schedules.deploy_operational_schedules.fn(str(DEMO))
    assert calls == [(None, None), ("handover", str(Path.cwd()))]


def test_a_pool_deployment_names_its_module_and_working_directory() -> None:
    from flows.schedules import task_deployment
    from handover.operations.schedules import TaskSchedule

    drill = TaskSchedule(
        task="drill", cron="0 3 15 2,5,8,11 *", timezone="Europe/Paris", items=("x",)
    )
    pooled = task_deployment(
        "acme", "/srv/h/playbooks/acme.yaml", drill, pool="p", workdir="/srv/h"
    )
    assert pooled.entrypoint == "flows.operational_tasks.operational_drill"
    assert pooled.job_variables == {"working_dir": "/srv/h"} and pooled.work_pool_name == "p"
    served = task_deployment("acme", "/srv/h/playbooks/acme.yaml", drill)
    assert served.work_pool_name is None and not served.job_variables
    assert served.parameters == {"playbook_path": "/srv/h/playbooks/acme.yaml"}
