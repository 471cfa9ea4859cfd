"""Signed checkpoints, the torn-tail repair and the checklist/log cross-check.

Each failure case is made the way it would happen (a tail cut off, a chain
recomputed after an edit, checkpoints deleted, a signature forged, a write
torn by a full disk, a checklist that disagrees with its log) and must be
reported saying which.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from handover.bundle.sshsig import SigningKey
from handover.checklist.audit import GENESIS, AuditLog, canonical_json, entry_hash
from handover.checklist.checkpoints import (
    CHECKPOINT_EVENT,
    NAMESPACE,
    CheckpointFile,
    check_checkpoints,
    check_published,
    make_checkpoint,
    verify_against_checkpoints,
)
from handover.checklist.model import Evidence, Status
from handover.checklist.store import ChecklistStore
from handover.checklist.trail import SELF_ASSERTED, verify_trail
from handover.errors import AuditError, AuditTornTail, HandoverError

C = "acme-2026"
P = "takeover"
TEMPLATE = [
    {"id": "inventory", "title": "Inventory", "clause": "3.1", "owner": "provider"},
    {"id": "baseline", "title": "Baseline", "clause": "3.2", "owner": "provider"},
    {"id": "keys", "title": "Keys", "clause": "3.3", "owner": "client", "waived_reason": "n/a"},
]


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return SigningKey.generate()


@pytest.fixture
def store(tmp_path: Path) -> ChecklistStore:
    return ChecklistStore(tmp_path / "contracts")


def _log(tmp_path: Path, n: int) -> AuditLog:
    folder = tmp_path / "contracts" / C
    log = AuditLog(folder / "audit.log")
    for i in range(n):
        log.append("step", "ops", contract=C, i=i)
    return log


def _lines(log: AuditLog) -> list[bytes]:
    return log.path.read_bytes().splitlines(keepends=True)


def _checkpoints(log: AuditLog) -> list[Any]:
    checkpoints, problems = CheckpointFile.beside(log).read()
    assert problems == []
    return checkpoints


# -- checkpoints --------------------------------------------------------------------------


def test_checkpoint_signs_the_head_and_is_kept_in_and_outside_the_log(
    tmp_path: Path, key: SigningKey
) -> None:
    log = _log(tmp_path, 5)
    head = log.entries()[-1]
    checkpoint = make_checkpoint(log, key, "takeover end", actor="ops@provider")
    assert (checkpoint.contract, checkpoint.seq, checkpoint.hash) == (C, 5, head["hash"])
    assert checkpoint.signer == key.fingerprint() and checkpoint.reason == "takeover end"
    assert _checkpoints(log) == [checkpoint]
    assert CheckpointFile.beside(log).path == tmp_path / "contracts" / C / (
        "audit-checkpoints.jsonl"
    )
    recorded = log.entries()[-1]
    assert recorded["seq"] == 6 and recorded["event"] == CHECKPOINT_EVENT
    assert recorded["data"]["seq"] == 5 and recorded["data"]["signature"] == checkpoint.signature
    assert log.verify() == []
    check = check_checkpoints(log, [checkpoint], key.public_line(), contract=C)
    assert check.problems == [] and check.latest == checkpoint
    assert check.unsigned_after == 0  # the checkpoint's own entry is not counted
    log.append("later", "ops", contract=C)
    assert check_checkpoints(log, [checkpoint], key.public_line()).unsigned_after == 1


def test_a_client_checks_a_checkpoint_with_ssh_keygen(tmp_path: Path, key: SigningKey) -> None:
    keygen = shutil.which("ssh-keygen")
    if keygen is None:
        pytest.fail("ssh-keygen not found: install openssh-client")
    log = _log(tmp_path, 2)
    checkpoint = make_checkpoint(log, key, "takeover end")
    (tmp_path / "allowed").write_text(f"provider {key.public_line()}\n")
    (tmp_path / "cp.sig").write_text(checkpoint.signature)
    ok = subprocess.run(
        [
            *(keygen, "-Y", "verify", "-f", str(tmp_path / "allowed"), "-I", "provider"),
            *("-n", NAMESPACE, "-s", str(tmp_path / "cp.sig")),
        ],
        input=checkpoint.signed_bytes(),
        capture_output=True,
    )
    assert ok.returncode == 0, ok.stderr


def test_empty_log_and_blank_reason_are_refused(tmp_path: Path, key: SigningKey) -> None:
    log = AuditLog(tmp_path / "contracts" / C / "audit.log")
    with pytest.raises(AuditError, match="nothing to checkpoint"):
        make_checkpoint(log, key, "takeover end")
    log.append("x", "ops")
    with pytest.raises(AuditError, match="needs a reason"):
        make_checkpoint(log, key, "  ")


def test_truncated_tail_is_reported_with_the_checkpoint_that_signed_it(
    tmp_path: Path, key: SigningKey
) -> None:
    log = _log(tmp_path, 8)
    checkpoint = make_checkpoint(log, key, "takeover end")
    lines = _lines(log)
    log.path.write_bytes(b"".join(lines[:5]))  # cut after entry 5, checkpoint entry gone too
    assert log.verify() == []  # the chain alone cannot see it
    problems = verify_against_checkpoints(log, _checkpoints(log), key.public_line())
    assert problems == [
        f"truncated: the log ends at seq 5 but {checkpoint.label()} signed seq 8"
    ], problems
    assert "checkpoint of 20" in problems[0] and "(takeover end)" in problems[0]


def _recompute(lines: list[bytes], edit_seq: int) -> list[bytes]:
    """Edit entry `edit_seq` and rebuild the whole chain, as a careful forger would."""
    out: list[bytes] = []
    prev = GENESIS
    for line in lines:
        entry = json.loads(line)
        if entry["seq"] == edit_seq:
            entry["actor"] = "mallory"
        entry["prev"] = prev
        entry["hash"] = entry_hash(entry)
        prev = entry["hash"]
        out.append(canonical_json(entry) + b"\n")
    return out


def test_recomputed_chain_after_an_edit_is_reported_as_rewritten(
    tmp_path: Path, key: SigningKey
) -> None:
    log = _log(tmp_path, 3)
    first = make_checkpoint(log, key, "takeover end")  # signs seq 3
    for i in range(4):
        log.append("run", "ops", contract=C, i=i)
    second = make_checkpoint(log, key, "implementation end")  # signs seq 8
    log.path.write_bytes(b"".join(_recompute(_lines(log), edit_seq=6)))
    assert log.verify() == []
    problems = verify_against_checkpoints(log, _checkpoints(log), key.public_line())
    assert problems == [
        f"rewritten: entry 8 hash differs from the one {second.label()} signed "
        f"(after seq 3, which {first.label()} still matches)"
    ], problems


def test_deleted_checkpoints_are_reported(tmp_path: Path, key: SigningKey) -> None:
    log = _log(tmp_path, 4)
    make_checkpoint(log, key, "takeover end")
    CheckpointFile.beside(log).path.unlink()
    problems = verify_against_checkpoints(log, _checkpoints(log), key.public_line())
    assert problems[0] == "no checkpoint: the log has 5 entries and none is signed"
    assert problems[1].startswith("checkpoint missing: log entry 5 records the checkpoint of ")
    assert "(takeover end) for seq 4, which the checkpoints file does not hold" in problems[1]
    assert len(problems) == 2


def test_log_without_any_checkpoint_is_reported(tmp_path: Path, key: SigningKey) -> None:
    log = _log(tmp_path, 3)
    assert verify_against_checkpoints(log, [], key.public_line()) == [
        "no checkpoint: the log has 3 entries and none is signed"
    ]
    assert verify_against_checkpoints(AuditLog(tmp_path / "none.log"), [], "") == []


def test_forged_or_edited_checkpoints_fail_their_signature(tmp_path: Path, key: SigningKey) -> None:
    log = _log(tmp_path, 6)
    genuine = make_checkpoint(log, key, "takeover end")
    # Moved back to seq 3 to excuse a cut: the signature no longer covers the fields.
    edited = genuine.model_copy(update={"seq": 3, "hash": log.entries()[2]["hash"]})
    problems = verify_against_checkpoints(log, [edited], key.public_line())
    assert problems[0].startswith(f"checkpoint signature invalid: {edited.label()}, seq 3: ")
    assert "does not match" in problems[0]
    # Re-signed by another key: refused against the provider's key.
    mallory = SigningKey.generate()
    forged = make_checkpoint(
        log, mallory, "takeover end", checkpoints=CheckpointFile(tmp_path / "x")
    )
    problems = verify_against_checkpoints(log, [genuine, forged], key.public_line())
    assert len(problems) == 1 and "checkpoint signature invalid" in problems[0]
    assert "another key" in problems[0]
    # And a checkpoint of another contract is not one of this contract's.
    other = AuditLog(tmp_path / "contracts" / "other-co" / "audit.log")
    other.append("x", "ops")
    foreign = make_checkpoint(other, key, "takeover end")
    check = check_checkpoints(log, [foreign], key.public_line(), contract=C)
    assert check.problems[0].startswith("checkpoint of another contract:")


def test_published_head_catches_a_log_rewritten_with_its_checkpoints(
    tmp_path: Path, key: SigningKey
) -> None:
    log = _log(tmp_path, 4)
    published = make_checkpoint(log, key, "takeover end")
    assert check_published(log, published.seq, published.hash, "the published one") == []
    log.path.write_bytes(b"".join(_recompute(_lines(log), edit_seq=2)))
    assert check_published(log, published.seq, published.hash, "the published one") == [
        "rewritten: entry 4 hash differs from the one the published one signed"
    ]
    log.path.write_bytes(b"".join(_lines(log)[:2]))
    assert check_published(log, 4, published.hash, "P")[0].startswith(
        "truncated: the log ends at seq 2 but P signed seq 4"
    )


# -- torn last line -----------------------------------------------------------------------


def test_torn_line_blocks_appends_is_reported_and_repaired(tmp_path: Path) -> None:
    log = _log(tmp_path, 3)
    torn = b'{"seq":4,"at":"2026-02-01T09:00'  # a write cut short by a full disk
    with log.path.open("ab") as handle:
        handle.write(torn)
    with pytest.raises(AuditTornTail, match=r"audit.log:4: last line is torn \(31 bytes"):
        log.append("after", "ops")
    problems = log.verify()
    assert len(problems) == 1
    assert "audit.log:4: torn last line (31 bytes without a newline" in problems[0]
    assert "handover audit CONTRACT --repair" in problems[0]

    repair = log.repair("ops@provider")
    assert repair is not None
    assert repair.moved_to.read_bytes() == torn  # kept, not deleted
    assert repair.moved_to.name.startswith("audit.log.torn-")
    assert repair.entry["event"] == "audit.repaired" and repair.entry["seq"] == 4
    assert repair.entry["data"] == {
        "line": 4,
        "offset": sum(len(line) for line in _lines(log)[:3]),
        "bytes_removed": 31,
        "sha256": hashlib.sha256(torn).hexdigest(),
        "moved_to": repair.moved_to.name,
    }
    assert log.verify() == []
    assert log.append("after", "ops")["seq"] == 5
    assert log.repair("ops") is None  # nothing torn any more


def test_a_log_that_is_one_torn_line_and_a_whole_bad_line(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.log")
    log.path.write_bytes(b"\x00\x00\x00")
    repair = log.repair("ops")
    assert repair is not None and repair.torn.offset == 0 and repair.entry["seq"] == 1
    assert log.verify() == []
    with log.path.open("ab") as handle:
        handle.write(b"{edited}\n")  # whole line: an edit, not a tear
    assert log.torn_tail() is None
    with pytest.raises(HandoverError, match="last line is not a JSON audit entry"):
        log.repair("ops")


def test_an_entry_that_only_lost_its_newline_is_not_torn(tmp_path: Path) -> None:
    log = _log(tmp_path, 2)
    log.path.write_bytes(log.path.read_bytes().rstrip(b"\n"))
    assert log.torn_tail() is None and log.verify() == []


# -- the checklists against the log ---------------------------------------------------------


def _run(store: ChecklistStore) -> None:
    store.open(C, P, TEMPLATE)
    store.start(C, P, "inventory", "flow:takeover")
    store.complete(C, P, "inventory", "flow:takeover", [Evidence(kind="report", note="n")])
    store.start(C, P, "baseline", "flow:takeover")


def test_checklists_agree_with_their_log(store: ChecklistStore) -> None:
    _run(store)
    store.reopen(C, P, "keys", "lead", "the client sent keys after all")
    assert store.cross_check(C) == []
    last = store.audit_log(C).entries()[-1]
    assert last["data"]["version"] == store.load(C, P).version
    assert last["data"]["changed_at"] == store.load(C, P).item("keys").updated_at.isoformat()


def test_checklist_edited_behind_the_log_is_reported(store: ChecklistStore) -> None:
    _run(store)
    path = store.path(C, P)
    state = json.loads(path.read_text())
    baseline = next(i for i in state["items"] if i["id"] == "baseline")
    baseline["status"], baseline["actor"] = "done", "mallory"
    path.write_text(json.dumps(state))
    problems = store.cross_check(C)
    assert len(problems) == 1, problems
    assert problems[0].startswith(
        f"{C}/{P}/baseline: checklist says done by mallory, the audit log's last entry for it "
        "(seq 5) says running by flow:takeover"
    )


def test_old_checklist_restored_and_unlogged_item_are_reported(store: ChecklistStore) -> None:
    store.open(C, P, TEMPLATE)
    old = store.path(C, P).read_bytes()
    _run(store)
    store.path(C, P).write_bytes(old)
    problems = store.cross_check(C)
    assert f"{C}/{P}: checklist version 1 is behind the audit log's (version 4)" in problems[0]
    assert any(p.startswith(f"{C}/{P}/inventory: checklist says pending") for p in problems)
    state = json.loads(old)
    state["items"].append({**state["items"][0], "id": "ghost"})
    store.path(C, P).write_text(json.dumps(state))
    assert any(
        "ghost: checklist says pending by playbook, but the audit log never" in p
        for p in store.cross_check(C)
    )


def test_time_mismatch_is_reported(store: ChecklistStore) -> None:
    _run(store)
    path = store.path(C, P)
    state = json.loads(path.read_text())
    state["items"][0]["updated_at"] = "2020-01-01T00:00:00Z"
    path.write_text(json.dumps(state))
    problems = store.cross_check(C)
    assert (
        len(problems) == 1
        and "inventory: checklist says done by flow:takeover at 2020" in (problems[0])
    )


class Crash(BaseException):
    """A kill at a chosen point: not an Exception, so no handler cleans up after it."""


def test_crash_after_the_audit_entry_is_rolled_forward_on_load(
    store: ChecklistStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.open(C, P, TEMPLATE)
    import handover.checklist.local_store as store_module  # writes the checklist files

    real = store_module.write_atomic

    def crash_on_checklist(path: Path, data: bytes, mode: int = 0o644) -> None:
        if path.suffix == ".json":
            raise Crash
        real(path, data, mode)

    monkeypatch.setattr(store_module, "write_atomic", crash_on_checklist)
    with pytest.raises(Crash):
        store.start(C, P, "inventory", "flow:takeover")
    monkeypatch.setattr(store_module, "write_atomic", real)
    assert store.pending_path(C, P).exists()
    assert "waits in takeover.json.pending" in store.cross_check(C)[0]
    entries = len(store.audit_log(C).entries())
    fresh = ChecklistStore(store.root)  # another process, after the crash
    assert fresh.load(C, P).item("inventory").status is Status.RUNNING
    assert not store.pending_path(C, P).exists()
    assert len(store.audit_log(C).entries()) == entries  # the entry was there: no duplicate
    assert fresh.cross_check(C) == [] and store.audit_log(C).verify() == []


def test_crash_before_the_audit_entry_appends_it_on_load(
    store: ChecklistStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(*args: Any, **kwargs: Any) -> None:
        raise Crash

    monkeypatch.setattr(AuditLog, "append", crash)
    with pytest.raises(Crash):
        store.open(C, P, TEMPLATE)
    monkeypatch.undo()
    assert not store.path(C, P).exists() and not store.audit_log(C).path.exists()
    assert ChecklistStore(store.root).exists(C, P)  # rolled forward: state and entries
    events = [e["event"] for e in store.audit_log(C).entries()]
    assert events == ["checklist.opened", "checklist.waived"]
    assert store.cross_check(C) == []


def test_a_log_that_refuses_the_entry_leaves_the_checklist_unchanged(
    store: ChecklistStore,
) -> None:
    store.open(C, P, TEMPLATE)
    with store.audit_log(C).path.open("ab") as handle:
        handle.write(b'{"seq":9')
    with pytest.raises(AuditTornTail):
        store.start(C, P, "inventory", "flow:takeover")
    assert not store.pending_path(C, P).exists()
    assert store.load(C, P).item("inventory").status is Status.PENDING
    assert store.audit_log(C).repair("ops") is not None
    store.start(C, P, "inventory", "flow:takeover")
    assert store.cross_check(C) == []


def test_damaged_pending_record_is_refused_not_guessed(store: ChecklistStore) -> None:
    store.open(C, P, TEMPLATE)
    store.pending_path(C, P).write_text('{"state": "x", "state_sha256": "0", "entries": []}')
    with pytest.raises(HandoverError, match="does not match its own hash"):
        store.load(C, P)


# -- the whole trail ------------------------------------------------------------------------


def test_trail_report_names_the_key_it_trusted(store: ChecklistStore, key: SigningKey) -> None:
    _run(store)
    make_checkpoint(
        store.audit_log(C),
        key,
        "takeover end",
        checkpoints=CheckpointFile(store.checkpoints_path(C)),
    )
    trusted = verify_trail(store, C, key.public_line(), "--signer provider.pub")
    assert trusted.intact and trusted.key_source == "--signer provider.pub"
    assert trusted.checkpoint_check.latest is not None
    assert trusted.checkpoint_check.latest.seq == 5
    self_asserted = verify_trail(store, C, None, "")
    assert self_asserted.intact and self_asserted.key_source == SELF_ASSERTED
    wrong = verify_trail(store, C, SigningKey.generate().public_line(), "--signer other.pub")
    assert not wrong.intact and "checkpoint signature invalid" in wrong.problems[0]


# -- handover audit ---------------------------------------------------------------------------


def _cli(*args: str) -> Any:
    from typer.testing import CliRunner

    import handover.cli.checklist_cmd  # noqa: F401  (registers the commands)
    from handover.cli import app

    return CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})


@pytest.fixture
def signed(tmp_path: Path, key: SigningKey) -> tuple[ChecklistStore, Path]:
    """A contract in the test's home: a run, a checkpoint, and the provider's .pub."""
    store = ChecklistStore()
    _run(store)
    make_checkpoint(
        store.audit_log(C),
        key,
        "takeover end",
        checkpoints=CheckpointFile(store.checkpoints_path(C)),
    )
    pub = tmp_path / "provider.pub"
    pub.write_text(key.public_line() + "\n")
    return store, pub


def test_cli_verify_passes_and_names_the_checkpoint(signed: tuple[ChecklistStore, Path]) -> None:
    store, pub = signed
    log = str(store.audit_log(C).path)
    result = _cli("audit", log, "--verify", "--signer", str(pub))
    assert result.exit_code == 0, result.output
    assert "checked against the checkpoint of " in result.output
    assert "(takeover end): seq 5" in result.output
    assert f"signer key: --signer {pub}" in result.output
    assert "6 entries, hash chain intact" in result.output
    result = _cli("audit", log, "--verify")
    assert result.exit_code == 0 and "self-asserted" in result.output


def test_cli_verify_fails_on_a_cut_tail(signed: tuple[ChecklistStore, Path]) -> None:
    store, pub = signed
    path = store.audit_log(C).path
    path.write_bytes(b"".join(path.read_bytes().splitlines(keepends=True)[:3]))
    result = _cli("audit", str(path), "--verify", "--signer", str(pub))
    assert result.exit_code == 1
    assert "truncated: the log ends at seq 3 but checkpoint of" in result.output
    assert "audit trail NOT intact" in result.output


def test_cli_verify_fails_on_a_recomputed_chain(signed: tuple[ChecklistStore, Path]) -> None:
    store, pub = signed
    path = store.audit_log(C).path
    path.write_bytes(b"".join(_recompute(path.read_bytes().splitlines(keepends=True), 2)))
    result = _cli("audit", str(path), "--verify", "--signer", str(pub))
    assert result.exit_code == 1
    assert "rewritten: entry 5 hash differs from the one checkpoint of" in result.output


def test_cli_verify_fails_without_checkpoint_and_on_a_checklist_mismatch(
    signed: tuple[ChecklistStore, Path],
) -> None:
    store, pub = signed
    store.checkpoints_path(C).unlink()
    state = json.loads(store.path(C, P).read_text())
    state["items"][0]["actor"] = "mallory"
    store.path(C, P).write_text(json.dumps(state))
    result = _cli("audit", str(store.audit_log(C).path), "--verify", "--signer", str(pub))
    assert result.exit_code == 1
    assert "no checkpoint: the log has 6 entries and none is signed" in result.output
    assert "checkpoint missing: log entry 6 records the checkpoint" in result.output
    assert f"{C}/{P}/inventory: checklist says done by mallory" in result.output


def test_cli_torn_tail_is_reported_then_repaired(signed: tuple[ChecklistStore, Path]) -> None:
    store, pub = signed
    path = store.audit_log(C).path
    with path.open("ab") as handle:
        handle.write(b'{"seq":7,"at"')
    result = _cli("audit", str(path), "--verify", "--signer", str(pub))
    assert result.exit_code == 1
    assert "audit.log:7: torn last line (13 bytes" in result.output
    assert "--repair" in result.output
    result = _cli("audit", str(path))  # plain listing still works and says it
    assert result.exit_code == 0 and "torn last line (13 bytes)" in result.output
    result = _cli("audit", str(path), "--repair", "--verify", "--signer", str(pub))
    assert result.exit_code == 0, result.output
    assert "moved 13 torn bytes" in result.output and "recorded as entry 7" in result.output
    kept = list(path.parent.glob("audit.log.torn-*"))
    assert len(kept) == 1 and kept[0].read_bytes() == b'{"seq":7,"at"'


def test_cli_trusts_the_playbook_signing_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from handover.demo.keys import make_demo_keys
    from tests.unit.documents_fixtures import write_test_playbook

    monkeypatch.chdir(tmp_path)
    keys = make_demo_keys(tmp_path / ".handover" / "demo" / "keys")
    playbook = write_test_playbook(tmp_path)
    from handover.contract.loader import load_playbook

    contract = load_playbook(playbook).contract_id
    store = ChecklistStore()
    store.open(contract, P, TEMPLATE)
    result = _cli("audit", str(playbook), "--verify")
    assert result.exit_code == 1
    assert "no checkpoint: the log has 2 entries and none is signed" in result.output
    make_checkpoint(
        store.audit_log(contract),
        SigningKey.load(keys.signing_key),
        "takeover end",
        checkpoints=CheckpointFile(store.checkpoints_path(contract)),
    )
    result = _cli("audit", str(playbook), "--verify")
    assert result.exit_code == 0, result.output
    assert "signer key: the playbook's signing key (file:.handover/demo/keys/provider-signing)" in (
        result.output
    )
