"""Checklists: the state machine, persistence, the audit trail, listeners and concurrency."""

from __future__ import annotations

import hashlib
import itertools
import json
import multiprocessing
import threading
from pathlib import Path
from typing import Any

import pytest

from handover.checklist.audit import AuditLog
from handover.checklist.model import (
    ALLOWED_TRANSITIONS,
    Checklist,
    ChecklistItem,
    Evidence,
    Status,
    evidence_for_file,
)
from handover.checklist.store import ChecklistStore
from handover.errors import HandoverError, InvalidTransition, UsageError
from handover.phases import Phase

C = "acme-2026"
P = Phase.TAKEOVER

TEMPLATE: list[dict[str, Any]] = [
    {
        "id": "inventory",
        "title": "Inventory every host",
        "clause": "Art. 4",
        "owner": "provider",
        "evidence_kind": "inventory",
    },
    {
        "id": "baseline-report",
        "title": "Baseline report",
        "clause": "Art. 5",
        "owner": "provider",
        "evidence_kind": "report",
    },
    {
        "id": "credentials-received",
        "title": "Credentials received",
        "clause": "Art. 6",
        "owner": "client",
        "evidence_kind": "document",
        "waived_reason": "client keeps its own credentials",
    },
]


@pytest.fixture
def store(tmp_path: Path) -> ChecklistStore:
    store = ChecklistStore(tmp_path / "contracts")
    store.open(C, P, TEMPLATE)
    return store


def _drive_to(store: ChecklistStore, item: str, status: Status) -> None:
    """Bring a pending item to `status` through legal moves."""
    if status is Status.PENDING:
        return
    if status is Status.WAIVED:
        store.waive(C, P, item, "ops", "not in scope")
        return
    store.start(C, P, item, "ops")
    if status is Status.DONE:
        store.complete(C, P, item, "ops", [Evidence(kind="report", path="r.md", sha256="a" * 64)])
    elif status is Status.FAILED:
        store.fail(C, P, item, "ops", "db01 unreachable")


def _move(store: ChecklistStore, item: str, to: Status) -> Checklist:
    if to is Status.RUNNING:
        return store.start(C, P, item, "ops")
    if to is Status.DONE:
        return store.complete(C, P, item, "ops", [])
    if to is Status.FAILED:
        return store.fail(C, P, item, "ops", "boom")
    if to is Status.WAIVED:
        return store.waive(C, P, item, "ops", "out of scope")
    return store.reopen(C, P, item, "ops", "retry")


MATRIX = [
    (a, b) for a, b in itertools.product(list(Status), list(Status)) if b is not Status.PENDING
]


@pytest.mark.parametrize(("source", "target"), MATRIX, ids=lambda s: s.value)
def test_transition_matrix(store: ChecklistStore, source: Status, target: Status) -> None:
    _drive_to(store, "inventory", source)
    assert store.load(C, P).item("inventory").status is source
    if (source, target) in ALLOWED_TRANSITIONS:
        checklist = _move(store, "inventory", target)
        assert checklist.item("inventory").status is target
        assert store.load(C, P).item("inventory").status is target
    else:
        before = (store.path(C, P)).read_bytes()
        with pytest.raises(
            InvalidTransition,
            match=rf"'inventory': cannot go from {source.value} to {target.value}",
        ):
            _move(store, "inventory", target)
        assert store.path(C, P).read_bytes() == before


def test_allowed_transitions_are_exactly_the_contract() -> None:
    assert {(a.value, b.value) for a, b in ALLOWED_TRANSITIONS} == {
        ("pending", "running"),
        ("running", "done"),
        ("running", "failed"),
        ("pending", "waived"),
        ("running", "waived"),
    }


@pytest.mark.parametrize("source", [Status.RUNNING, Status.FAILED, Status.DONE, Status.WAIVED])
def test_reopen_brings_back_to_pending_and_is_audited(
    store: ChecklistStore, source: Status
) -> None:
    _drive_to(store, "inventory", source)
    checklist = store.reopen(C, P, "inventory", "lead", "client asked for a new inventory")
    item = checklist.item("inventory")
    assert item.status is Status.PENDING
    assert item.reason == "client asked for a new inventory"
    assert item.started_at is None and item.finished_at is None
    last = store.audit_log(C).entries()[-1]
    assert last["event"] == "checklist.reopened"
    assert last["data"]["from"] == source.value and last["data"]["to"] == "pending"
    assert last["actor"] == "lead"
    assert item.evidence == []
    if source is Status.DONE:  # the evidence of the earlier run stays in the audit log
        assert last["data"]["previous_evidence"]
    store.start(C, P, "inventory", "ops")  # and it can run again


def test_reopen_of_pending_item_is_refused(store: ChecklistStore) -> None:
    with pytest.raises(
        InvalidTransition, match="'inventory': cannot reopen, it is already pending"
    ):
        store.reopen(C, P, "inventory", "ops", "why not")


def test_reopen_needs_a_reason(store: ChecklistStore) -> None:
    _drive_to(store, "inventory", Status.FAILED)
    with pytest.raises(UsageError, match="reason is required to reopen"):
        store.reopen(C, P, "inventory", "ops", "")


@pytest.mark.parametrize("reason", ["", "   "])
def test_waive_without_reason_is_refused(store: ChecklistStore, reason: str) -> None:
    with pytest.raises(UsageError, match="'inventory': a reason is required to waive it"):
        store.waive(C, P, "inventory", "ops", reason)
    assert store.load(C, P).item("inventory").status is Status.PENDING


def test_fail_records_the_reason_and_waive_records_its_reason(store: ChecklistStore) -> None:
    store.start(C, P, "inventory", "ops")
    failed = store.fail(C, P, "inventory", "ops", "web01:22: connection refused")
    assert failed.item("inventory").reason == "web01:22: connection refused"
    assert failed.item("inventory").finished_at is not None
    waived = store.waive(C, P, "baseline-report", "ops", "done by the client")
    assert waived.item("baseline-report").reason == "done by the client"
    with pytest.raises(InvalidTransition, match="from waived to running"):
        store.start(C, P, "baseline-report", "ops")
    store.reopen(C, P, "inventory", "ops", "retry")
    store.start(C, P, "inventory", "ops")
    assert store.load(C, P).item("inventory").reason is None  # cleared on start


def test_fail_without_reason_is_refused(store: ChecklistStore) -> None:
    store.start(C, P, "inventory", "ops")
    with pytest.raises(UsageError, match="reason is required to fail"):
        store.fail(C, P, "inventory", "ops", " ")


def test_complete_records_evidence_timestamps_and_actor(
    store: ChecklistStore, tmp_path: Path
) -> None:
    report = tmp_path / "baseline.md"
    report.write_text("# État des lieux\n")
    ev = evidence_for_file(report, "report", flow_run_id="run-123")
    assert ev.sha256 == hashlib.sha256(b"# \xc3\x89tat des lieux\n").hexdigest()
    store.start(C, P, "baseline-report", "flow:takeover")
    checklist = store.complete(C, P, "baseline-report", "flow:takeover", [ev])
    item = checklist.item("baseline-report")
    assert item.status is Status.DONE
    assert item.actor == "flow:takeover"
    assert item.started_at is not None and item.finished_at is not None
    assert item.started_at <= item.finished_at == item.updated_at
    assert item.evidence[0].path == str(report) and item.evidence[0].flow_run_id == "run-123"
    row = next(r for r in checklist.as_rows() if r["id"] == "baseline-report")
    assert row["evidence"] == f"baseline.md ({ev.sha256[:12]})"
    assert row["status"] == "done" and row["actor"] == "flow:takeover"
    assert set(row) >= {
        "id",
        "title",
        "status",
        "owner",
        "clause",
        "evidence",
        "updated_at",
        "actor",
    }


def test_evidence_for_missing_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(HandoverError, match=r"nope\.txt: cannot read evidence file"):
        evidence_for_file(tmp_path / "nope.txt", "document")


def test_evidence_for_large_file_streams(tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    chunk = b"x" * (1 << 20)
    with big.open("wb") as handle:
        for _ in range(5):
            handle.write(chunk)
    assert evidence_for_file(big, "snapshot").sha256 == hashlib.sha256(chunk * 5).hexdigest()


def test_open_creates_items_with_template_waivers(store: ChecklistStore) -> None:
    checklist = store.load(C, P)
    assert [i.id for i in checklist.items] == [
        "inventory",
        "baseline-report",
        "credentials-received",
    ]
    waived = checklist.item("credentials-received")
    assert waived.status is Status.WAIVED and waived.reason == "client keeps its own credentials"
    assert checklist.summary() == {
        "pending": 2,
        "running": 0,
        "done": 0,
        "failed": 0,
        "waived": 1,
        "total": 3,
    }
    assert not checklist.is_complete
    events = [e["event"] for e in store.audit_log(C).entries()]
    assert events == ["checklist.opened", "checklist.waived"]


def test_state_persists_across_store_instances_and_merges_template(tmp_path: Path) -> None:
    root = tmp_path / "contracts"
    first = ChecklistStore(root)
    first.open(C, P, TEMPLATE)
    first.start(C, P, "inventory", "run-1")
    first.complete(C, P, "inventory", "run-1", [Evidence(kind="inventory", path="web01.json")])
    first.start(C, P, "baseline-report", "run-1")
    first.fail(C, P, "baseline-report", "run-1", "template missing")

    # a second run, new process: a new store; the playbook added an item and reworded one
    second = ChecklistStore(root)
    template = [dict(t) for t in TEMPLATE]
    template[1]["title"] = "Baseline report (état des lieux)"
    template.append({"id": "documentation-collected", "title": "Documentation collected"})
    checklist = second.open(C, P, template)
    assert checklist.item("inventory").status is Status.DONE
    assert checklist.item("inventory").evidence[0].path == "web01.json"
    assert checklist.item("baseline-report").status is Status.FAILED
    assert checklist.item("baseline-report").title == "Baseline report (état des lieux)"
    assert checklist.item("documentation-collected").status is Status.PENDING
    assert checklist.item("documentation-collected").owner == "provider"

    rerun = second.prepare_rerun(C, P, "run-2")
    assert rerun.item("baseline-report").status is Status.PENDING
    assert rerun.item("inventory").status is Status.DONE
    second.start(C, P, "baseline-report", "run-2")

    third = ChecklistStore(root).load(C, P)
    assert third.item("baseline-report").status is Status.RUNNING
    assert third.item("baseline-report").actor == "run-2"
    assert third.version == second.load(C, P).version
    events = [e["event"] for e in AuditLog(root / C / "audit.log").entries()]
    assert events[-4:] == [
        "checklist.items-added",
        "checklist.items-reworded",
        "checklist.reopened",
        "checklist.running",
    ]
    assert AuditLog(root / C / "audit.log").verify() == []


def test_open_same_template_twice_writes_nothing(store: ChecklistStore) -> None:
    before = store.path(C, P).read_bytes()
    entries = len(store.audit_log(C).entries())
    store.open(C, P, TEMPLATE)
    assert store.path(C, P).read_bytes() == before
    assert len(store.audit_log(C).entries()) == entries


def test_open_waives_existing_pending_item_when_playbook_waives_it(store: ChecklistStore) -> None:
    template = [dict(t) for t in TEMPLATE]
    template[0]["waived_reason"] = "client does its own inventory"
    template[1]["waived_reason"] = "ignored: item already running"
    store.start(C, P, "baseline-report", "ops")
    checklist = store.open(C, P, template)
    assert checklist.item("inventory").status is Status.WAIVED
    assert checklist.item("inventory").actor == "playbook"
    assert checklist.item("baseline-report").status is Status.RUNNING


def test_open_reopens_an_item_when_the_playbook_drops_its_waiver(store: ChecklistStore) -> None:
    store.waive(C, P, "inventory", "lead", "decided in the steering committee")
    template = [dict(t) for t in TEMPLATE]
    del template[2]["waived_reason"]
    checklist = store.open(C, P, template)
    item = checklist.item("credentials-received")
    assert item.status is Status.PENDING
    assert item.reason == "waiver removed from the playbook"
    assert checklist.item("inventory").status is Status.WAIVED  # a person's waiver stays
    last = store.audit_log(C).entries()[-1]
    assert last["event"] == "checklist.reopened" and last["data"]["item"] == "credentials-received"
    assert store.audit_log(C).verify() == []


def test_open_rejects_duplicate_and_bad_ids(tmp_path: Path) -> None:
    store = ChecklistStore(tmp_path)
    with pytest.raises(UsageError, match="duplicate checklist item 'inventory'"):
        store.open(C, P, [TEMPLATE[0], TEMPLATE[0]])
    with pytest.raises(UsageError, match="is not a slug"):
        store.open(C, P, [{"id": "../x", "title": "t"}])
    with pytest.raises(UsageError, match="title is required"):
        store.open(C, P, [{"id": "x"}])


def test_bad_contract_and_phase_are_usage_errors(tmp_path: Path) -> None:
    store = ChecklistStore(tmp_path)
    with pytest.raises(UsageError, match=r"contract id '\.\./etc'"):
        store.open("../etc", P, TEMPLATE)
    with pytest.raises(UsageError, match="unknown phase 'exit': must be one of takeover"):
        store.open(C, "exit", TEMPLATE)


def test_load_of_unopened_checklist_names_it(tmp_path: Path) -> None:
    with pytest.raises(HandoverError, match="no reversibility checklist for contract 'acme-2026'"):
        ChecklistStore(tmp_path).load(C, Phase.REVERSIBILITY)


def test_unknown_item_names_the_known_ones(store: ChecklistStore) -> None:
    with pytest.raises(HandoverError, match=r"'nope' \(items: inventory, baseline"):
        store.start(C, P, "nope", "ops")


def test_corrupt_state_file_is_reported(store: ChecklistStore) -> None:
    store.path(C, P).write_text('{"contract": "acme-2026", "phase": "takeover", "items": 3}')
    with pytest.raises(HandoverError, match=r"takeover.json: corrupt checklist: items"):
        store.load(C, P)


def test_default_root_is_under_handover_home(tmp_path: Path) -> None:
    store = ChecklistStore()
    store.open(C, Phase.OPERATIONAL, TEMPLATE[:1])
    home = tmp_path / "handover-home"  # set by the autouse fixture
    assert (home / "contracts" / C / "checklists" / "operational.json").is_file()
    assert (home / "contracts" / C / "audit.log").is_file()


def test_writes_are_atomic_and_leave_no_temp_files(store: ChecklistStore) -> None:
    for item in ("inventory", "baseline-report"):
        store.start(C, P, item, "ops")
        store.complete(C, P, item, "ops", [])
    folder = store.path(C, P).parent
    assert sorted(p.name for p in folder.iterdir()) == ["takeover.json"]
    data = json.loads(store.path(C, P).read_text())
    assert data["version"] == 1 + 4 and data["phase"] == "takeover"
    assert store.load(C, P).is_complete


def test_failed_write_keeps_previous_state(
    store: ChecklistStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = store.path(C, P).read_bytes()

    def broken_dump(checklist: Checklist) -> bytes:
        raise OSError("disk full")

    monkeypatch.setattr("handover.checklist.store._dump", broken_dump)
    with pytest.raises(OSError, match="disk full"):
        store.start(C, P, "inventory", "ops")
    assert store.path(C, P).read_bytes() == before
    assert [p.name for p in store.path(C, P).parent.iterdir()] == ["takeover.json"]


def test_every_change_is_audited_with_a_valid_chain(store: ChecklistStore) -> None:
    store.start(C, P, "inventory", "ops")
    store.complete(
        C, P, "inventory", "ops", [Evidence(kind="inventory", path="i.json", sha256="f" * 64)]
    )
    store.waive(C, P, "baseline-report", "lead", "client's own report")
    log = store.audit_log(C)
    entries = log.entries()
    assert [e["event"] for e in entries] == [
        "checklist.opened",
        "checklist.waived",
        "checklist.running",
        "checklist.done",
        "checklist.waived",
    ]
    done = entries[3]
    assert done["data"]["evidence"] == [{"kind": "inventory", "path": "i.json", "sha256": "f" * 64}]
    assert done["data"]["from"] == "running" and done["data"]["to"] == "done"
    assert entries[4]["data"]["reason"] == "client's own report" and entries[4]["actor"] == "lead"
    assert log.verify() == []


def test_listeners_get_each_change_in_order(store: ChecklistStore) -> None:
    seen: list[tuple[str, str, str | None, int]] = []

    def listener(checklist: Checklist, item: ChecklistItem, previous: Status | None) -> None:
        seen.append(
            (item.id, item.status.value, previous.value if previous else None, checklist.version)
        )

    def broken(checklist: Checklist, item: ChecklistItem, previous: Status | None) -> None:
        raise RuntimeError("artifact API down")

    store.add_listener(broken)
    store.add_listener(listener)
    store.start(C, P, "inventory", "ops")
    store.fail(C, P, "inventory", "ops", "x")
    store.reopen(C, P, "inventory", "ops", "y")
    assert seen == [
        ("inventory", "running", "pending", 2),
        ("inventory", "failed", "running", 3),
        ("inventory", "pending", "failed", 4),
    ]
    assert store.load(C, P).item("inventory").status is Status.PENDING


def test_concurrent_updates_keep_a_valid_file_and_chain(tmp_path: Path) -> None:
    store = ChecklistStore(tmp_path)
    items = [{"id": f"item-{n}", "title": f"Item {n}"} for n in range(24)]
    store.open(C, P, items)
    other = ChecklistStore(tmp_path)  # a second store in the same process: flock serialises
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        s = store if n % 2 else other
        try:
            s.start(C, P, f"item-{n}", f"t{n}")
            if n % 3:
                s.complete(C, P, f"item-{n}", f"t{n}", [Evidence(kind="log", note=f"n={n}")])
            else:
                s.fail(C, P, f"item-{n}", f"t{n}", "planned failure")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    final = ChecklistStore(tmp_path).load(C, P)
    assert final.version == 1 + 48
    assert final.summary()["done"] == 16 and final.summary()["failed"] == 8
    assert store.audit_log(C).verify() == []
    assert len(store.audit_log(C).entries()) == 1 + 48


def _tick_items(root: str, numbers: list[int]) -> None:
    store = ChecklistStore(Path(root))
    for n in numbers:
        store.start(C, P, f"item-{n}", f"proc-{n}")
        store.complete(C, P, f"item-{n}", f"proc-{n}", [Evidence(kind="log", note=str(n))])


def test_separate_processes_updating_one_checklist_lose_nothing(tmp_path: Path) -> None:
    store = ChecklistStore(tmp_path)
    store.open(C, P, [{"id": f"item-{n}", "title": f"Item {n}"} for n in range(20)])
    ctx = multiprocessing.get_context("fork")
    procs = [
        ctx.Process(target=_tick_items, args=(str(tmp_path), list(range(k, 20, 4))))
        for k in range(4)
    ]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(60)
        assert proc.exitcode == 0
    final = store.load(C, P)
    assert final.is_complete and final.summary()["done"] == 20
    assert final.version == 1 + 40
    assert {i.evidence[0].note for i in final.items} == {str(n) for n in range(20)}
    assert store.audit_log(C).verify() == []


# -- CLI --------------------------------------------------------------------------------------


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    from tests.unit.documents_fixtures import write_test_playbook

    return write_test_playbook(tmp_path)


def _cli(*args: str) -> Any:
    from typer.testing import CliRunner

    import handover.cli.checklist_cmd  # noqa: F401  (registers the commands)
    from handover.cli import app

    return CliRunner().invoke(app, list(args), env={"COLUMNS": "160"})


def test_cli_checklist_shows_template_items_of_a_phase_never_opened(demo: Path) -> None:
    result = _cli("checklist", str(demo), "--phase", "takeover")
    assert result.exit_code == 0, result.output
    assert "not started: template items" in result.output
    assert "parties-confirmed" in result.output and "reversibility-plan" in result.output
    assert "Démo: hôtes locaux, aucun identifiant à recevoir" in result.output
    assert "takeover: 0/8 done, 1 waived, 7 pending: incomplete" in result.output
    assert not ChecklistStore().exists("demo-estate", Phase.TAKEOVER)  # showing creates nothing


def test_cli_checklist_shows_stored_state_evidence_and_reasons(demo: Path) -> None:
    from handover.contract.loader import load_playbook
    from handover.contract.playbook import phase_items

    playbook = load_playbook(demo)
    store = ChecklistStore()
    store.open("demo-estate", Phase.TAKEOVER, phase_items(playbook, "takeover"))
    store.start("demo-estate", P, "inventory", "flow:takeover")
    store.complete(
        "demo-estate",
        P,
        "inventory",
        "flow:takeover",
        [Evidence(kind="inventory", path="/x/web01.json", sha256="ab" * 32)],
    )
    store.start("demo-estate", P, "hosts-reachable", "flow:takeover")
    store.fail("demo-estate", P, "hosts-reachable", "flow:takeover", "db01: [bold]refused[/bold]")
    result = _cli("checklist", str(demo))
    assert result.exit_code == 0, result.output
    assert "takeover (version 5)" in result.output
    assert "web01.json (abababababab)" in result.output
    assert "db01: [bold]refused[/bold]" in result.output  # shown as text, not as rich markup
    assert "takeover: 1/8 done, 1 waived, 1 failed, 5 pending: incomplete" in result.output
    for phase in ("implementation", "operational", "reversibility"):
        assert f"demo-estate · {phase} (not started: template items)" in result.output


def test_cli_checklist_rejects_unknown_phase_and_bad_playbook(demo: Path, tmp_path: Path) -> None:
    result = _cli("checklist", str(demo), "--phase", "exit")
    assert result.exit_code == 2
    assert "unknown phase 'exit': must be one of takeover" in result.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("contract: {id: x}\n")
    result = _cli("checklist", str(bad))
    assert result.exit_code == 2
    assert "bad.yaml" in result.output


def test_cli_audit_prints_and_verifies_the_chain(demo: Path) -> None:
    result = _cli("audit", str(demo), "--verify")
    assert result.exit_code == 0 and "no audit log yet" in result.output
    store = ChecklistStore()
    store.open("demo-estate", P, TEMPLATE)
    store.start("demo-estate", P, "inventory", "ops@provider")
    result = _cli("audit", str(demo), "--verify")
    assert result.exit_code == 1  # a log no checkpoint vouches for could have been cut
    assert "no checkpoint: the log has 3 entries and none is signed" in result.output
    from handover.bundle.sshsig import SigningKey
    from handover.checklist.checkpoints import CheckpointFile, make_checkpoint

    key = SigningKey.generate()
    checkpoints = CheckpointFile(store.checkpoints_path("demo-estate"))
    make_checkpoint(store.audit_log("demo-estate"), key, "test", checkpoints=checkpoints)
    (demo.parent / "provider.pub").write_text(key.public_line())
    result = _cli("audit", str(demo), "--verify", "--signer", str(demo.parent / "provider.pub"))
    assert result.exit_code == 0, result.output
    assert "no audit log yet" not in result.output
    assert "checklist.opened" in result.output and "checklist.running" in result.output
    assert "4 entries, hash chain intact" in result.output
    log_path = store.audit_log("demo-estate").path
    lines = log_path.read_bytes().splitlines(keepends=True)
    lines[1] = lines[1].replace(b"playbook", b"mallory!")
    log_path.write_bytes(b"".join(lines))
    result = _cli("audit", str(log_path), "--verify")
    assert result.exit_code == 1
    assert "audit.log:2: entry edited" in result.output
    assert "audit chain NOT intact" in result.output
