"""The patching flow against a real sshd: report only, refused outside the window, applied with
versions before and after, and a failure that carries the package manager's output.

The sshd host is not a distribution: its sessions get a PATH (sshd `SetEnv`) whose first
folder holds a fake `apt-get` and `dpkg-query` that keep their state in files and log each
call. The commands are the real ones, run over SSH; only the package manager is played.
"""

from __future__ import annotations

import json
import stat
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

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

from flows.patching import PAUSE_KEY, PatchingFailed, patching
from handover.checklist.audit import AuditLog
from handover.operations.patching import PatchRecord
from handover.phases import Phase
from handover.state.layout import ContractPaths
from tests.conftest import PROJECT_ROOT
from tests.fixtures.sshd import SshdFactory, SshdHost
from tests.integration.test_alert_events import server_events

pytestmark = pytest.mark.integration

CONTRACT = "patching-test"
OLD, NEW = "3.0.11-1~deb12u1", "3.0.11-1~deb12u2"
DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")

APT_GET = """\
#!/bin/sh
STATE={state}
echo "apt-get $*" >> "$STATE/calls.log"
case " $* " in
  *" update "*) exit 0 ;;
  *" -s "*)
    [ -e "$STATE/uptodate" ] && exit 0
    echo "Inst libssl3 [$(cat "$STATE/libssl3")] ({new} Debian-Security:12/stable-security [amd64])"
    echo "Inst tzdata [2024a-0+deb12u1] (2025b-0+deb12u1 Debian:12.10/stable [all])"
    exit 0 ;;
  *" install "*)
    echo "Reading package lists..."
    if [ -e "$STATE/fail" ]; then
      echo "dpkg: error processing package libssl3 (--configure):" >&2
      echo "E: Sub-process /usr/bin/dpkg returned an error code (1)" >&2
      exit 100
    fi
    echo "Unpacking libssl3 ({new}) over ($(cat "$STATE/libssl3")) ..."
    echo "{new}" > "$STATE/libssl3"
    exit 0 ;;
esac
exit 1
"""
DPKG_QUERY = """\
#!/bin/sh
STATE={state}
echo "dpkg-query $*" >> "$STATE/calls.log"
for p in "$@"; do
  case "$p" in
    libssl3) echo "libssl3 $(cat "$STATE/libssl3")" ;;
    tzdata) echo "tzdata 2024a-0+deb12u1" ;;
  esac
done
"""


class FakeDistroSshd(SshdHost):
    """An sshd whose sessions find the fake package manager first on their PATH."""

    fakebin: Path

    def _write_config(self) -> None:
        super()._write_config()
        with self.config_path.open("a") as handle:
            handle.write(f"SetEnv PATH={self.fakebin}:/usr/sbin:/usr/bin:/sbin:/bin\n")


@pytest.fixture(scope="module")
def distro(sshd_factory: SshdFactory) -> Iterator[FakeDistroSshd]:
    workdir = sshd_factory.base / "fake-distro"
    fakebin = workdir / "fakebin"
    fakebin.mkdir(parents=True)
    for name, text in (("apt-get", APT_GET), ("dpkg-query", DPKG_QUERY)):
        script = fakebin / name
        script.write_text(text.format(state=fakebin, new=NEW))
        script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    FakeDistroSshd.fakebin = fakebin
    host = FakeDistroSshd("distro", workdir)
    host.start()
    try:
        yield host
    finally:
        host.kill()


@pytest.fixture
def state(distro: FakeDistroSshd) -> Path:
    """The fake's state, reset: libssl3 at OLD, no failure planted, no call logged."""
    folder = distro.fakebin
    (folder / "libssl3").write_text(OLD + "\n")
    for name in ("calls.log", "fail", "uptodate"):
        (folder / name).unlink(missing_ok=True)
    return folder


def _window(inside: bool) -> str:
    if inside:
        return "Mon-Sun 00:00-24:00"
    other = (datetime.now(ZoneInfo("Europe/Paris")) + timedelta(days=3)).weekday()
    return f"{DAYS[other]} 20:00-23:00"  # three days from today: never now


def _playbook(tmp_path: Path, host: SshdHost, approval: str, window: str) -> str:
    from handover.demo.keys import make_demo_keys

    make_demo_keys(tmp_path / ".handover" / "demo" / "keys")
    data: dict[str, Any] = yaml.safe_load(
        (PROJECT_ROOT / "playbooks" / "examples" / "demo.yaml").read_text()
    )
    data["contract"]["id"] = CONTRACT
    data["contract"]["timezone"] = "Europe/Paris"
    data["perimeter"]["hosts"] = [host.host_dict()]
    data["perimeter"]["datasets"] = []
    data["security"]["provider_access"] = []
    data["services"]["maintenance"]["window"] = window
    data.setdefault("operations", {})["patching"] = {"approval": approval}
    path = tmp_path / "patching.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return str(path)


def _calls(state: Path) -> list[str]:
    log = state / "calls.log"
    return log.read_text().splitlines() if log.exists() else []


def _records() -> list[PatchRecord]:
    folder = ContractPaths(CONTRACT).phase_dir(Phase.OPERATIONAL) / "patching"
    files = sorted(folder.glob("*.json"))
    return [PatchRecord.model_validate(json.loads(f.read_text())) for f in files]


def test_report_only_lists_and_never_applies(
    prefect_server: str, tmp_path: Path, distro: FakeDistroSshd, state: Path
) -> None:
    summary = patching(_playbook(tmp_path, distro, "report", _window(inside=False)))

    assert summary.outcomes == {"distro": "reported"}
    (record,) = _records()
    assert [(p.name, p.before, p.candidate) for p in record.planned] == [("libssl3", OLD, NEW)]
    assert record.before == {} and record.after == {}  # nothing was touched
    calls = _calls(state)
    assert calls and all(" -s " in f" {c} " for c in calls), calls  # simulations only
    assert (state / "libssl3").read_text().strip() == OLD


def test_outside_the_window_nothing_runs_and_the_run_fails(
    prefect_server: str, tmp_path: Path, distro: FakeDistroSshd, state: Path
) -> None:
    window = _window(inside=False)
    with pytest.raises(PatchingFailed, match="outside the maintenance window"):
        patching(_playbook(tmp_path, distro, "auto", window))

    assert _calls(state) == []  # not even asked for a plan
    (record,) = _records()
    assert record.outcome == "refused" and window in record.reason
    assert (state / "libssl3").read_text().strip() == OLD


def test_auto_in_the_window_applies_security_updates_with_versions_recorded(
    prefect_server: str, tmp_path: Path, distro: FakeDistroSshd, state: Path
) -> None:
    summary = patching(_playbook(tmp_path, distro, "auto", _window(inside=True)))

    assert summary.outcomes == {"distro": "applied"}
    (record,) = _records()
    assert record.before == {"libssl3": OLD} and record.after == {"libssl3": NEW}
    assert record.approved_by is not None and "approval: auto" in record.approved_by
    installs = [c for c in _calls(state) if " install " in f" {c} "]
    assert len(installs) == 1 and installs[0].endswith("install --only-upgrade libssl3")
    assert any(c.startswith("apt-get -q update") for c in _calls(state))  # lists refreshed first
    assert (state / "libssl3").read_text().strip() == NEW  # tzdata (not security) untouched
    audit = [e for e in AuditLog(ContractPaths(CONTRACT).audit_log).entries()]
    assert [e["event"] for e in audit if e["event"].startswith("patching.")] == ["patching.applied"]


def test_a_failed_upgrade_fails_the_run_with_the_package_managers_output(
    prefect_server: str, tmp_path: Path, distro: FakeDistroSshd, state: Path
) -> None:
    (state / "fail").touch()
    with pytest.raises(PatchingFailed, match=r"distro failed: apt exited with status 100"):
        patching(_playbook(tmp_path, distro, "auto", _window(inside=True)))

    (record,) = _records()
    assert record.outcome == "failed" and record.exit_status == 100
    assert record.output is not None and "E: Sub-process /usr/bin/dpkg" in record.output
    assert "dpkg: error processing package libssl3" in record.output
    assert record.before == record.after == {"libssl3": OLD}
    assert record.at <= datetime.now(UTC)
    events = server_events("handover.patch-failed", CONTRACT, want=1)
    assert events and events[-1]["payload"]["message"] == (
        "distro: apt exited with status 100: "
        "E: Sub-process /usr/bin/dpkg returned an error code (1)"
    )


def _answer_when_paused(answer: dict[str, Any], seen: dict[str, Any]) -> threading.Thread:
    """Resume the patching run once it waits at its approval form, with `answer`."""

    def watch() -> None:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            with get_client(sync_client=True) as client:
                runs = client.read_flow_runs(
                    flow_run_filter=FlowRunFilter(
                        name=FlowRunFilterName(like_=f"patching-{CONTRACT}-"),
                        state=FlowRunFilterState(
                            type=FlowRunFilterStateType(any_=[StateType.PAUSED])
                        ),
                    )
                )
            for run in runs:
                if run.state is not None and run.state.state_details.pause_key == PAUSE_KEY:
                    seen["paused"] = run.id
                    resume_flow_run(run.id, run_input=answer)
                    return
            time.sleep(1)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_ask_applies_once_a_named_person_approves_in_the_form(
    prefect_server: str, tmp_path: Path, distro: FakeDistroSshd, state: Path
) -> None:
    seen: dict[str, Any] = {}
    answer = {"approve": True, "by": "Alice Martin", "reason": "change CHG-1042"}
    watcher = _answer_when_paused(answer, seen)
    summary = patching(_playbook(tmp_path, distro, "ask", _window(inside=True)))
    watcher.join(timeout=5)

    assert "paused" in seen, "the run never asked"
    assert summary.outcomes == {"distro": "applied"}
    (record,) = _records()
    assert record.approved_by == "Alice Martin (form)"
    assert record.before == {"libssl3": OLD} and record.after == {"libssl3": NEW}


def test_ask_declined_applies_nothing(
    prefect_server: str, tmp_path: Path, distro: FakeDistroSshd, state: Path
) -> None:
    seen: dict[str, Any] = {}
    answer = {"approve": False, "by": "Bob", "reason": "month-end closing"}
    watcher = _answer_when_paused(answer, seen)
    summary = patching(_playbook(tmp_path, distro, "ask", _window(inside=True)))
    watcher.join(timeout=5)

    assert "paused" in seen and summary.outcomes == {"distro": "declined"}
    (record,) = _records()
    assert record.reason == "declined by Bob: month-end closing"
    assert not [c for c in _calls(state) if " install " in f" {c} "]
    assert (state / "libssl3").read_text().strip() == OLD


def test_ask_with_nothing_pending_asks_nobody(
    prefect_server: str,
    tmp_path: Path,
    distro: FakeDistroSshd,
    state: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (state / "uptodate").touch()
    monkeypatch.setenv("HANDOVER_PATCH_WAIT_SECONDS", "5")  # a wrong pause ends fast, declined
    summary = patching(_playbook(tmp_path, distro, "ask", _window(inside=True)))

    assert summary.outcomes == {"distro": "nothing to do"}
    (record,) = _records()
    assert record.reason == "no update pending" and record.approved_by is None
