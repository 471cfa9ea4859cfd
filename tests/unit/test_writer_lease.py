"""The phase lease's local record (who holds it, alive or not) and the zombie automation."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from datetime import timedelta

import pytest

from flows.writer_lease import holder_alive, limit_name, process_start, wait_seconds
from flows.zombies import AUTOMATION_NAME, heartbeat_environment, zombie_automation


def test_a_holder_is_alive_only_while_its_very_process_runs() -> None:
    me = {"host": socket.gethostname(), "pid": os.getpid(), "started": process_start(os.getpid())}
    assert me["started"] is not None and holder_alive(me)
    assert not holder_alive({**me, "started": "1"})  # the pid was reused by another process
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()
    assert not holder_alive({**me, "pid": finished.pid, "started": "1"})
    assert not holder_alive({**me, "pid": "not a pid"})
    # another machine's process cannot be checked from here: its lease expires by itself
    assert holder_alive({**me, "host": "elsewhere", "pid": finished.pid})


def test_limit_names_and_the_configurable_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    assert limit_name("acme-2026", "reversibility") == "contract-acme-2026-reversibility"
    monkeypatch.setenv("HANDOVER_WRITER_WAIT_SECONDS", "5")
    assert wait_seconds() == 5
    monkeypatch.setenv("HANDOVER_WRITER_WAIT_SECONDS", "later")
    assert wait_seconds() == 120


def test_the_zombie_automation_crashes_runs_whose_heartbeats_stop() -> None:
    automation = zombie_automation(silence_s=90)
    assert automation.name == AUTOMATION_NAME
    trigger = automation.trigger
    assert trigger.after == {"prefect.flow-run.heartbeat"}  # type: ignore[union-attr]
    assert "prefect.flow-run.Completed" in trigger.expect  # type: ignore[union-attr]
    assert trigger.within == timedelta(seconds=90)  # type: ignore[union-attr]
    [action] = automation.actions
    assert action.model_dump()["state"] == "CRASHED" and action.model_dump()["force"] is True
    assert heartbeat_environment() == {"PREFECT_FLOWS_HEARTBEAT_FREQUENCY": "30"}


def test_every_handover_process_beats_as_the_automation_expects(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from flows import server

    beat = server.client_environment()["PREFECT_FLOWS_HEARTBEAT_FREQUENCY"]
    assert heartbeat_environment() == {"PREFECT_FLOWS_HEARTBEAT_FREQUENCY": beat}
    monkeypatch.setenv("HANDOVER_ZOMBIE_SILENCE_SECONDS", "10")
    assert zombie_automation().trigger.within == timedelta(seconds=45)  # type: ignore[union-attr]
