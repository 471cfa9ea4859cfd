"""The state store interface against a real PostgreSQL and the local folder, same cases.

Each case runs on both stores (`store_kind`): what the local folder does
with files and `flock`s, PostgreSQL must do with rows, transactions and
locks, for processes that share nothing but the database. Workers are real
processes (`python -c`), started together behind a barrier file so that
they really race.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from handover.bundle.sshsig import SigningKey
from handover.checklist.audit import entry_hash
from handover.checklist.local_store import LocalStore
from handover.checklist.model import Evidence, Status
from handover.checklist.store import ChecklistStore
from handover.checklist.trail import verify_trail
from handover.errors import HandoverError, UsageError
from handover.state.postgres import PostgresStore
from handover.state.store import ContractStore, StateConflict

C = "acme-infogerance"
P = "takeover"
ITEMS = [f"item-{n:02d}" for n in range(8)]
TEMPLATE = [
    {"id": i, "title": f"Step {i}", "clause": "2.1", "owner": "provider", "evidence_kind": "note"}
    for i in ITEMS
]

WORKER = r"""
import os, sys, time
from pathlib import Path
from handover.checklist.store import ChecklistStore
from handover.checklist.local_store import LocalStore

kind, where, contract, mode, name, go = sys.argv[1:7]
args = sys.argv[7:]
if kind == "env":  # a worker as deployed: HANDOVER_STATE_URL says where the state is
    store = ChecklistStore()
elif kind == "postgres":
    from handover.state.postgres import PostgresStore
    store = ChecklistStore(state=PostgresStore(where))
else:
    store = ChecklistStore(state=LocalStore(Path(where)))
deadline = time.monotonic() + 120
while not os.path.exists(go):
    if time.monotonic() > deadline:
        sys.exit("no go signal")
    time.sleep(0.01)
if mode == "append":
    log = store.audit_log(contract)
    for n in range(int(args[0])):
        log.append("test.append", name, worker=name, n=n)
elif mode == "items":
    for item in args:
        store.start(contract, "takeover", item, name)
        store.complete(contract, "takeover", item, name)
elif mode == "run":  # a phase run: rerun preparation, then every item not done
    from handover.bundle.sshsig import SigningKey
    from handover.checklist.checkpoints import make_checkpoint

    options = dict(zip(args[-4::2], args[-3::2]))  # --hold-at ITEM --key FILE, last
    items = args[:-4]
    key = SigningKey.load(Path(options["--key"]))

    def checkpoint(reason):
        make_checkpoint(store.audit_log(contract), key, reason, contract=contract,
                        checkpoints=store.checkpoints(contract), actor=name)
    template = [{"id": i, "title": i, "clause": "2.1", "owner": "provider"} for i in items]
    if store.exists(contract, "takeover"):
        store.prepare_rerun(contract, "takeover", name)
    checklist = store.open(contract, "takeover", template)
    todo = [item.id for item in checklist.items if item.status.value == "pending"]
    for number, item in enumerate(todo):
        store.start(contract, "takeover", item, name)
        if item == options["--hold-at"]:
            print("at " + item, flush=True)
            time.sleep(600)
        store.complete(contract, "takeover", item, name)
        if number == 0:
            checkpoint("first item of " + name)
    checkpoint("takeover end")
elif mode == "hold":
    with store._locked(contract):
        print("locked", flush=True)
        time.sleep(600)
print("done", flush=True)
"""


def _spawn(
    started: list[subprocess.Popen[str]],
    kind: str,
    where: str,
    mode: str,
    name: str,
    go: Path,
    *args: str,
    state_url: str | None = None,
) -> subprocess.Popen[str]:
    """A worker process in a folder of its own (`<tmp>/<name>`), sharing only `where`."""
    folder = go.parent / name
    folder.mkdir(exist_ok=True)
    env = {**os.environ, "HANDOVER_HOME": str(folder / ".handover")}
    env.pop("HANDOVER_STATE_URL", None)
    if state_url is not None:
        env["HANDOVER_STATE_URL"] = state_url
    process = subprocess.Popen(
        [sys.executable, "-c", WORKER, kind, where, C, mode, name, str(go), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=folder,
    )
    started.append(process)
    return process


def _finish(process: subprocess.Popen[str]) -> None:
    out, err = process.communicate(timeout=600)
    assert process.returncode == 0, err[-2000:]
    assert out.strip().endswith("done")


def test_concurrent_appends_from_two_processes_make_one_chain(
    store_kind: str,
    location: str,
    state: ContractStore,
    workers: list[subprocess.Popen[str]],
    tmp_path: Path,
) -> None:
    count = 60
    go = tmp_path / "go"
    a = _spawn(workers, store_kind, location, "append", "worker-a", go, str(count))
    b = _spawn(workers, store_kind, location, "append", "worker-b", go, str(count))
    go.touch()
    _finish(a)
    _finish(b)
    log = ChecklistStore(state=state).audit_log(C)
    entries = log.entries()
    assert log.verify() == []
    assert [e["seq"] for e in entries] == list(range(1, 2 * count + 1))
    for before, after in itertools.pairwise(entries):
        assert after["prev"] == before["hash"]  # no fork: each entry chains on the one before
    for name in ("worker-a", "worker-b"):  # no lost entry, none twice, in each worker's order
        assert [e["data"]["n"] for e in entries if e["data"]["worker"] == name] == list(
            range(count)
        )


def test_two_processes_ticking_items_of_one_checklist_lose_nothing(
    store_kind: str,
    location: str,
    state: ContractStore,
    workers: list[subprocess.Popen[str]],
    tmp_path: Path,
) -> None:
    store = ChecklistStore(state=state)
    store.open(C, P, TEMPLATE)
    go = tmp_path / "go"
    a = _spawn(workers, store_kind, location, "items", "worker-a", go, *ITEMS[0::2])
    b = _spawn(workers, store_kind, location, "items", "worker-b", go, *ITEMS[1::2])
    go.touch()
    _finish(a)
    _finish(b)
    checklist = ChecklistStore(state=state).load(C, P)
    assert {item.id: item.status for item in checklist.items} == dict.fromkeys(ITEMS, Status.DONE)
    assert checklist.version == 1 + 2 * len(ITEMS)  # every change landed on the one before
    assert store.cross_check(C) == []
    log = store.audit_log(C)
    assert log.verify() == []
    assert len(log.entries()) == 1 + 2 * len(ITEMS)


def test_a_stale_checklist_write_is_refused_and_writes_nothing(state: ContractStore) -> None:
    first = ChecklistStore(state=state)
    second = ChecklistStore(state=state)  # another worker
    first.open(C, P, TEMPLATE)
    stale = first.load(C, P)
    second.start(C, P, ITEMS[0], "worker-b")
    entries_before = first.audit_log(C).entries()
    stale.version += 1
    with pytest.raises(StateConflict, match="version 2, this change was made on version 1"):
        state.commit_checklist(
            C, P, stale.version - 1, stale.model_dump_json().encode(), [("x.y", "a", {})]
        )
    assert first.audit_log(C).entries() == entries_before  # not even the audit entry
    assert first.load(C, P).item(ITEMS[0]).status is Status.RUNNING
    assert first.load(C, P).version == 2


def test_checklist_lifecycle_reads_the_same_on_both_stores(state: ContractStore) -> None:
    store = ChecklistStore(state=state)
    assert not store.exists(C, P)
    store.open(C, P, TEMPLATE)
    store.start(C, P, ITEMS[0], "ops")
    evidence = Evidence(kind="note", path="n.txt", sha256="a" * 64)
    store.complete(C, P, ITEMS[0], "ops", [evidence])
    store.start(C, P, ITEMS[1], "ops")
    store.fail(C, P, ITEMS[1], "ops", "db01 unreachable")
    store.prepare_rerun(C, P, "flow:takeover")
    store.waive(C, P, ITEMS[2], "ops", "not in scope")
    assert store.exists(C, P)
    checklist = ChecklistStore(state=state).load(C, P)
    assert checklist.item(ITEMS[0]).status is Status.DONE
    assert checklist.item(ITEMS[0]).evidence[0].sha256 == "a" * 64
    assert checklist.item(ITEMS[1]).status is Status.PENDING
    assert checklist.item(ITEMS[2]).status is Status.WAIVED
    assert checklist.version == 7
    assert store.cross_check(C) == []
    log = store.audit_log(C)
    assert log.verify() == []
    assert log.torn_tail() is None
    assert [e["event"] for e in log.entries()] == [
        "checklist.opened",
        "checklist.running",
        "checklist.done",
        "checklist.running",
        "checklist.failed",
        "checklist.reopened",
        "checklist.waived",
    ]
    head = log.head()
    assert head is not None and head["seq"] == 7 and head["hash"] == entry_hash(head)
    assert state.checklist_names(C) == [P]


def test_blobs_round_trip_and_only_known_names(state: ContractStore) -> None:
    assert state.read_blob(C, "vault.age") is None
    state.write_blob(C, "vault.age", b"age-encryption.org/v1\n...")
    state.write_blob(C, "vault.age", b"age-encryption.org/v1\nsecond")
    assert state.read_blob(C, "vault.age") == b"age-encryption.org/v1\nsecond"
    with pytest.raises(UsageError, match=re.escape("state blob '../x'")):
        state.write_blob(C, "../x", b"")


def test_a_killed_worker_releases_the_contract_lock(
    store_kind: str,
    location: str,
    state: ContractStore,
    workers: list[subprocess.Popen[str]],
    tmp_path: Path,
) -> None:
    go = tmp_path / "go"
    go.touch()
    holder = _spawn(workers, store_kind, location, "hold", "worker-a", go)
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "locked"
    acquired = threading.Event()

    def take() -> None:
        with ChecklistStore(state=state)._locked(C):
            acquired.set()

    waiter = threading.Thread(target=take, daemon=True)
    waiter.start()
    assert not acquired.wait(2)  # the worker holds the contract: the other one waits
    os.kill(holder.pid, signal.SIGKILL)  # killed mid-run: no unlock, no cleanup
    holder.wait(timeout=60)
    assert acquired.wait(120)  # its lock died with it
    waiter.join(timeout=60)


def test_two_workers_sharing_only_the_database_keep_one_chain_through_a_kill(
    pg_url: str,
    workers: list[subprocess.Popen[str]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Worker A is killed mid-item; B, in another folder, reruns the phase; one chain results."""
    go = tmp_path / "go"
    go.touch()
    key = SigningKey.generate()
    key_file = tmp_path / "provider.key"
    key_file.write_bytes(key.private_openssh())
    key_file.chmod(0o600)
    options = ("--hold-at", ITEMS[3], "--key", str(key_file))
    a = _spawn(workers, "env", "", "run", "worker-a", go, *ITEMS, *options, state_url=pg_url)
    assert a.stdout is not None
    assert a.stdout.readline().strip() == f"at {ITEMS[3]}", a.stderr and a.stderr.read()
    os.kill(a.pid, signal.SIGKILL)  # mid-run: the item stays running, no cleanup
    a.wait(timeout=60)
    options = ("--hold-at", "none", "--key", str(key_file))
    b = _spawn(workers, "env", "", "run", "worker-b", go, *ITEMS, *options, state_url=pg_url)
    _finish(b)

    # Neither worker's folder holds contract state: it is all in the database.
    for name in ("worker-a", "worker-b"):
        contract_folder = tmp_path / name / ".handover" / "contracts" / C
        assert not (contract_folder / "audit.log").exists()
        assert not (contract_folder / "audit-checkpoints.jsonl").exists()
        assert not list(contract_folder.glob("checklists/*.json"))

    # A third place (the exit's) reads one contract, and exports it as files.
    monkeypatch.setenv("HANDOVER_HOME", str(tmp_path / "exit" / ".handover"))
    monkeypatch.setenv("HANDOVER_STATE_URL", pg_url)
    store = ChecklistStore()
    assert isinstance(store.state, PostgresStore)
    checklist = store.load(C, P)
    assert {i.id: (i.status, i.actor) for i in checklist.items} == {
        **{i: (Status.DONE, "worker-a") for i in ITEMS[:3]},
        **{i: (Status.DONE, "worker-b") for i in ITEMS[3:]},
    }
    assert store.cross_check(C) == []
    entries = store.audit_log(C).entries()
    reopened = [e for e in entries if e["event"] == "checklist.reopened"]
    assert [(e["actor"], e["data"]["item"], e["data"]["reason"]) for e in reopened] == [
        ("worker-b", ITEMS[3], "rerun of the phase (running)")
    ]
    # The trail the exit checks: chain, the three checkpoints both workers signed, checklists.
    trail = verify_trail(store, C, key.public_line(), "the provider's key")
    assert trail.problems == []
    assert trail.checkpoint_check.checked == 3
    assert trail.checkpoint_check.latest is not None
    assert trail.checkpoint_check.latest.reason == "takeover end"
    assert trail.checkpoint_check.latest.seq == len(entries) - 1  # signed head, then its entry

    exported = tmp_path / "exit" / ".handover" / "contracts"
    written = store.export_to_folder(C)
    log_file = exported / C / "audit.log"
    assert set(written) == {
        log_file,
        exported / C / "audit-checkpoints.jsonl",
        exported / C / "checklists" / "takeover.json",
    }
    assert len(log_file.read_bytes().splitlines()) == len(entries) == 1 + 2 * len(ITEMS) + 2 + 3
    _check_with_jq_and_sha256sum(log_file)
    # The exported files are a contract folder the local store verifies the same way.
    folder_trail = verify_trail(ChecklistStore(exported), C, key.public_line(), "the key")
    assert folder_trail.problems == [] and folder_trail.entries == len(entries)


def _check_with_jq_and_sha256sum(log_file: Path) -> None:
    """What a client does with standard tools: each line's hash, and each `prev`."""
    jq = shutil.which("jq")
    sha256sum = shutil.which("sha256sum")
    assert jq and sha256sum, "jq and sha256sum are needed: run scripts/system-deps"
    previous = "0" * 64
    for number, line in enumerate(log_file.read_bytes().splitlines(), start=1):
        body = subprocess.run(
            [jq, "-cjS", "del(.hash)"], input=line, capture_output=True, check=True
        ).stdout
        digest = subprocess.run(
            [sha256sum], input=body, capture_output=True, check=True
        ).stdout.split()[0]
        fields = subprocess.run(
            [jq, "-r", ".seq, .prev, .hash"], input=line, capture_output=True, check=True
        ).stdout.split()
        assert fields == [str(number).encode(), previous.encode(), digest], number
        previous = digest.decode()


def test_many_threads_each_with_its_own_store_tick_one_checklist(state: ContractStore) -> None:
    """As a flow's task threads do: one store object per task, all on one contract."""
    ChecklistStore(state=state).open(C, P, TEMPLATE)
    failures: list[BaseException] = []

    def tick(item: str) -> None:
        try:
            store = ChecklistStore(state=state)
            store.start(C, P, item, f"task-{item}")
            store.complete(C, P, item, f"task-{item}")
        except BaseException as exc:  # reported below: a thread's exception is lost otherwise
            failures.append(exc)

    threads = [threading.Thread(target=tick, args=(item,)) for item in ITEMS]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert failures == []
    store = ChecklistStore(state=state)
    assert all(item.status is Status.DONE for item in store.load(C, P).items)
    assert store.load(C, P).version == 1 + 2 * len(ITEMS)
    assert store.audit_log(C).verify() == []
    assert store.cross_check(C) == []


def test_handover_audit_verifies_a_chain_kept_in_postgresql(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    import handover.cli.checklist_cmd  # noqa: F401  (registers the commands)
    from handover.checklist.checkpoints import make_checkpoint
    from handover.cli import app
    from tests.unit.documents_fixtures import write_test_playbook

    monkeypatch.setenv("HANDOVER_HOME", str(tmp_path / ".handover"))
    monkeypatch.setenv("HANDOVER_STATE_URL", pg_url)
    playbook = write_test_playbook(tmp_path)
    store = ChecklistStore()
    store.open("demo-estate", P, TEMPLATE)
    store.start("demo-estate", P, ITEMS[0], "ops@provider")
    key = SigningKey.generate()
    make_checkpoint(
        store.audit_log("demo-estate"), key, "test", checkpoints=store.checkpoints("demo-estate")
    )
    (tmp_path / "provider.pub").write_text(key.public_line())
    result = CliRunner().invoke(
        app,
        ["audit", str(playbook), "--verify", "--signer", str(tmp_path / "provider.pub")],
        env={"COLUMNS": "160"},
    )
    assert result.exit_code == 0, result.output
    assert "3 entries, hash chain intact" in result.output  # opened, running, checkpoint
    assert "checklist.running" in result.output
    assert not store.audit_log("demo-estate").path.exists()  # it was read from the database


def test_a_contract_moves_from_its_folder_to_the_database_with_its_chain(
    pg_url: str, tmp_path: Path
) -> None:
    from handover.checklist.checkpoints import make_checkpoint
    from handover.checklist.migrate import move_to_database

    folder = LocalStore(tmp_path / "contracts")
    before = ChecklistStore(state=folder)
    before.open(C, P, TEMPLATE)
    before.start(C, P, ITEMS[0], "ops")
    before.complete(C, P, ITEMS[0], "ops")
    key = SigningKey.generate()
    make_checkpoint(before.audit_log(C), key, "takeover end", checkpoints=before.checkpoints(C))
    database = PostgresStore(pg_url)

    moved = move_to_database(folder, database, C)
    assert (moved.entries, moved.checklists, moved.checkpoints) == (4, [P], 1)
    after = ChecklistStore(state=database)
    assert after.audit_log(C).entries() == before.audit_log(C).entries()  # verbatim
    assert database.read_checklist(C, P) == folder.read_checklist(C, P)
    trail = verify_trail(after, C, key.public_line(), "the provider's key")
    assert trail.problems == [] and trail.checkpoint_check.checked == 1  # old signatures hold
    after.start(C, P, ITEMS[1], "ops")  # and the chain goes on from there
    assert after.audit_log(C).verify() == []
    assert after.audit_log(C).entries()[-1]["seq"] == 5

    with pytest.raises(HandoverError, match="already holds contract 'acme-infogerance'"):
        move_to_database(folder, database, C)  # a second copy would fork the chain


def test_a_broken_chain_is_not_moved(pg_url: str, tmp_path: Path) -> None:
    from handover.checklist.migrate import move_to_database

    folder = LocalStore(tmp_path / "contracts")
    store = ChecklistStore(state=folder)
    store.open(C, P, TEMPLATE)
    store.start(C, P, ITEMS[0], "ops")
    log = store.audit_log(C).path
    log.write_bytes(log.read_bytes().replace(b'"ops"', b'"eve"'))
    database = PostgresStore(pg_url)
    with pytest.raises(HandoverError, match="not copied, the chain does not verify"):
        move_to_database(folder, database, C)
    assert database.audit_chain(C).head() is None
    assert database.read_checklist(C, P) is None


def test_a_url_naming_another_driver_still_opens_the_store(pg_url: str) -> None:
    """Prefect's own database URL says `+asyncpg`: the state store uses its synchronous driver."""
    store = PostgresStore(pg_url.replace("postgresql://", "postgresql+asyncpg://", 1))
    assert store.where.startswith("postgresql+psycopg://") and "***" in store.where
    store.write_blob(C, "known_hosts", b"host ssh-ed25519 AAAA\n")
    assert PostgresStore(pg_url).read_blob(C, "known_hosts") == b"host ssh-ed25519 AAAA\n"


def test_status_on_a_team_machine_reads_the_database(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A machine that never ran the contract still lists it and shows its checklists."""
    from datetime import UTC, date, datetime

    from handover.operations.status import contract_ids, read_status
    from handover.state.home import handover_home

    worker = PostgresStore(pg_url)
    ChecklistStore(tmp_path / "elsewhere", state=worker).open(C, P, TEMPLATE)
    ChecklistStore(tmp_path / "elsewhere", state=worker).start(C, P, ITEMS[0], "ops")
    monkeypatch.setenv("HANDOVER_HOME", str(tmp_path / "here" / ".handover"))
    monkeypatch.setenv("HANDOVER_STATE_URL", pg_url)
    root = handover_home() / "contracts"
    assert not (root / C).exists()
    assert contract_ids(root) == [C]
    status = read_status(C, root, None, today=date.today(), now=datetime.now(UTC))
    takeover = next(p for p in status.phases if p.phase.value == P)
    assert (takeover.opened, takeover.running, takeover.total) == (True, 1, len(ITEMS))
