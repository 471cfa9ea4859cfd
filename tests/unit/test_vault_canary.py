"""The canary helpers of tests/canary.py find every planted form, and nothing else."""

from __future__ import annotations

import base64
import gzip
import json
import sqlite3
import zipfile
from pathlib import Path

import pytest

from tests.canary import make_canaries, search_canaries, search_text


def test_canaries_are_random_and_of_the_right_kinds() -> None:
    first, second = make_canaries(), make_canaries()
    assert set(first) == {"password", "ssh_private_key", "s3_secret_key"}
    assert all(first[k] != second[k] for k in first)
    assert first["ssh_private_key"].startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    assert len(first["s3_secret_key"]) == 40


def test_clean_tree_has_no_hits(tmp_path: Path) -> None:
    canaries = make_canaries()
    (tmp_path / "a.txt").write_text("nothing to see " * 1000)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.bin").write_bytes(bytes(range(256)) * 100)
    assert search_canaries(canaries, [tmp_path]) == []


def test_every_form_and_container_is_found(tmp_path: Path) -> None:
    canaries = make_canaries()
    pw, key, s3 = canaries["password"], canaries["ssh_private_key"], canaries["s3_secret_key"]
    (tmp_path / "log.txt").write_text(f"connecting with {pw} ok\n")
    # a PEM inside JSON (escaped newlines) and base64 of an S3 key at each alignment
    (tmp_path / "result.json").write_text(json.dumps({"value": key}))
    for pad in range(3):
        blob = base64.b64encode(b"x" * pad + s3.encode() + b"tail").decode()
        (tmp_path / f"b64-{pad}.txt").write_text(f"data={blob}")
    urlsafe = base64.urlsafe_b64encode(b"ab" + pw.encode()).decode()
    (tmp_path / "urlsafe.txt").write_text(urlsafe)
    # SQLite: a row inserted after creation, also found by the .dump
    db = tmp_path / "prefect.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE t (v TEXT)")
    conn.execute("INSERT INTO t VALUES (?)", (f"secret={s3}",))
    conn.commit()
    conn.close()
    with gzip.open(tmp_path / "logs.gz", "wb") as handle:
        handle.write(f"leak {pw}".encode())
    with zipfile.ZipFile(tmp_path / "arch.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("inner/file.txt", key)
    # a canary split across the chunk boundary of the streaming scan
    big = tmp_path / "big.bin"
    big.write_bytes(b"\0" * ((1 << 20) - 5) + s3.encode() + b"\0" * 10)

    hits = search_canaries(canaries, [tmp_path])
    joined = "\n".join(hits)
    assert f"{tmp_path / 'log.txt'}: password [raw]" in hits
    assert f"{tmp_path / 'result.json'}: ssh_private_key" in joined
    for pad in range(3):
        assert f"{tmp_path / f'b64-{pad}.txt'}: s3_secret_key [base64@{pad}]" in hits
    # (identical to standard base64 when the encoding has no '+' or '/': labelled base64@2 then)
    assert f"{tmp_path / 'urlsafe.txt'}: password [base64" in joined
    assert f"{db} (sqlite .dump): s3_secret_key [raw]" in hits
    assert f"{tmp_path / 'logs.gz'} (gunzip): password [raw]" in hits
    assert f"{tmp_path / 'arch.zip'}!inner/file.txt: ssh_private_key [raw]" in hits
    assert f"{big}: s3_secret_key [raw]" in hits


def test_search_text_labels_hits() -> None:
    canaries = make_canaries()
    assert search_text(canaries, "all clean", "logs") == []
    hit = search_text(canaries, f"event payload {canaries['password']}", "events")
    assert hit == ["events: password [raw]"]


def test_urlsafe_base64_is_searched_on_its_own() -> None:
    canaries = {"odd": "??>>??>>??>>??>>??>>"}  # standard base64 of this holds '+' and '/'
    standard = base64.b64encode(canaries["odd"].encode())
    urlsafe = base64.urlsafe_b64encode(canaries["odd"].encode())
    assert standard != urlsafe
    assert search_text(canaries, b"v=" + urlsafe, "x") == ["x: odd [base64url@0]"]
    assert search_text(canaries, b"v=" + standard, "x") == ["x: odd [base64@0]"]


def test_canaries_survive_vault_and_kdbx_export(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from handover.bundle.age import X25519Identity
    from handover.secrets.kdbx import export_kdbx
    from handover.secrets.vault import Kind, Vault, VaultEntry
    from tests.canary import kdbx_plaintext

    monkeypatch.setenv("HANDOVER_VAULT_KEY", str(X25519Identity.generate()))
    canaries = make_canaries()
    vault = Vault("acme-2026")
    vault.add(VaultEntry(name="web01-root"), canaries["password"])
    vault.add(VaultEntry(name="deploy", kind=Kind.SSH_KEY), canaries["ssh_private_key"])
    vault.add(VaultEntry(name="s3", kind=Kind.API_KEY, username="AKIA"), canaries["s3_secret_key"])
    assert search_canaries(canaries, [vault.path.parent]) == []  # encrypted at rest
    out = tmp_path / "credentials.kdbx"
    password = export_kdbx(vault, out)
    assert search_canaries(canaries, [out]) == []
    found = search_text(canaries, kdbx_plaintext(out, password), "credentials.kdbx")
    assert {hit.split(": ")[1].split(" [")[0] for hit in found} == set(canaries)
