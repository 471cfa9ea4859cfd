"""Backups kept in S3: run_backup / prune / restore_check through S3BackupStore, and the
lifecycle-rule alternative, against a moto server over HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from handover.bundle.age import X25519Identity
from handover.connectors.s3 import (
    S3BackupStore,
    S3PrefixSource,
    install_lifecycle_rule,
    s3_backup_store_from_url,
)
from handover.errors import PermanentConnectorError
from handover.operations.backup import list_backups, prune, run_backup
from handover.operations.restore_check import restore_check
from tests.fixtures.s3 import fill_bucket

pytestmark = pytest.mark.integration
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def test_backups_put_prune_and_restore_check_in_s3(s3_client: Any, s3_bucket: str) -> None:
    fill_bucket(s3_client, s3_bucket, {f"data/{i}.txt": f"{i}\n".encode() for i in range(20)})
    source = S3PrefixSource(s3_client, s3_bucket, "data/", "docs")
    store = S3BackupStore(s3_client, s3_bucket, "backups/acme-2026")
    identity = X25519Identity.generate()
    for days_ago in (40, 35, 3, 2, 1):
        run_backup(
            store,
            "acme-2026",
            "docs",
            source,
            [identity.recipient()],
            now=NOW - timedelta(days=days_ago),
        )
    records = list_backups(store, "acme-2026", "docs")
    assert len(records) == 5
    names = store.list("acme-2026/docs/")
    assert len(names) == 10 and all(n.startswith("acme-2026/docs/2026") for n in names)

    deleted = prune(store, "acme-2026", "docs", retention_days=30, keep_last=2, now=NOW)
    assert len(deleted) == 4  # the two older than 30 days, record and volume each
    remaining = list_backups(store, "acme-2026", "docs")
    assert [r.created_at for r in remaining] == [NOW - timedelta(days=d) for d in (3, 2, 1)]

    result = restore_check(store, remaining[-1], [identity])
    assert result.ok and result.files_checked == 20 and result.problems == []

    # A flipped byte in the stored volume is caught by the restore check.
    key = f"backups/acme-2026/{remaining[0].volume}"
    body = bytearray(s3_client.get_object(Bucket=s3_bucket, Key=key)["Body"].read())
    body[-20] ^= 0x40
    s3_client.put_object(Bucket=s3_bucket, Key=key, Body=bytes(body))
    damaged = restore_check(store, remaining[0], [identity])
    assert not damaged.ok and damaged.problems


def test_store_from_url_and_missing_object(s3_env: Any, s3_bucket: str) -> None:
    store = s3_backup_store_from_url(f"s3://{s3_bucket}/provider")
    assert store.describe() == f"s3://{s3_bucket}/provider/"
    with store.put("a/b.json") as out:
        out.write(b"{}")
    assert store.list("a/") == ["a/b.json"]
    with store.open_read("a/b.json") as handle:
        assert handle.read() == b"{}"
    store.delete("a/b.json")
    store.delete("a/b.json")  # already gone: fine
    assert store.list("") == []
    with pytest.raises(PermanentConnectorError, match="no such object"), store.open_read("a/b"):
        pass


def test_lifecycle_rule_is_installed_and_replaced_not_duplicated(
    s3_client: Any, s3_bucket: str
) -> None:
    s3_client.put_bucket_lifecycle_configuration(
        Bucket=s3_bucket,
        LifecycleConfiguration={
            "Rules": [
                {
                    "ID": "client-rule",
                    "Filter": {"Prefix": "logs/"},
                    "Status": "Enabled",
                    "Expiration": {"Days": 90},
                }
            ]
        },
    )
    install_lifecycle_rule(s3_client, s3_bucket, "backups/acme-2026", 30)
    install_lifecycle_rule(s3_client, s3_bucket, "backups/acme-2026", 45)
    rules = s3_client.get_bucket_lifecycle_configuration(Bucket=s3_bucket)["Rules"]
    by_id = {r["ID"]: r for r in rules}
    assert set(by_id) == {"client-rule", "handover:backups/acme-2026/"}
    ours = by_id["handover:backups/acme-2026/"]
    assert ours["Expiration"]["Days"] == 45
    assert ours["Filter"]["Prefix"] == "backups/acme-2026/"
    assert ours["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] == 1


def test_lifecycle_rule_on_missing_bucket(s3_client: Any, tmp_path: Path) -> None:
    with pytest.raises(PermanentConnectorError, match="s3://no-such-bucket-ll"):
        install_lifecycle_rule(s3_client, "no-such-bucket-ll", "x", 30)
