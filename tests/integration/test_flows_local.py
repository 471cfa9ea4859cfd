"""The four phase flows on the demo playbook (local hosts) against a real Prefect server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterKey,
    FlowRunFilter,
    FlowRunFilterName,
    FlowRunFilterState,
    FlowRunFilterStateType,
    FlowRunFilterTags,
)
from prefect.client.schemas.objects import StateType
from prefect.flow_runs import resume_flow_run

from flows.lifecycle import pause_key, run_phase
from handover.checklist.model import Status
from handover.checklist.store import ChecklistStore
from tests.conftest import require_binary
from tests.fixtures.prefect_server import api_headers
from tests.workspace import Workspace, make_workspace

pytestmark = pytest.mark.integration

PHASES = ("takeover", "implementation", "operational", "reversibility")


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefect_server: str) -> Workspace:
    return make_workspace(tmp_path, monkeypatch)


def flow_runs(name_like: str) -> list:
    with get_client(sync_client=True) as client:
        return client.read_flow_runs(
            flow_run_filter=FlowRunFilter(name=FlowRunFilterName(like_=name_like))
        )


def artifact_versions(key: str) -> list:
    with get_client(sync_client=True) as client:
        return client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key]))
        )


def checklist_events(contract: str, timeout_s: float = 60) -> list[dict]:
    """Events about the contract's checklists, read back from the server (persisted in batches)."""
    import httpx

    body = {
        "filter": {
            "event": {"prefix": ["handover.checklist."]},
            "resource": {"id": [f"handover.contract.{contract}"]},
            "occurred": {"since": "2000-01-01T00:00:00Z"},
        },
        "limit": 50,  # the server's maximum page
    }
    deadline = time.monotonic() + timeout_s
    events: list[dict] = []
    while time.monotonic() < deadline:
        response = httpx.post(
            f"{os.environ['PREFECT_API_URL']}/events/filter", json=body, headers=api_headers()
        )
        response.raise_for_status()
        events = response.json()["events"]
        if len({e["event"] for e in events}) >= 2:
            break
        time.sleep(2)
    return events


def test_whole_lifecycle_on_local_hosts(workspace: Workspace) -> None:
    age = require_binary("age", "age")
    keygen = require_binary("ssh-keygen", "openssh-client")
    started = datetime.now(UTC)
    for phase in PHASES:
        assert run_phase(phase, workspace.playbook, auto_accept=True), f"{phase} did not complete"

    # Every checklist item done (none failed, none left pending); the operational run keeps
    # one checklist per period: the month's, and the quarter's for the drill.
    store = ChecklistStore()
    periods = store.periods(workspace.contract)
    assert len(periods) == 2 and any("-q" in name for name in periods), periods
    names = {phase: [phase] for phase in PHASES} | {"operational": periods}
    for phase in PHASES:
        for name in names[phase]:
            checklist = store.load(workspace.contract, name)
            states = {i.id: i.status for i in checklist.items}
            assert all(s == Status.DONE for s in states.values()), (name, states)
            assert all(i.evidence for i in checklist.items), name
    assert store.audit_log(workspace.contract).verify() == []
    assert store.cross_check(workspace.contract) == []

    # The server holds the four completed runs and several versions of each checklist artifact
    # (runs of this test only: the server is shared, and other tests kill runs on purpose).
    for phase in PHASES:
        runs = [
            r
            for r in flow_runs(f"{phase}-{workspace.contract}")
            if r.start_time and r.start_time >= started
        ]
        assert runs and all(r.state.is_completed() for r in runs), phase
        checklist_name = store.current(workspace.contract, phase)
        versions = artifact_versions(f"{workspace.contract}-{checklist_name}-checklist")
        assert len(versions) >= 3, (phase, len(versions))

    events = checklist_events(workspace.contract)
    kinds = {e["event"] for e in events}
    assert {"handover.checklist.running", "handover.checklist.done"} <= kinds, kinds
    assert all(
        e["resource"]["prefect.resource.id"] == "handover.contract.demo-estate" for e in events
    )

    # The delivered bundle opens with the client's standard tools.
    deliveries = workspace.home / "demo" / "deliveries"
    bundle = next(p for p in deliveries.iterdir() if p.is_dir() and not p.name.endswith(".exit"))
    subprocess.run(["sha256sum", "-c", "--quiet", "SHA256SUMS"], cwd=bundle, check=True)
    (bundle.parent / "allowed").write_text(f"provider {(bundle / 'provider.pub').read_text()}")
    with open(bundle / "SHA256SUMS", "rb") as sums:
        subprocess.run(
            [
                keygen,
                "-Y",
                "verify",
                "-f",
                str(bundle.parent / "allowed"),
                "-I",
                "provider",
                "-n",
                "handover-bundle",
                "-s",
                str(bundle / "SHA256SUMS.sig"),
            ],
            stdin=sums,
            check=True,
            capture_output=True,
        )
    volumes = sorted((bundle / "volumes").glob("*.tar.age"))
    assert len(volumes) == 4
    for volume in volumes:
        out = bundle.parent / f"open-{volume.name}"
        out.mkdir()
        dec = subprocess.Popen(
            [age, "-d", "-i", str(workspace.client_key), str(volume)], stdout=subprocess.PIPE
        )
        subprocess.run(["tar", "-x", "-C", str(out)], stdin=dec.stdout, check=True)
        assert dec.wait() == 0
        subprocess.run(["sha256sum", "-c", "--quiet", "SHA256SUMS"], cwd=out, check=True)

    # The index carries the credentials (opened with the password delivered apart).
    index = bundle.parent / "index"
    index.mkdir()
    dec = subprocess.Popen(
        [age, "-d", "-i", str(workspace.client_key), str(bundle / "index.tar.age")],
        stdout=subprocess.PIPE,
    )
    subprocess.run(["tar", "-x", "-C", str(index)], stdin=dec.stdout, check=True)
    assert dec.wait() == 0
    manifest = json.loads((index / "MANIFEST.json").read_text())
    assert set(manifest["extra"]["checklists"]) == set(PHASES)
    exit_dir = bundle.parent / f"{bundle.name}.exit"
    password = (
        subprocess.run(
            [
                age,
                "-d",
                "-i",
                str(workspace.client_key),
                str(exit_dir / "credentials-password.txt.age"),
            ],
            check=True,
            capture_output=True,
        )
        .stdout.decode()
        .strip()
    )
    from pykeepass import PyKeePass

    kdbx = PyKeePass(str(index / "credentials.kdbx"), password=password)
    assert {e.title for e in kdbx.entries} >= {
        "db01-postgres",
        "web01-admin",
        "files01-backup-operator",
    }

    # Provider access removed, copies erased with a certificate the client can verify.
    for host in ("web01", "db01", "files01"):
        keys = (
            workspace.home / "demo" / "hosts" / host / "home" / "ops" / ".ssh" / "authorized_keys"
        )
        assert "handover:demo-estate" not in keys.read_text()
    with open(exit_dir / "erasure-certificate.md", "rb") as cert:
        (exit_dir / "allowed").write_text(f"provider {(exit_dir / 'provider.pub').read_text()}")
        subprocess.run(
            [
                keygen,
                "-Y",
                "verify",
                "-f",
                str(exit_dir / "allowed"),
                "-I",
                "provider",
                "-n",
                "handover-erasure",
                "-s",
                str(exit_dir / "erasure-certificate.md.sig"),
            ],
            stdin=cert,
            check=True,
            capture_output=True,
        )
    assert not (workspace.home / "demo" / "backups" / workspace.contract).exists()
    assert not (workspace.home / "contracts" / workspace.contract / "vault.age").exists()


def test_failing_item_fails_the_flow_and_a_rerun_skips_done_items(workspace: Workspace) -> None:
    text = workspace.playbook.read_text().replace("paths: [/srv/shares]", "paths: [/srv/missing]")
    workspace.playbook.write_text(text)
    assert not run_phase("takeover", workspace.playbook)
    store = ChecklistStore()
    checklist = store.load(workspace.contract, "takeover")
    item = checklist.item("baseline-snapshot")
    assert item.status == Status.FAILED
    assert "shares" in (item.reason or "") and "missing" in (item.reason or "")
    assert checklist.item("inventory").status == Status.DONE
    done_before = checklist.item("inventory").finished_at

    # Fix the playbook and run again: the failed item is retried, done ones are kept.
    workspace.playbook.write_text(text.replace("[/srv/missing]", "[/srv/shares]"))
    assert run_phase("takeover", workspace.playbook)
    checklist = store.load(workspace.contract, "takeover")
    assert checklist.item("baseline-snapshot").status == Status.DONE
    assert checklist.item("inventory").finished_at == done_before
    events = [e["event"] for e in store.audit_log(workspace.contract).entries()]
    assert any("reopen" in e or "pending" in e for e in events), events


def test_invalid_playbook_creates_no_flow_run(workspace: Workspace, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(workspace.playbook.read_text().replace("host: db01", "host: db99"))
    before = len(flow_runs("takeover-"))
    result = subprocess.run(
        [sys.executable, "-m", "flows.cli", "run", "takeover", str(bad)],
        capture_output=True,
        text=True,
        env={**os.environ},
        cwd=workspace.root,
    )
    assert result.returncode == 2, result.stderr
    assert "bad.yaml" in result.stderr and "db99" in result.stderr
    assert len(flow_runs("takeover-")) == before


MANUAL_ITEMS = """  takeover:
    add:
      - {id: minutes-signed, title: Kick-off minutes signed, clause: "Art. 4", owner: client,
         evidence_kind: human, manual: true}
      - {id: tenant-audit, title: Tenant audit, clause: "Annexe 2", owner: provider,
         evidence_kind: report, manual: true}
"""


class ManualPeople(threading.Thread):
    """Answers the takeover's manual items: one in the form (once without details), one by CLI."""

    def __init__(self, ws: Workspace) -> None:
        super().__init__(daemon=True)
        self.ws = ws
        self.keys_seen: list[str] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            run_id = self._wait("manual-minutes-signed")
            resume_flow_run(run_id, run_input={"outcome": "done", "by": "Chair", "details": ""})
            run_id = self._wait("manual-minutes-signed-2")
            details = "Minutes signed by both parties, ref. PV-2026-001"
            resume_flow_run(
                run_id, run_input={"outcome": "done", "by": "Chair", "details": details}
            )
            self._wait("manual-tenant-audit")
            proof = self.ws.root / "tenant-audit.pdf"
            proof.write_bytes(b"%PDF-1.4 audit report\n")
            subprocess.run(
                [sys.executable, "-m", "flows.cli", "item", "done", self.ws.contract, "takeover",
                 "tenant-audit", "--evidence", str(proof), "--as", "Auditor"],
                check=True, capture_output=True, timeout=60,
            )  # fmt: skip
        except BaseException as exc:  # reported by the test
            self.error = exc

    def _wait(self, key: str, timeout_s: float = 180) -> UUID:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with get_client(sync_client=True) as client:
                runs = client.read_flow_runs(
                    flow_run_filter=FlowRunFilter(
                        tags=FlowRunFilterTags(all_=[f"contract:{self.ws.contract}"]),
                        state=FlowRunFilterState(
                            type=FlowRunFilterStateType(any_=[StateType.PAUSED])
                        ),
                    )
                )
            for run in runs:
                if pause_key(run) == key:
                    self.keys_seen.append(key)
                    return run.id
            time.sleep(0.5)
        raise AssertionError(f"the takeover never paused at {key}")


def test_manual_items_are_asked_in_a_pause_form_or_ticked_from_the_cli(
    workspace: Workspace,
) -> None:
    text = workspace.playbook.read_text()
    workspace.playbook.write_text(text.replace("  takeover: {}\n", MANUAL_ITEMS))
    people = ManualPeople(workspace)
    people.start()
    assert run_phase("takeover", workspace.playbook)
    people.join(timeout=10)
    assert people.error is None, people.error
    assert people.keys_seen == [
        "manual-minutes-signed",
        "manual-minutes-signed-2",  # the first answer said nothing of what proves it
        "manual-tenant-audit",
    ]
    checklist = ChecklistStore().load(workspace.contract, "takeover")
    assert all(item.status is Status.DONE for item in checklist.items)
    minutes = checklist.item("minutes-signed")
    assert minutes.actor == "Chair (declared in the pause form)"
    [kept] = [e.path for e in minutes.evidence]
    assert kept is not None and "PV-2026-001" in Path(kept).read_text()
    audit = checklist.item("tenant-audit")
    assert audit.actor == "Auditor"
    assert [Path(e.path or "").name for e in audit.evidence] == ["tenant-audit.pdf"]
