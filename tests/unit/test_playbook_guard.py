"""The flow-side guard: deployment runs are held to the playbook folders; serve checks schedules."""

from __future__ import annotations

from pathlib import Path

import prefect.runtime.deployment
import pytest

from flows.playbook_guard import guard_playbook_path, playbook_allowed
from flows.serving import check_scheduled_playbook
from handover.contract.playbook_dirs import ENV_VAR, PlaybookOutsideFolders


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "playbooks").mkdir()
    (tmp_path / "playbooks" / "acme.yaml").write_text("contract: {}\n")
    (tmp_path / "mine.yaml").write_text("contract: {}\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(ENV_VAR, raising=False)
    return tmp_path


def as_deployment_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prefect.runtime.deployment, "id", "0000-deployment", raising=False)


def test_outside_a_deployment_run_any_playbook_goes(site: Path) -> None:
    assert prefect.runtime.deployment.id is None  # what `handover run` and the demo see
    guard_playbook_path(str(site / "mine.yaml"))  # the operator's own argument


def test_a_deployment_run_is_held_to_the_folders(
    site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    as_deployment_run(monkeypatch)
    guard_playbook_path("playbooks/acme.yaml")
    with pytest.raises(PlaybookOutsideFolders, match="outside the playbook folders"):
        guard_playbook_path(str(site / "mine.yaml"))


def test_what_names_a_run_before_the_guard_asks_without_raising(
    site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert playbook_allowed(str(site / "mine.yaml"))  # not a deployment run
    as_deployment_run(monkeypatch)
    assert playbook_allowed("playbooks/acme.yaml")
    assert not playbook_allowed(str(site / "mine.yaml"))
    assert not playbook_allowed("/dev/zero")
    assert not playbook_allowed("playbooks/../mine.yaml")


def test_the_setting_names_the_folders_a_deployment_run_may_use(
    site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    as_deployment_run(monkeypatch)
    monkeypatch.setenv(ENV_VAR, str(site))
    guard_playbook_path(str(site / "mine.yaml"))
    monkeypatch.setenv(ENV_VAR, str(site / "elsewhere"))
    with pytest.raises(PlaybookOutsideFolders):
        guard_playbook_path("playbooks/acme.yaml")


def test_serve_refuses_a_schedule_whose_playbook_is_outside(site: Path) -> None:
    check_scheduled_playbook("acme-2026", str(site / "playbooks" / "acme.yaml"))
    with pytest.raises(PlaybookOutsideFolders) as refused:
        check_scheduled_playbook("acme-2026", str(site / "mine.yaml"))
    assert str(refused.value).startswith("schedules of acme-2026: playbook ")
    assert ENV_VAR in str(refused.value)
