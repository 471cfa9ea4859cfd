"""Backups: round trip through age/tar/sha256sum, restore check, tampering, prune."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from handover.bundle.age import X25519Identity
from handover.connectors.local import LocalConnector
from handover.errors import ConnectorError, NoMatchingIdentity, UsageError
from handover.operations.backup import (
    BackupRecord,
    LocalBackupStore,
    list_backups,
    prune,
    run_backup,
)
from handover.operations.restore_check import restore_check
from tests.conftest import require_binary

NOW = datetime(2026, 11, 27, 12, 0, 0, 123000, tzinfo=UTC)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "host"
    docs = root / "srv" / "docs"
    (docs / "RH").mkdir(parents=True)
    (docs / "Compte-rendu réunion été.txt").write_text("ordre du jour\n")
    (docs / "RH" / "salaires confidentiels.csv").write_bytes(b"nom;montant\n" * 5000)
    (docs / "vide.txt").write_bytes(b"")
    return root


def backup(
    store: LocalBackupStore, tree: Path, identity: X25519Identity, now: datetime
) -> BackupRecord:
    source = LocalConnector("files01", tree).tree_source("files01-docs", ["/srv/docs"])
    return run_backup(store, "acme-2026", "docs", source, [identity.recipient()], now=now)


def test_backup_round_trip_with_standard_tools(tmp_path: Path, tree: Path) -> None:
    age = require_binary("age", "age")
    identity = X25519Identity.generate()
    store = LocalBackupStore(tmp_path / "backups")

    record = backup(store, tree, identity, NOW)

    assert record.volume == "acme-2026/docs/20261127T120000.123Z.tar.age"
    assert (record.file_count, record.data_bytes) == (3, 14 + 12 * 5000)
    assert record.member_count >= 5  # three files and their folders
    volume = tmp_path / "backups" / record.volume
    assert volume.stat().st_size == record.size and volume.stat().st_mode & 0o777 == 0o600
    plain_record = (tmp_path / "backups" / record.record_name).read_text()
    assert json.loads(plain_record)["sha256"] == record.sha256
    for secret_name in ("réunion", "salaires", "RH", "srv/docs", "vide"):
        assert secret_name not in plain_record  # no client file name in plaintext
    assert list_backups(store, "acme-2026", "docs") == [record]

    key = tmp_path / "backup.key"
    key.write_text(str(identity) + "\n")
    out = tmp_path / "restored"
    out.mkdir()
    decrypted = subprocess.run(
        [age, "-d", "-i", str(key), str(volume)], capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(out)], input=decrypted, check=True)
    check = subprocess.run(
        ["sha256sum", "-c", "SHA256SUMS"], cwd=out, capture_output=True, text=True, check=True
    )
    assert check.stdout.count(": OK") == 3
    assert (out / "srv/docs/Compte-rendu réunion été.txt").read_text() == "ordre du jour\n"


def test_restore_check_passes_on_intact_backup(tmp_path: Path, tree: Path) -> None:
    identity = X25519Identity.generate()
    store = LocalBackupStore(tmp_path / "backups")
    record = backup(store, tree, identity, NOW)

    result = restore_check(store, record, [identity])

    assert result.ok and result.problems == []
    assert result.files_checked == 3 and result.bytes_checked == record.data_bytes
    assert not list((tmp_path / "backups").rglob("*.csv"))  # nothing decrypted to disk


def test_restore_check_detects_a_flipped_byte(tmp_path: Path, tree: Path) -> None:
    identity = X25519Identity.generate()
    store = LocalBackupStore(tmp_path / "backups")
    record = backup(store, tree, identity, NOW)
    volume = tmp_path / "backups" / record.volume
    data = bytearray(volume.read_bytes())
    data[len(data) // 2] ^= 0x01
    volume.write_bytes(bytes(data))

    result = restore_check(store, record, [identity])

    assert not result.ok
    text = " ".join(result.problems)
    assert "does not match its record" in text
    assert "salaires" not in text and "réunion" not in text


def test_restore_check_detects_a_volume_swapped_for_another(tmp_path: Path, tree: Path) -> None:
    """A different, valid backup under the old name: age decrypts it, the record does not fit."""
    identity = X25519Identity.generate()
    store = LocalBackupStore(tmp_path / "backups")
    first = backup(store, tree, identity, NOW)
    (tree / "srv" / "docs" / "vide.txt").write_text("changed")
    second = backup(store, tree, identity, NOW + timedelta(hours=1))
    (tmp_path / "backups" / first.volume).write_bytes(
        (tmp_path / "backups" / second.volume).read_bytes()
    )

    result = restore_check(store, first, [identity])

    assert not result.ok
    assert any("content differs from the one recorded" in p for p in result.problems)


def test_restore_check_with_wrong_key_raises(tmp_path: Path, tree: Path) -> None:
    store = LocalBackupStore(tmp_path / "backups")
    record = backup(store, tree, X25519Identity.generate(), NOW)
    with pytest.raises(NoMatchingIdentity):
        restore_check(store, record, [X25519Identity.generate()])


def test_failed_source_leaves_nothing(tmp_path: Path) -> None:
    store = LocalBackupStore(tmp_path / "backups")
    source = LocalConnector("db01", tmp_path).dump_source("db01-db", "echo no >&2; exit 1", "a.sql")
    with pytest.raises(ConnectorError, match="exited with status 1"):
        run_backup(store, "acme-2026", "db", source, [X25519Identity.generate().recipient()])
    assert store.list("") == []
    assert [p.name for p in (tmp_path / "backups").rglob("*")] == ["acme-2026", "db"]


def test_bad_names_and_missing_recipients_are_usage_errors(tmp_path: Path, tree: Path) -> None:
    store = LocalBackupStore(tmp_path / "backups")
    source = LocalConnector("h", tree).tree_source("h-docs", ["/srv/docs"])
    recipient = X25519Identity.generate().recipient()
    with pytest.raises(UsageError, match=r"dataset '\.\./x'"):
        run_backup(store, "acme", "../x", source, [recipient])
    with pytest.raises(UsageError, match="no recipient"):
        run_backup(store, "acme", "docs", source, [])


def test_prune_keeps_recent_and_newest_keep_last(tmp_path: Path, tree: Path) -> None:
    identity = X25519Identity.generate()
    store = LocalBackupStore(tmp_path / "backups")
    ages_days = [90, 60, 45, 40, 20, 5, 1]
    records = [backup(store, tree, identity, NOW - timedelta(days=d)) for d in ages_days]
    orphan = "acme-2026/docs/20250101T000000.000Z.tar.age"
    with store.put(orphan) as handle:
        handle.write(b"left by a crashed run")
    with store.put("acme-2026/docs/notes.txt") as handle:
        handle.write(b"not ours")

    deleted = prune(store, "acme-2026", "docs", retention_days=30, keep_last=2, now=NOW)

    old = [r for r, d in zip(records, ages_days, strict=True) if d > 30]
    assert sorted(deleted) == sorted(
        [orphan] + [r.volume for r in old] + [r.record_name for r in old]
    )
    assert [r.volume for r in list_backups(store, "acme-2026", "docs")] == [
        r.volume for r in records[4:]
    ]
    assert "acme-2026/docs/notes.txt" in store.list("acme-2026/docs/")


def test_prune_never_deletes_the_newest_keep_last(tmp_path: Path, tree: Path) -> None:
    identity = X25519Identity.generate()
    store = LocalBackupStore(tmp_path / "backups")
    records = [backup(store, tree, identity, NOW - timedelta(days=d)) for d in (300, 200, 100)]

    deleted = prune(store, "acme-2026", "docs", retention_days=30, keep_last=2, now=NOW)

    assert deleted == [records[0].record_name, records[0].volume]
    assert len(list_backups(store, "acme-2026", "docs")) == 2
    assert prune(store, "acme-2026", "docs", retention_days=30, keep_last=2, now=NOW) == []


def test_same_millisecond_backups_get_distinct_names(tmp_path: Path, tree: Path) -> None:
    identity = X25519Identity.generate()
    store = LocalBackupStore(tmp_path / "backups")
    first = backup(store, tree, identity, NOW)
    second = backup(store, tree, identity, NOW)
    assert first.volume != second.volume
    assert len(list_backups(store, "acme-2026", "docs")) == 2
