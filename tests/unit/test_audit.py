"""The hash-chained audit log: appends, chain verification, tamper detection, concurrency."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from handover.checklist.audit import GENESIS, AuditLog, canonical_json, entry_hash
from handover.errors import HandoverError


def test_first_entry_chains_on_genesis_and_numbers_from_one(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.log")
    first = log.append("checklist.opened", "ops@provider", contract="acme-2026", items=["a"])
    second = log.append("checklist.running", "ops@provider", item="a")
    assert first["seq"] == 1 and first["prev"] == GENESIS
    assert second["seq"] == 2 and second["prev"] == first["hash"]
    assert first["data"] == {"contract": "acme-2026", "items": ["a"]}
    assert first["at"].endswith("+00:00")
    assert log.entries() == [first, second]
    assert log.verify() == []


def test_hash_is_sha256_of_canonical_entry_without_hash(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.log")
    entry = log.append("e", "me", path=Path("/srv/x"), n=3)
    body = {k: v for k, v in entry.items() if k != "hash"}
    expected = hashlib.sha256(
        json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    ).hexdigest()
    assert entry["hash"] == expected == entry_hash(entry)
    assert entry["data"]["path"] == "/srv/x"
    line = (tmp_path / "audit.log").read_bytes()
    assert line == canonical_json(entry) + b"\n"


def test_jq_and_sha256sum_reproduce_the_hash(tmp_path: Path) -> None:
    jq = shutil.which("jq")
    if jq is None:
        pytest.fail("jq not found: install it with `apt-get install -y jq`")
    log = AuditLog(tmp_path / "audit.log")
    entry = log.append("checklist.done", "ops", item="inventory", sha256="ab" * 32, count=12)
    out = subprocess.run(
        [jq, "-cjS", "del(.hash)", str(tmp_path / "audit.log")], capture_output=True, check=True
    ).stdout
    assert hashlib.sha256(out).hexdigest() == entry["hash"]


def test_verify_of_missing_log_is_clean(tmp_path: Path) -> None:
    assert AuditLog(tmp_path / "none.log").verify() == []
    assert AuditLog(tmp_path / "none.log").entries() == []


def _three(tmp_path: Path) -> tuple[AuditLog, list[bytes]]:
    log = AuditLog(tmp_path / "audit.log")
    for i in range(3):
        log.append("step", "ops", i=i)
    return log, (tmp_path / "audit.log").read_bytes().splitlines(keepends=True)


def test_edited_entry_is_detected(tmp_path: Path) -> None:
    log, lines = _three(tmp_path)
    lines[1] = lines[1].replace(b'"i":1', b'"i":7')
    (tmp_path / "audit.log").write_bytes(b"".join(lines))
    problems = log.verify()
    assert len(problems) == 1
    assert "audit.log:2: entry edited" in problems[0]


def test_rehashed_edit_breaks_the_chain_at_the_next_entry(tmp_path: Path) -> None:
    log, lines = _three(tmp_path)
    entry = json.loads(lines[1])
    entry["actor"] = "mallory"
    entry["hash"] = entry_hash(entry)
    lines[1] = canonical_json(entry) + b"\n"
    (tmp_path / "audit.log").write_bytes(b"".join(lines))
    problems = log.verify()
    assert problems == [
        f"{tmp_path / 'audit.log'}:3: chain broken (prev does not match the previous hash)"
    ]


def test_removed_line_is_detected(tmp_path: Path) -> None:
    log, lines = _three(tmp_path)
    (tmp_path / "audit.log").write_bytes(lines[0] + lines[2])
    problems = log.verify()
    assert any("audit.log:2: seq 3, expected 2" in p for p in problems)
    assert any("audit.log:2: chain broken" in p for p in problems)


def test_garbage_line_is_detected_and_blocks_appending(tmp_path: Path) -> None:
    log, lines = _three(tmp_path)
    (tmp_path / "audit.log").write_bytes(b"".join(lines) + b"{not json\n")
    assert any("audit.log:4: not JSON" in p for p in log.verify())
    with pytest.raises(HandoverError, match="last line is not a JSON audit entry"):
        log.append("after", "ops")
    with pytest.raises(HandoverError, match=r"audit.log:4: not a JSON audit entry"):
        log.entries()


def test_many_threads_keep_one_valid_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"

    def worker(n: int) -> None:
        log = AuditLog(path)  # separate instances: the flock must serialise them
        for i in range(25):
            log.append("tick", f"t{n}", i=i)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    log = AuditLog(path)
    assert log.verify() == []
    entries = log.entries()
    assert [e["seq"] for e in entries] == list(range(1, 201))


def _append_many(path: str, n: int) -> None:
    log = AuditLog(Path(path))
    for i in range(n):
        log.append("proc", "p", i=i)


def test_several_processes_keep_one_valid_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_append_many, args=(str(path), 30)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    log = AuditLog(path)
    assert log.verify() == []
    assert len(log.entries()) == 120


def test_long_entries_chain_across_read_blocks(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.log")
    log.append("big", "ops", blob="x" * 10_000)
    log.append("big", "ops", blob="y" * 10_000)
    third = log.append("small", "ops")
    assert third["seq"] == 3
    assert log.verify() == []


def test_lost_final_newline_is_restored_before_appending(tmp_path: Path) -> None:
    log, lines = _three(tmp_path)
    (tmp_path / "audit.log").write_bytes(b"".join(lines).rstrip(b"\n"))
    fourth = log.append("after", "ops")
    assert fourth["seq"] == 4
    assert log.verify() == []
