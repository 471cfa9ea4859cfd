"""`anchor_audit` and `verify_audit` inside a flow, against the real Prefect server.

The checkpoint must reach the server as the event `handover.audit.checkpoint`
(read back here through the API) and as the artifact `<contract>-audit-checkpoint`;
`verify_audit` must pass on the intact trail and fail the flow, naming the
problem, once the log's tail is cut.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

from handover.checklist.checkpoints import CheckpointFile
from handover.checklist.store import ChecklistStore
from handover.errors import AuditTrailBroken
from handover.state.installation import installation_id
from tasks.audit import CheckpointSummary, anchor_audit, verify_audit
from tests.fixtures.prefect_server import api_headers

pytestmark = pytest.mark.integration

TEMPLATE = [{"id": "inventory", "title": "Inventory", "clause": "3.1", "owner": "provider"}]


@pytest.fixture
def playbook(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefect_server: str) -> Path:
    from handover.demo.keys import make_demo_keys
    from tests.unit.documents_fixtures import write_test_playbook

    monkeypatch.chdir(tmp_path)  # the playbook names its signing key relative to here
    monkeypatch.setenv("HANDOVER_HOME", str(tmp_path / ".handover"))
    make_demo_keys(tmp_path / ".handover" / "demo" / "keys")
    return write_test_playbook(tmp_path)


@flow(name="audit-anchor-test")
def anchor_and_verify(playbook_path: str) -> CheckpointSummary:
    summary = anchor_audit(playbook_path, "takeover end")
    verify_audit(playbook_path)
    return summary


@flow(name="audit-verify-test")
def verify_only(playbook_path: str) -> None:
    verify_audit(playbook_path)


def audit_events(contract: str, timeout_s: float = 60) -> list[dict]:
    """The contract's checkpoint events, read back from the server (persisted in batches)."""
    import httpx

    body = {
        "filter": {
            "event": {"name": ["handover.audit.checkpoint"]},
            "resource": {
                "id": [f"handover.contract.{contract}"],
                # Other tests (and installations) on this server may hold the same contract id.
                "labels": {"handover.installation": installation_id()},
            },
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
            break
        time.sleep(1)
    return events


def test_checkpoint_is_published_and_a_cut_log_fails_verification(playbook: Path) -> None:
    from handover.contract.loader import load_playbook

    contract = load_playbook(playbook).contract_id
    store = ChecklistStore()
    store.open(contract, "takeover", TEMPLATE)
    store.start(contract, "takeover", "inventory", "ops")

    summary = anchor_and_verify(str(playbook))
    assert summary.seq == 2 and summary.reason == "takeover end"
    checkpoints, problems = CheckpointFile(store.checkpoints_path(contract)).read()
    assert problems == [] and [c.hash for c in checkpoints] == [summary.hash]
    assert store.audit_log(contract).entries()[-1]["event"] == "audit.checkpoint"

    events = audit_events(contract)
    assert len(events) == 1, events
    payload = events[0]["payload"]
    assert payload["seq"] == 2 and payload["hash"] == summary.hash
    assert payload["signer"] == summary.signer and payload["signer"].startswith("SHA256:")
    assert payload["signature_sha256"] == checkpoints[0].signature_sha256
    assert "signature" not in payload and "public_key" not in payload
    assert events[0]["resource"]["prefect.resource.id"] == f"handover.contract.{contract}"
    assert events[0]["resource"]["handover.installation"] == installation_id()

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[summary.artifact_key]))
        )
    assert summary.artifact_key == f"{contract}-audit-checkpoint"
    # Other tests on this server may publish under the same key (same contract id): ours is there.
    assert any(summary.hash in str(artifact.data) for artifact in artifacts), artifacts

    # Cut the tail and the checkpoints file together: the published event still tells.
    log = store.audit_log(contract).path
    log.write_bytes(log.read_bytes().splitlines(keepends=True)[0])
    store.checkpoints_path(contract).unlink()
    with pytest.raises(AuditTrailBroken) as caught:
        verify_only(str(playbook))
    message = str(caught.value)
    assert "no checkpoint: the log has 1 entries and none is signed" in message
    assert "checkpoint of " in message and "published to Prefect signed seq 2" in message
    assert "truncated: the log ends at seq 1" in message
