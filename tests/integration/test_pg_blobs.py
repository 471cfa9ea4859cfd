"""Blob compare-and-set on both stores, and the blobs workers share through PostgreSQL.

Same cases on the local folder and on a real PostgreSQL (`store_kind`):
a write on a stale tag is refused and writes nothing, and processes that
share nothing but the store add to one blob at once without losing a line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from handover.checklist.local_store import LocalStore
from handover.state.postgres import PostgresStore
from handover.state.store import ABSENT, ContractStore, StateConflict, blob_tag, update_blob

C = "acme-infogerance"

ADDER = r"""
import os, sys, time
from pathlib import Path
from handover.state.store import update_blob

kind, where, contract, name, go, count = sys.argv[1:7]
if kind == "postgres":
    from handover.state.postgres import PostgresStore
    store = PostgresStore(where)
else:
    from handover.checklist.local_store import LocalStore
    store = LocalStore(Path(where))
deadline = time.monotonic() + 120
while not os.path.exists(go):
    if time.monotonic() > deadline:
        sys.exit("no go signal")
    time.sleep(0.01)
for n in range(int(count)):
    line = f"{name} {n}\n".encode()
    update_blob(store, contract, "known_hosts", lambda data: (data or b"") + line)
print("done", flush=True)
"""


def test_a_blob_is_written_only_on_the_tag_it_was_read_with(state: ContractStore) -> None:
    assert state.read_blob_tagged(C, "vault.age") == (None, ABSENT)
    first = state.write_blob_if(C, "vault.age", b"one", ABSENT)
    assert first == blob_tag(b"one")
    with pytest.raises(StateConflict, match=r"vault\.age"):
        state.write_blob_if(C, "vault.age", b"other first", ABSENT)  # created meanwhile
    second = state.write_blob_if(C, "vault.age", b"two", first)
    with pytest.raises(StateConflict):
        state.write_blob_if(C, "vault.age", b"lost", first)  # stale tag
    assert state.read_blob_tagged(C, "vault.age") == (b"two", second)
    assert state.read_blob(C, "known_hosts") is None  # blobs are apart


def test_update_blob_reads_again_after_losing_a_race(state: ContractStore) -> None:
    state.write_blob(C, "known_hosts", b"a\n")
    calls: list[bytes | None] = []

    def change(data: bytes | None) -> bytes:
        calls.append(data)
        if len(calls) == 1:  # another writer gets in between this read and this write
            state.write_blob(C, "known_hosts", b"a\nb\n")
        return (data or b"") + b"c\n"

    assert update_blob(state, C, "known_hosts", change) == b"a\nb\nc\n"
    assert calls == [b"a\n", b"a\nb\n"]
    assert state.read_blob(C, "known_hosts") == b"a\nb\nc\n"
    assert update_blob(state, C, "known_hosts", lambda data: None) == b"a\nb\nc\n"


def test_processes_adding_to_one_blob_at_once_lose_nothing(
    store_kind: str, location: str, state: ContractStore, tmp_path: Path, workers: list
) -> None:
    go, count = tmp_path / "go", 15
    names = ["w1", "w2", "w3"]
    for name in names:
        workers.append(
            subprocess.Popen(
                [sys.executable, "-c", ADDER, store_kind, location, C, name, str(go), str(count)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env={**os.environ, "HANDOVER_HOME": str(tmp_path / name)},
            )
        )
    go.touch()
    for process in workers:
        out, err = process.communicate(timeout=600)
        assert process.returncode == 0, err[-2000:]
        assert out.strip() == "done"
    lines = (state.read_blob(C, "known_hosts") or b"").decode().splitlines()
    assert sorted(lines) == sorted(f"{name} {n}" for name in names for n in range(count))
    for name in names:  # each writer's lines in its own order
        assert [line for line in lines if line.startswith(name)] == [
            f"{name} {n}" for n in range(count)
        ]


SSH_WORKER = r"""
import json, sys
from handover.connectors.ssh.connector import SSHConnector
from handover.connectors.ssh.first_contact import pin_first_contact
from handover.contract.perimeter import Host
from handover.errors import HandoverError

contract, mode, entry = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
host = Host.model_validate(entry)
if mode == "pin":
    print("pinned " + str(pin_first_contact(host, contract)), flush=True)
else:
    try:
        connector = SSHConnector.from_host(host, contract, retries=0)
    except HandoverError as exc:
        print("refused: " + str(exc), flush=True)
    else:
        result = connector.run("echo trusted")
        connector.close()
        print(result.stdout.decode().strip(), flush=True)
"""


def _ssh_worker(tmp_path: Path, name: str, url: str | None, *args: str) -> str:
    """A worker with a home of its own, sharing the state store `url` (None: its folder)."""
    env = {**os.environ, "HANDOVER_HOME": str(tmp_path / name / ".handover")}
    env.pop("HANDOVER_STATE_URL", None)
    if url is not None:
        env["HANDOVER_STATE_URL"] = url
    done = subprocess.run(
        [sys.executable, "-c", SSH_WORKER, C, *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip()


@pytest.mark.integration
def test_a_host_key_pinned_on_one_worker_is_trusted_on_another(
    pg_url: str, sshd_factory: Any, tmp_path: Path
) -> None:
    host = sshd_factory.start("sharedpin")
    entry = host.host_dict()
    entry.pop("host_key")  # nothing pinned in the playbook: known_hosts decides
    entry = json.dumps(entry)
    before = _ssh_worker(tmp_path, "b", pg_url, "connect", entry)
    assert before.startswith("refused: ") and "not pinned" in before

    pinned = _ssh_worker(tmp_path, "a", pg_url, "pin", entry)
    a_file = tmp_path / "a" / ".handover" / "contracts" / C / "known_hosts"
    assert pinned == f"pinned {a_file}"
    stored = PostgresStore(pg_url).read_blob(C, "known_hosts")
    assert stored is not None and stored.decode().splitlines() == [host.known_hosts_line]
    assert a_file.read_bytes() == stored  # worker A's copy is the store's

    assert _ssh_worker(tmp_path, "b", pg_url, "connect", entry) == "trusted"
    b_file = tmp_path / "b" / ".handover" / "contracts" / C / "known_hosts"
    assert b_file.read_bytes() == stored
    assert oct(b_file.stat().st_mode & 0o777) == "0o600"
    # A worker on its own folder shares nothing: the key is not known there.
    alone = _ssh_worker(tmp_path, "c", None, "connect", entry)
    assert alone.startswith("refused: ") and "not pinned" in alone


def test_shared_known_hosts_keeps_a_pinned_key_and_refuses_another(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import paramiko

    from handover.connectors.ssh.known_hosts import known_keys, record_host_key
    from handover.errors import HostKeyMismatch
    from handover.state.layout import ContractPaths

    monkeypatch.setenv("HANDOVER_HOME", str(tmp_path / "w1"))
    monkeypatch.setenv("HANDOVER_STATE_URL", pg_url)
    path = ContractPaths(C).known_hosts
    first, second = paramiko.ECDSAKey.generate(), paramiko.ECDSAKey.generate()
    record_host_key(path, "192.0.2.10", 2222, first)
    record_host_key(path, "192.0.2.10", 2222, first)  # already there: unchanged
    with pytest.raises(HostKeyMismatch, match=r"\[192\.0\.2\.10\]:2222"):
        record_host_key(path, "192.0.2.10", 2222, second)
    stored = PostgresStore(pg_url).read_blob(C, "known_hosts") or b""
    assert stored.decode().count("\n") == 1
    path.unlink()  # this worker's copy lost: the store still knows the key
    assert known_keys(path, "192.0.2.10", 2222) == {first.get_name(): first}
    assert path.read_bytes() == stored


VAULT_WORKER = r"""
import os, sys, time
from handover.secrets.vault import Vault, VaultEntry

contract, name, go, count = sys.argv[1:5]
deadline = time.monotonic() + 120
while not os.path.exists(go):
    if time.monotonic() > deadline:
        sys.exit("no go signal")
    time.sleep(0.01)
vault = Vault(contract)
for n in range(int(count)):
    vault.add(VaultEntry(name=f"{name}-{n}"), f"secret-{name}-{n}")
vault.rotate(f"{name}-0", f"rotated-{name}", actor=name)
print(" ".join(vault.names()), flush=True)
"""


def test_workers_adding_to_one_vault_through_the_database_lose_no_entry(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: list
) -> None:
    from handover.secrets.vault import Vault
    from handover.secrets.vault_key import create_key_file, load_vault_key

    key = tmp_path / "keys" / "vault.key"  # one key file, outside every worker's home
    monkeypatch.setenv("HANDOVER_VAULT_KEY_FILE", str(key))
    monkeypatch.delenv("HANDOVER_VAULT_KEY", raising=False)
    monkeypatch.setenv("HANDOVER_STATE_URL", pg_url)
    monkeypatch.setenv("HANDOVER_HOME", str(tmp_path / "first" / ".handover"))
    create_key_file()
    assert Vault(C).init() is True
    go, count, names = tmp_path / "go", 5, ["w1", "w2", "w3"]
    for name in names:
        env = {**os.environ, "HANDOVER_HOME": str(tmp_path / name / ".handover")}
        workers.append(
            subprocess.Popen(
                [sys.executable, "-c", VAULT_WORKER, C, name, str(go), str(count)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
            )
        )
    go.touch()
    for name, process in zip(names, workers, strict=True):
        out, err = process.communicate(timeout=600)
        assert process.returncode == 0, err[-2000:]
        assert {f"{name}-{n}" for n in range(count)} <= set(out.split())  # its own, at least
    expected = sorted(f"{name}-{n}" for name in names for n in range(count))

    monkeypatch.setenv("HANDOVER_HOME", str(tmp_path / "late" / ".handover"))
    late = Vault(C)  # a worker that never wrote: reads the database's vault
    assert late.names() == expected
    for name in names:
        assert late.secret(f"{name}-0").reveal() == f"rotated-{name}".encode()
        assert [h.value.reveal() for h in late.history(f"{name}-0")] == [
            f"secret-{name}-0".encode()
        ]
    stored = PostgresStore(pg_url).read_blob(C, "vault.age") or b""
    assert stored.startswith(b"age-encryption.org/v1\n")
    assert b"secret-w1" not in stored and b"AGE-SECRET-KEY" not in stored
    assert str(load_vault_key().recipient).encode() not in stored  # a reference, not the key
    assert late.path.read_bytes() == stored
    assert late.path.stat().st_mode & 0o777 == 0o600


def test_a_deleted_blob_is_gone_and_can_be_created_again(state: ContractStore) -> None:
    assert state.delete_blob(C, "vault.age") is False
    state.write_blob(C, "vault.age", b"x")
    assert state.delete_blob(C, "vault.age") is True
    assert state.read_blob_tagged(C, "vault.age") == (None, ABSENT)
    assert state.write_blob_if(C, "vault.age", b"y", ABSENT) == blob_tag(b"y")


def test_the_exit_erases_the_shared_vault_in_the_database_too(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from handover.exit.erasure import erase_contract_copies, vault_target
    from handover.secrets.vault import Vault, VaultEntry
    from handover.secrets.vault_key import create_key_file
    from handover.state.layout import ContractPaths

    monkeypatch.setenv("HANDOVER_VAULT_KEY_FILE", str(tmp_path / "keys" / "vault.key"))
    monkeypatch.delenv("HANDOVER_VAULT_KEY", raising=False)
    monkeypatch.setenv("HANDOVER_STATE_URL", pg_url)
    monkeypatch.setenv("HANDOVER_HOME", str(tmp_path / "w1" / ".handover"))
    create_key_file()
    Vault(C).init()
    Vault(C).add(VaultEntry(name="s3-key"), "s3-secret")
    stored = PostgresStore(pg_url).read_blob(C, "vault.age") or b""
    monkeypatch.setenv("HANDOVER_HOME", str(tmp_path / "w2" / ".handover"))  # another worker
    target = vault_target(ContractPaths(C).vault_file)
    assert "shared one in postgresql" in target.description
    assert "***" in target.description or "@" not in target.description  # no password shown
    report = erase_contract_copies(C, [target], actor="ops")
    [record] = report.records
    assert (record.status, record.objects, record.bytes) == ("erased", 1, len(stored))
    assert PostgresStore(pg_url).read_blob(C, "vault.age") is None
    assert not Vault(C).exists()  # nothing comes back from the store
    monkeypatch.setenv("HANDOVER_HOME", str(tmp_path / "w1" / ".handover"))
    from handover.errors import HandoverError

    with pytest.raises(HandoverError, match="has none of"):  # a copy left on a worker that
        Vault(C).exists()  # was off during the erasure is refused, never pushed back
    assert PostgresStore(pg_url).read_blob(C, "vault.age") is None


def test_moving_a_contract_to_the_database_carries_its_known_hosts_and_vault(
    pg_url: str, tmp_path: Path
) -> None:
    from handover.checklist.migrate import move_to_database
    from handover.checklist.store import ChecklistStore

    folder = LocalStore(tmp_path / "contracts")
    ChecklistStore(state=folder).open(
        C, "takeover", [{"id": "a", "title": "A", "clause": "1", "owner": "provider"}]
    )
    folder.write_blob(C, "vault.age", b"age-encryption.org/v1\nfolder's vault")
    folder.write_blob(C, "known_hosts", b"[192.0.2.1]:22 ssh-ed25519 AAAAfolder\n")
    database = PostgresStore(pg_url)
    database.write_blob(C, "known_hosts", b"[192.0.2.9]:22 ssh-ed25519 AAAAteam\n")

    moved = move_to_database(folder, database, C)
    assert (moved.blobs, moved.blobs_in_database) == (["vault.age"], ["known_hosts"])
    assert database.read_blob(C, "vault.age") == folder.read_blob(C, "vault.age")
    assert database.read_blob(C, "known_hosts") == b"[192.0.2.9]:22 ssh-ed25519 AAAAteam\n"


INCIDENT_WORKER = r"""
import os, sys, time
from datetime import UTC, datetime
from handover.operations.incident_journal import IncidentJournal, journal_path
from handover.state.layout import ContractPaths

contract, name, go, count = sys.argv[1:5]
deadline = time.monotonic() + 120
while not os.path.exists(go):
    if time.monotonic() > deadline:
        sys.exit("no go signal")
    time.sleep(0.01)
journal = IncidentJournal(journal_path(ContractPaths(contract).root))
for n in range(int(count)):
    opened = journal.open(None, "P2", f"{name} {n}", datetime.now(UTC), name)
    journal.acknowledge(opened.id, datetime.now(UTC), name)
print("done", flush=True)
"""


def test_workers_on_several_machines_keep_one_incident_journal(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: list
) -> None:
    from handover.operations.incident_journal import IncidentJournal, journal_path
    from handover.state.layout import ContractPaths

    monkeypatch.setenv("HANDOVER_STATE_URL", pg_url)
    go, count, names = tmp_path / "go", 6, ["w1", "w2", "w3"]
    for name in names:
        env = {**os.environ, "HANDOVER_HOME": str(tmp_path / name / ".handover")}
        workers.append(
            subprocess.Popen(
                [sys.executable, "-c", INCIDENT_WORKER, C, name, str(go), str(count)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
            )
        )
    go.touch()
    for process in workers:
        out, err = process.communicate(timeout=600)
        assert process.returncode == 0, err[-2000:]
        assert out.strip() == "done"
    monkeypatch.setenv("HANDOVER_HOME", str(tmp_path / "late" / ".handover"))
    incidents = IncidentJournal(journal_path(ContractPaths(C).root)).incidents()
    total = count * len(names)
    # Ids are chosen from the journal as read: one lock across machines, no id twice.
    assert sorted(i.id for i in incidents) == sorted(f"INC-{n}" for n in range(1, total + 1))
    assert sorted(i.summary for i in incidents) == sorted(
        f"{name} {n}" for name in names for n in range(count)
    )
    assert all(i.responded_at is not None for i in incidents)
    stored = PostgresStore(pg_url).journal(C, "incidents.jsonl").lines()
    assert len(stored) == 2 * total
    assert ContractPaths(C).root.joinpath("incidents.jsonl").read_bytes().splitlines() == stored


def test_a_journal_from_before_the_store_is_refused_then_moved(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import UTC, datetime

    from handover.checklist.migrate import move_to_database
    from handover.checklist.store import ChecklistStore
    from handover.errors import HandoverError
    from handover.operations.incident_journal import IncidentJournal, journal_path
    from handover.state.layout import ContractPaths

    monkeypatch.setenv("HANDOVER_HOME", str(tmp_path / ".handover"))
    monkeypatch.delenv("HANDOVER_STATE_URL", raising=False)
    ChecklistStore().open(C, "takeover", [{"id": "a", "title": "A", "clause": "1", "owner": "p"}])
    path = journal_path(ContractPaths(C).root)
    IncidentJournal(path).open(None, "P1", "before the team database", datetime.now(UTC), "ops")
    before = path.read_bytes()

    monkeypatch.setenv("HANDOVER_STATE_URL", pg_url)
    with pytest.raises(HandoverError, match="from before the store was shared"):
        IncidentJournal(path).open(None, "P2", "would hide the first", datetime.now(UTC), "ops")
    assert path.read_bytes() == before  # nothing overwritten

    moved = move_to_database(
        LocalStore(tmp_path / ".handover" / "contracts"), PostgresStore(pg_url), C
    )
    assert "incidents.jsonl" in moved.blobs
    journal = IncidentJournal(path)
    journal.open(None, "P2", "after the move", datetime.now(UTC), "ops")
    assert [i.id for i in journal.incidents()] == ["INC-1", "INC-2"]
