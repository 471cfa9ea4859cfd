"""Takeover with --pin-host-keys: first-contact keys wait for a human, then get pinned."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterName,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import StateType
from prefect.flow_runs import resume_flow_run

from flows.takeover import takeover
from handover.checklist.model import Status
from handover.checklist.store import ChecklistStore
from handover.state.home import contract_dir
from tests.conftest import PROJECT_ROOT

pytestmark = pytest.mark.integration


def _playbook(tmp_path: Path, host: dict[str, Any]) -> Path:
    from handover.demo.keys import make_demo_keys

    make_demo_keys(tmp_path / ".handover" / "demo" / "keys")
    data = yaml.safe_load((PROJECT_ROOT / "playbooks" / "examples" / "demo.yaml").read_text())
    data["contract"]["id"] = "pin-keys"
    data["perimeter"]["hosts"] = [host]
    data.pop("documentation", None)  # the demo's sources name the demo's hosts
    data["perimeter"]["datasets"] = []
    data["security"]["provider_access"] = []
    path = tmp_path / "pin.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return path


def _answer_when_paused(
    name_like: str, answer: dict[str, Any], seen: dict[str, Any]
) -> threading.Thread:
    def watch() -> None:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            with get_client(sync_client=True) as client:
                runs = client.read_flow_runs(
                    flow_run_filter=FlowRunFilter(
                        name=FlowRunFilterName(like_=name_like),
                        state=FlowRunFilterState(
                            type=FlowRunFilterStateType(any_=[StateType.PAUSED])
                        ),
                    )
                )
            if runs:
                seen["paused"] = runs[0].id
                resume_flow_run(runs[0].id, run_input=answer)
                return
            time.sleep(1)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_first_contact_keys_are_pinned_once_a_human_confirms(
    tmp_path: Path, sshd_factory: Any, prefect_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    host = sshd_factory.start("pinme")
    entry = host.host_dict()
    entry.pop("host_key", None)  # nothing pinned: first contact
    playbook = _playbook(tmp_path, entry)
    known_hosts = contract_dir("pin-keys") / "known_hosts"
    assert not known_hosts.exists()

    seen: dict[str, Any] = {}
    watcher = _answer_when_paused(
        "takeover-pin-keys", {"confirmed": True, "confirmed_by": "auditor@client"}, seen
    )
    state = takeover(str(playbook), pin_host_keys=True, return_state=True)
    watcher.join(timeout=5)
    assert "paused" in seen, "the flow never waited for a human"
    assert state.is_completed(), state.message
    item = ChecklistStore().load("pin-keys", "takeover").item("hosts-reachable")
    assert item.status == Status.DONE, (item.reason, state.message)
    assert host.known_hosts_line.split(" ", 1)[1] in known_hosts.read_text()
    assert any(e.path and e.path.endswith("host-keys.json") for e in item.evidence)


def test_refused_confirmation_pins_nothing_and_fails_the_item(
    tmp_path: Path, sshd_factory: Any, prefect_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    host = sshd_factory.start("dontpin")
    entry = host.host_dict()
    entry.pop("host_key", None)
    playbook = _playbook(tmp_path, entry)
    seen: dict[str, Any] = {}
    _answer_when_paused("takeover-pin-keys", {"confirmed": False, "confirmed_by": "auditor"}, seen)
    state = takeover(str(playbook), pin_host_keys=True, return_state=True)
    assert state.is_failed()
    item = ChecklistStore().load("pin-keys", "takeover").item("hosts-reachable")
    assert item.status == Status.FAILED
    assert "not confirmed" in (item.reason or "")
    assert not (contract_dir("pin-keys") / "known_hosts").exists()
