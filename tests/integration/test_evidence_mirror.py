"""The evidence mirror against a real moto server (HTTP) and both state stores.

Each worker is its own folder with its own worker name; they share only the
state store (the local folder of contracts, or PostgreSQL: `store_kind`) and
the bucket, as workers on several machines share a database and an endpoint.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from handover.errors import HandoverError, UsageError
from handover.evidence import EVIDENCE_URL_ENV, EvidenceMirror, evidence_mirror
from handover.evidence.tree import SYNC_STATE_FILE
from handover.state.evidence_index import INDEX_BLOB, load_index
from handover.state.postgres import PostgresStore
from handover.state.store import ContractStore

pytestmark = pytest.mark.integration

C = "acme-infogerance"


def mirror(
    root: Path, state: ContractStore, client: Any, bucket: str, worker: str
) -> EvidenceMirror:
    return EvidenceMirror(C, root, state, client, bucket, "team/evidence", worker)


def write(root: Path, relpath: str, data: bytes) -> Path:
    path = root / relpath
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.x.tmp")
    tmp.write_bytes(data)
    tmp.chmod(0o600)
    os.replace(tmp, path)  # written as atomic_writer does: 0600, by rename
    return path


def files_of(root: Path) -> dict[str, tuple[bytes, int]]:
    """relpath -> (bytes, mode) of every mirrored file (the mirror's own state left out)."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_file() and not rel.startswith(".evidence"):
            out[rel] = (path.read_bytes(), path.stat().st_mode & 0o777)
    return out


def keys(client: Any, bucket: str) -> list[str]:
    pages = client.get_paginator("list_object_versions").paginate(Bucket=bucket)
    found = []
    for page in pages:
        found += [v["Key"] for v in page.get("Versions", [])]
        found += [m["Key"] for m in page.get("DeleteMarkers", [])]
    return sorted(found)


def index_of(state: ContractStore) -> dict[str, Any]:
    return load_index(state.read_blob(C, INDEX_BLOB))


def test_a_folder_pushed_on_one_worker_is_pulled_identical_on_another(
    state: ContractStore, s3_client: Any, s3_bucket: str, tmp_path: Path
) -> None:
    a_root, b_root = tmp_path / "a" / C, tmp_path / "b" / C
    write(a_root, "takeover/baseline/etc.json", b'{"files": 3}\n')
    write(a_root, "takeover/documents/report.md", b"# report\n" * 1000)
    big = os.urandom(9 * 1024 * 1024)  # above the multipart threshold
    write(a_root, "bundles/b1/volumes/v1.tar.age", big)
    a = mirror(a_root, state, s3_client, s3_bucket, "host-a")
    b = mirror(b_root, state, s3_client, s3_bucket, "host-b")

    sent = a.push()
    assert (sent.files, sent.bytes, sent.removed) == (3, len(big) + 9000 + 13, 0)
    got = b.pull()
    assert (got.files, got.bytes, got.removed, got.skipped) == (3, sent.bytes, 0, 0)
    assert files_of(b_root) == files_of(a_root)
    assert {mode for _, mode in files_of(b_root).values()} == {0o600}
    assert (b_root / "takeover" / "baseline").stat().st_mode & 0o777 == 0o700
    # the objects are named by content only: no client file name in S3
    objects = keys(s3_client, s3_bucket)
    assert len(objects) == 3
    assert all(k.startswith(f"team/evidence/{C}/objects/") for k in objects)
    assert a.where == f"s3://{s3_bucket}/team/evidence/{C}/"

    assert a.push() == b.push() == type(sent)(skipped=3)  # nothing sent again
    assert b.pull().files == a.pull().files == 0


def test_two_workers_pushing_different_files_at_once_both_land(
    state: ContractStore, s3_client: Any, s3_bucket: str, tmp_path: Path
) -> None:
    rounds = 8
    go = threading.Barrier(2)
    errors: list[BaseException] = []

    def worker(name: str) -> None:
        root = tmp_path / name / C
        m = mirror(root, state, s3_client, s3_bucket, name)
        try:
            go.wait(30)
            for n in range(rounds):
                write(root, f"operational/{name}/f{n}.json", f"{name} {n}".encode())
                assert m.push().files == 1
        except BaseException as exc:  # reported by the test below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in ("host-a", "host-b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    names = sorted(index_of(state)["files"])
    assert names == sorted(
        f"operational/{w}/f{n}.json" for w in ("host-a", "host-b") for n in range(rounds)
    )


def test_a_file_removed_on_one_worker_is_removed_by_the_others_pull(
    state: ContractStore, s3_client: Any, s3_bucket: str, tmp_path: Path
) -> None:
    a_root, b_root = tmp_path / "a" / C, tmp_path / "b" / C
    a = mirror(a_root, state, s3_client, s3_bucket, "host-a")
    b = mirror(b_root, state, s3_client, s3_bucket, "host-b")
    write(a_root, "operational/drill.json", b"drill")
    write(a_root, "operational/keep.json", b"keep")
    a.push()
    b.pull()
    write(b_root, "operational/mine.json", b"not pushed")  # B's own, unpushed
    (a_root / "operational" / "drill.json").unlink()
    assert a.push().removed == 1
    index = index_of(state)
    assert "operational/drill.json" not in index["files"]
    assert index["erased"]["operational/drill.json"]["by"] == "host-a"
    got = b.pull()
    assert (got.removed, got.files) == (1, 1)
    assert not (b_root / "operational" / "drill.json").exists()
    assert (b_root / "operational" / "mine.json").read_bytes() == b"not pushed"
    assert (b_root / "operational" / "keep.json").read_bytes() == b"keep"
    # written again later: back in the index, out of `erased`, pulled again
    write(a_root, "operational/drill.json", b"drill 2")
    a.push()
    assert "operational/drill.json" not in index_of(state)["erased"]
    assert b.pull().files == 1
    assert (b_root / "operational" / "drill.json").read_bytes() == b"drill 2"


def test_a_corrupt_object_fails_the_pull_naming_the_file_and_leaves_nothing(
    state: ContractStore, s3_client: Any, s3_bucket: str, tmp_path: Path
) -> None:
    a_root, b_root = tmp_path / "a" / C, tmp_path / "b" / C
    a = mirror(a_root, state, s3_client, s3_bucket, "host-a")
    b = mirror(b_root, state, s3_client, s3_bucket, "host-b")
    write(a_root, "takeover/baseline/etc.json", b"the true baseline")
    a.push()
    (key,) = keys(s3_client, s3_bucket)
    s3_client.put_object(Bucket=s3_bucket, Key=key, Body=b"the fake baseline")
    with pytest.raises(HandoverError) as caught:
        b.pull()
    message = str(caught.value)
    assert "takeover/baseline/etc.json" in message and key in message
    assert "\n" not in message
    folder = b_root / "takeover" / "baseline"
    assert list(folder.iterdir()) == []  # neither the file nor its temporary copy

    s3_client.delete_object(Bucket=s3_bucket, Key=key)  # now missing altogether
    with pytest.raises(HandoverError, match=r"etc\.json.*no such object") as missing:
        b.pull()
    assert key in str(missing.value)
    assert list(folder.iterdir()) == []


def test_evict_removes_pushed_copies_only_and_the_next_push_tombstones_nothing(
    state: ContractStore, s3_client: Any, s3_bucket: str, tmp_path: Path
) -> None:
    root = tmp_path / "a" / C
    a = mirror(root, state, s3_client, s3_bucket, "host-a")
    write(root, "takeover/baseline/etc.json", b"pushed")
    write(root, "takeover/documents/report.md", b"not client data")
    a.push()
    write(root, "takeover/baseline/home.json", b"written after the push")
    counts = a.evict(["takeover/baseline", "drill"])
    assert (counts.removed, counts.skipped, counts.bytes) == (1, 1, len(b"pushed"))
    assert not (root / "takeover/baseline/etc.json").exists()
    assert (root / "takeover/baseline/home.json").read_bytes() == b"written after the push"
    assert (root / "takeover/documents/report.md").exists()
    sent = a.push()
    assert (sent.files, sent.removed) == (1, 0)  # home.json sent, etc.json not tombstoned
    index = index_of(state)
    assert set(index["files"]) == {
        "takeover/baseline/etc.json",
        "takeover/baseline/home.json",
        "takeover/documents/report.md",
    }
    assert index["erased"] == {}
    assert a.pull(["takeover/baseline"]).files == 1  # a later run gets it back
    assert (root / "takeover/baseline/etc.json").read_bytes() == b"pushed"


def test_a_push_of_named_files_publishes_only_them_and_tombstones_nothing(
    state: ContractStore, s3_client: Any, s3_bucket: str, tmp_path: Path
) -> None:
    """An operator's machine (`handover item done --evidence`): its other copies may be stale."""
    a_root, ops_root = tmp_path / "a" / C, tmp_path / "ops" / C
    a = mirror(a_root, state, s3_client, s3_bucket, "host-a")
    write(a_root, "takeover/documents/report.md", b"v2, from the worker")
    a.push()
    ops = mirror(ops_root, state, s3_client, s3_bucket, "ops")
    write(ops_root, "takeover/documents/report.md", b"v1, stale on the operator's disk")
    write(ops_root, "takeover/manual/visit/notes.md", b"the person's evidence")
    sent = ops.push(only=["takeover/manual/visit/notes.md"])
    assert (sent.files, sent.removed) == (1, 0)
    index = index_of(state)
    assert set(index["files"]) == {"takeover/documents/report.md", "takeover/manual/visit/notes.md"}
    assert index["files"]["takeover/documents/report.md"]["by"] == "host-a"
    assert a.pull().files == 1
    assert (a_root / "takeover/manual/visit/notes.md").read_bytes() == b"the person's evidence"
    assert (a_root / "takeover/documents/report.md").read_bytes() == b"v2, from the worker"
    with pytest.raises(HandoverError):
        ops.push(only=["../outside"])


HOLDER = r"""
import os, sys, time
from pathlib import Path
from handover.connectors.s3.client import s3_client
from handover.evidence import EvidenceMirror

kind, where, root, bucket, mode = sys.argv[1:6]
if kind == "postgres":
    from handover.state.postgres import PostgresStore
    store = PostgresStore(where)
else:
    from handover.checklist.local_store import LocalStore
    store = LocalStore(Path(where))
m = EvidenceMirror("acme-infogerance", Path(root), store, s3_client(None), bucket, "team/evidence",
                   "host-a")
with m.in_use("run-" + mode):
    print("inside", flush=True)
    if mode == "hang":
        time.sleep(600)
print("left", flush=True)
"""


def test_a_holder_killed_inside_in_use_stays_named_and_a_clean_exit_leaves(
    store_kind: str,
    location: str,
    state: ContractStore,
    s3_env: Any,
    s3_bucket: str,
    tmp_path: Path,
    workers: list[subprocess.Popen[str]],
) -> None:
    root = tmp_path / "a" / C
    args = [sys.executable, "-c", HOLDER, store_kind, location, str(root), s3_bucket]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    hung = subprocess.Popen([*args, "hang"], stdout=subprocess.PIPE, text=True, env=env)
    workers.append(hung)
    assert hung.stdout is not None and hung.stdout.readline() == "inside\n"
    hung.kill()  # SIGKILL: no clean-up runs
    hung.wait(30)
    m = mirror(tmp_path / "b" / C, state, None, s3_bucket, "host-b")
    assert m.holders()["host-a"]["run"] == "run-hang"

    clean = subprocess.run([*args, "clean"], capture_output=True, text=True, env=env, timeout=120)
    assert clean.stdout == "inside\nleft\n", clean.stderr
    assert "host-a" not in m.holders()

    # two runs on one machine: the first to leave stays a holder while the other uses it
    other = subprocess.Popen([*args, "hang"], stdout=subprocess.PIPE, text=True, env=env)
    workers.append(other)
    assert other.stdout is not None and other.stdout.readline() == "inside\n"
    clean = subprocess.run([*args, "clean"], capture_output=True, text=True, env=env, timeout=120)
    assert clean.stdout == "inside\nleft\n", clean.stderr
    assert m.holders()["host-a"]["run"] == "run-clean"


def test_erase_deletes_every_version_of_unreferenced_objects_and_keeps_the_rest(
    state: ContractStore, s3_client: Any, s3_bucket: str, tmp_path: Path
) -> None:
    s3_client.put_bucket_versioning(Bucket=s3_bucket, VersioningConfiguration={"Status": "Enabled"})
    root = tmp_path / "a" / C
    a = mirror(root, state, s3_client, s3_bucket, "host-a")
    write(root, "takeover/baseline/etc.json", b"client file list")
    write(root, "bundles/b1/v1.tar.age", b"sealed volume")
    write(root, "takeover/documents/report.md", b"kept evidence")
    a.push()
    write(root, "bundles/b1/v1.tar.age", b"sealed volume, second seal")  # 2nd object
    a.push()
    orphan = f"team/evidence/{C}/objects/" + "ab" * 32  # a killed push's upload
    s3_client.put_object(Bucket=s3_bucket, Key=orphan, Body=b"orphan v1")
    s3_client.put_object(Bucket=s3_bucket, Key=orphan, Body=b"orphan v2")
    s3_client.delete_object(Bucket=s3_bucket, Key=orphan)  # and a delete marker
    assert len(keys(s3_client, s3_bucket)) == 7

    erased = a.erase(["bundles", "takeover/baseline"])
    assert (erased.deleted, erased.kept, erased.failed) == (4, 1, ())
    assert erased.where == a.where
    left = keys(s3_client, s3_bucket)
    assert len(left) == 1  # one version of one object: the report's
    index = index_of(state)
    assert set(index["files"]) == {"takeover/documents/report.md"}
    assert set(index["erased"]) == {"bundles/b1/v1.tar.age", "takeover/baseline/etc.json"}
    b_root = tmp_path / "b" / C
    mirror(b_root, state, s3_client, s3_bucket, "host-b").pull()
    assert files_of(b_root) == {"takeover/documents/report.md": (b"kept evidence", 0o600)}


def test_erase_reports_a_refused_deletion_as_failed_not_deleted(
    state: ContractStore, s3_client: Any, s3_bucket: str, tmp_path: Path
) -> None:
    root = tmp_path / "a" / C
    a = mirror(root, state, s3_client, s3_bucket, "host-a")
    write(root, "bundles/b1/v1.tar.age", b"sealed")
    a.push()

    class Refusing:
        """The real client, whose DeleteObjects answers 200 with a per-key AccessDenied."""

        def __getattr__(self, name: str) -> Any:
            return getattr(s3_client, name)

        def delete_objects(self, **kwargs: Any) -> dict[str, Any]:
            objects = kwargs["Delete"]["Objects"]
            return {"Errors": [{"Key": o["Key"], "Code": "AccessDenied"} for o in objects]}

    a.client = Refusing()  # type: ignore[assignment]
    erased = a.erase(["bundles"])
    assert erased.deleted == 0
    assert len(erased.failed) == 1 and erased.failed[0].endswith("(AccessDenied)")
    assert len(keys(s3_client, s3_bucket)) == 1  # still there, and said so


def test_excluded_files_never_reach_s3(
    state: ContractStore, s3_client: Any, s3_bucket: str, tmp_path: Path
) -> None:
    root = tmp_path / "a" / C
    a = mirror(root, state, s3_client, s3_bucket, "host-a")
    excluded = [
        "checklists/takeover.json",
        "checklists/takeover.json.pending",
        "audit.log",
        "audit-checkpoints.jsonl",
        "vault.age",
        "vault.age.lock",
        "known_hosts",
        "incidents.jsonl",
        "onsite.jsonl",
        "visits.jsonl",
        "schedules.json",
        "takeover/writer.lease",
        "operational/writer-backups.lease",
        "operational/alerts-sent.json.lock",
        "takeover/.inventory.json.k3j4h5.tmp",
    ]
    for rel in excluded:
        write(root, rel, b"not evidence: " + rel.encode())
    write(root, "takeover/inventory.json", b"evidence")
    (root / "takeover" / "link.json").symlink_to(root / "vault.age")
    sent = a.push()
    assert sent.files == 1
    assert list(index_of(state)["files"]) == ["takeover/inventory.json"]
    assert len(keys(s3_client, s3_bucket)) == 1
    assert (root / SYNC_STATE_FILE).stat().st_mode & 0o777 == 0o600


def test_the_url_chooses_the_mirror(
    s3_env: Any, s3_bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = PostgresStore.__new__(PostgresStore)  # never used: only passed through
    monkeypatch.delenv(EVIDENCE_URL_ENV, raising=False)
    assert evidence_mirror(C, tmp_path, store) is None
    monkeypatch.setenv(EVIDENCE_URL_ENV, "file:///srv/evidence")
    assert evidence_mirror(C, tmp_path, store) is None
    monkeypatch.setenv(EVIDENCE_URL_ENV, f"s3://{s3_bucket}/team")
    found = evidence_mirror(C, tmp_path, store)
    assert found is not None and found.where == f"s3://{s3_bucket}/team/{C}/"
    assert ":" in found.worker
    for bad in ("s3://Bad_Bucket/x", "ftp://host/x"):
        monkeypatch.setenv(EVIDENCE_URL_ENV, bad)
        with pytest.raises(UsageError, match=EVIDENCE_URL_ENV) as caught:
            evidence_mirror(C, tmp_path, store)
        assert "\n" not in str(caught.value)


def test_an_unreachable_endpoint_is_one_line_naming_endpoint_bucket_and_operation(
    state: ContractStore, tmp_path: Path
) -> None:
    from tests.fixtures.s3 import free_port, make_client

    client = make_client(f"http://127.0.0.1:{free_port()}")
    root = tmp_path / "a" / C
    write(root, "takeover/inventory.json", b"evidence")
    a = mirror(root, state, client, "some-bucket", "host-a")
    started = time.monotonic()
    with pytest.raises(HandoverError) as caught:
        a.push()
    message = str(caught.value)
    assert "\n" not in message
    assert "127.0.0.1" in message and "some-bucket" in message and "evidence head" in message
    assert "testing" not in message  # the dummy secret key
    assert time.monotonic() - started < 120


def test_a_command_reading_outside_a_run_refreshes_only_what_it_reads(
    s3_env: None, s3_bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`handover acceptance|report|status` on an operator's machine: the exit state as stored."""
    from handover.checklist.store import open_contract_store
    from handover.evidence import refresh_for_reading
    from handover.state.layout import ContractPaths

    monkeypatch.setenv("HANDOVER_HOME", str(tmp_path / "ops-home"))
    monkeypatch.delenv("HANDOVER_STATE_URL", raising=False)
    monkeypatch.setenv(EVIDENCE_URL_ENV, f"s3://{s3_bucket}/team")
    worker_root = tmp_path / "worker" / C
    write(worker_root, "reversibility/exit-state.json", b'{"stage": "delivered"}')
    write(worker_root, "takeover/baseline/etc.json", b"client data")
    worker = evidence_mirror(C, worker_root, open_contract_store())
    assert worker is not None
    worker.push()

    ops_root = ContractPaths(C).root
    write(ops_root, "reversibility/exit-state.json", b'{"stage": "sealed"}')  # stale
    refresh_for_reading(C, ops_root, ["reversibility"])
    assert (ops_root / "reversibility/exit-state.json").read_bytes() == b'{"stage": "delivered"}'
    assert not (ops_root / "takeover").exists()  # only what the command reads

    monkeypatch.delenv(EVIDENCE_URL_ENV)
    write(ops_root, "reversibility/exit-state.json", b"local only")
    refresh_for_reading(C, ops_root, ["reversibility"])  # no store: the folder is the record
    assert (ops_root / "reversibility/exit-state.json").read_bytes() == b"local only"
