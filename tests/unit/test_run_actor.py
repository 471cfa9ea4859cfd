"""Who a flow run acts as: the declared operator, the schedule, else the login."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

import tasks.runtime as runtime


class FakeClient:
    def __init__(self, auto_scheduled: bool) -> None:
        self.auto_scheduled = auto_scheduled
        self.reads = 0

    def __enter__(self) -> FakeClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    def read_flow_run(self, run_id: Any) -> SimpleNamespace:
        self.reads += 1
        return SimpleNamespace(auto_scheduled=self.auto_scheduled)


@pytest.fixture
def in_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HANDOVER_ACTOR", raising=False)
    monkeypatch.setattr(runtime, "flow_run_id", lambda: "0b7b6b4e-5b1e-4d7e-9d0e-3f1f2a8f9c01")
    runtime._scheduled_runs.clear()


def test_scheduled_run_acts_as_the_schedule(in_run: None, monkeypatch: pytest.MonkeyPatch) -> None:
    client = FakeClient(auto_scheduled=True)
    monkeypatch.setattr(runtime, "get_client", lambda sync_client: client)
    monkeypatch.setenv("PREFECT__RUNTIME__DEPLOYMENT__NAME", "operational-acme")
    assert runtime.run_actor() == "schedule (operational-acme)"
    assert runtime.run_actor() == "schedule (operational-acme)"
    assert client.reads == 1  # asked once per run


def test_declared_operator_wins_and_a_manual_run_is_the_login(
    in_run: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runtime, "get_client", lambda sync_client: FakeClient(False))
    assert runtime.run_actor() == runtime.actor()
    assert "@" in runtime.run_actor()
    monkeypatch.setenv("HANDOVER_ACTOR", "Claire Martin")
    assert runtime.run_actor() == "Claire Martin"
