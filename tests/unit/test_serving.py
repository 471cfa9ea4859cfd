"""What `handover serve` serves: the phases, and per scheduled contract its nightly run and
its health samples every five minutes."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from flows import serving
from handover.operations.schedules import BackupSchedule


def test_each_scheduled_contract_gets_its_nightly_run_and_its_health_deployment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    playbook = tmp_path / "playbooks" / "acme.yaml"
    playbook.parent.mkdir()
    playbook.write_text("contract: {id: acme-2026}\n")
    monkeypatch.setenv("HANDOVER_PLAYBOOK_DIRS", str(playbook.parent))
    schedule = BackupSchedule(playbook_path=str(playbook), cron="0 2 * * *")
    monkeypatch.setattr(serving, "load_schedules", lambda: {"acme-2026": schedule})
    served: list[Any] = []
    monkeypatch.setattr(serving, "serve", lambda *deployments, limit: served.extend(deployments))

    serving.serve_phases()

    by_name = {deployment.name: deployment for deployment in served}
    assert {"takeover", "reversibility", "acme-2026-scheduled", "acme-2026-health"} <= set(by_name)
    health = by_name["acme-2026-health"]
    assert health.parameters == {"playbook_path": str(playbook.resolve())}
    [schedule_of_health] = health.schedules
    assert schedule_of_health.schedule.interval == timedelta(minutes=5)
    assert "contract:acme-2026" in health.tags
