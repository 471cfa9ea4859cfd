"""The hotline quota alert reaches a real Prefect server once per contract year, and the
SLA report's clause records come from the real on-site and visit journals."""

from __future__ import annotations

import os
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from handover.checklist.audit import AuditLog
from handover.contract.playbook import Playbook
from handover.operations.clauses import QUOTA_AUDIT_EVENT, QUOTA_EVENT
from handover.operations.incidents import Incident
from handover.operations.onsite_journal import OnsiteJournal
from handover.operations.onsite_journal import journal_path as onsite_path
from handover.operations.visit_journal import VisitJournal
from handover.operations.visit_journal import journal_path as visit_path
from handover.state.layout import ContractPaths
from tasks.clauses import clauses_for_report
from tests.fixtures.prefect_server import api_headers
from tests.unit.documents_fixtures import load_test_playbook

pytestmark = pytest.mark.integration


def quota_events(contract: str, timeout_s: float = 30) -> list[dict]:
    """The quota events of `contract` on the server (events are persisted in batches)."""
    body = {
        "filter": {
            "event": {"name": [QUOTA_EVENT]},
            "resource": {"id": [f"handover.contract.{contract}"]},
            "occurred": {"since": "2000-01-01T00:00:00Z"},
        },
        "limit": 50,
    }
    deadline = time.monotonic() + timeout_s
    events: list[dict] = []
    while time.monotonic() < deadline:
        response = httpx.post(
            f"{os.environ['PREFECT_API_URL']}/events/filter", json=body, headers=api_headers()
        )
        response.raise_for_status()
        events = response.json()["events"]
        if events:
            time.sleep(2)  # a second event, if one was wrongly emitted, lands by now
            response = httpx.post(
                f"{os.environ['PREFECT_API_URL']}/events/filter",
                json=body,
                headers=api_headers(),
            )
            return list(response.json()["events"])
        time.sleep(1)
    return events


def test_the_quota_alert_is_emitted_once_and_the_journals_are_read(
    prefect_server: str, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    base = load_test_playbook(tmp_path_factory)
    contract = f"clauses-{uuid.uuid4().hex[:8]}"  # the server is shared: our events only
    services = base.services
    hotline = services.hotline.model_copy(update={"mode": "tickets", "quota": 5})
    playbook: Playbook = base.model_copy(
        update={
            "contract": base.contract.model_copy(update={"id": contract}),
            "services": services.model_copy(update={"hotline": hotline}),
        }
    )
    paths = ContractPaths(contract, contracts_root=tmp_path)
    at = datetime(2026, 3, 2, 9, tzinfo=UTC)
    OnsiteJournal(onsite_path(paths.root)).request(None, "disk", at, "ops", host="db01")
    VisitJournal(visit_path(paths.root)).log(
        date(2026, 3, 3), "Paul", "patches", "ops", date.today()
    )
    incidents = [
        Incident(id=f"T-{n}", severity="P2", summary="x", opened_at=at + timedelta(days=n))
        for n in range(4)
    ]  # 4 tickets of 5: 80 %
    as_of = at + timedelta(days=10)

    first = clauses_for_report(playbook, paths, incidents, as_of)
    clauses_for_report(playbook, paths, incidents, as_of)  # the same year: silent

    assert [i.id for i in first.interventions] == ["OS-1"]
    assert (first.onsite_source, first.visit_source) == ("onsite.jsonl", "visits.jsonl")
    assert [v.id for v in first.visits] == ["V-1"]
    audit = [e for e in AuditLog(paths.audit_log).entries() if e["event"] == QUOTA_AUDIT_EVENT]
    assert len(audit) == 1 and audit[0]["data"]["percent"] == 80.0
    events = quota_events(contract)
    assert len(events) == 1, events
    assert events[0]["payload"]["used"] == 4.0 and events[0]["payload"]["quota"] == 5
