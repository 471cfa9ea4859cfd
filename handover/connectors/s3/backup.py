"""Backups kept in S3: a BackupStore on a per-contract prefix, and retention by lifecycle rule.

`S3BackupStore` plugs S3 into handover.backup (`run_backup`, `prune`,
`list_backups`, `restore_check` work unchanged): writes are streaming
multipart uploads that appear only when complete, reads are streaming GETs.
Retention is either `prune` run by the flow (keeps the newest `keep_last`
whatever their age) or `install_lifecycle_rule`, which lets S3 expire old
objects itself (no keep-last guarantee: say so to the operator).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, BinaryIO, cast

from handover.connectors.s3.client import (
    S3Client,
    S3SettingsLike,
    join_key,
    normalize_prefix,
    parse_s3_url,
    s3_client,
)
from handover.connectors.s3.delivery import S3BundleSource, S3Target
from handover.connectors.s3.errors import raise_s3_error, s3_error_code, s3_errors
from handover.errors import UsageError

__all__ = ["S3BackupStore", "install_lifecycle_rule", "s3_backup_store_from_url"]


def _check_name(name: str) -> None:
    if not name or name.startswith("/") or any(p in ("", ".", "..") for p in name.split("/")):
        raise UsageError(f"backup store: {name!r} is not a relative object name")


class S3BackupStore:
    """A handover.backup.BackupStore on `s3://bucket/prefix`."""

    def __init__(self, client: S3Client, bucket: str, prefix: str, sse: str | None = None) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = normalize_prefix(prefix)
        self._target = S3Target(client, bucket, self.prefix, sse)
        self._source = S3BundleSource(client, bucket, self.prefix)

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    @contextlib.contextmanager
    def put(self, name: str) -> Iterator[BinaryIO]:
        _check_name(name)
        with self._target.open_write(name) as handle:
            yield handle

    def list(self, prefix: str) -> list[str]:
        """Names under the store starting with `prefix`, sorted."""
        names: list[str] = []
        with s3_errors(f"s3://{self.bucket}/{self.prefix}{prefix}"):
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.prefix + prefix
            )
            for page in pages:
                for obj in page.get("Contents", []):
                    rel = obj["Key"][len(self.prefix) :]
                    if rel and not rel.endswith("/"):
                        names.append(rel)
        return sorted(names)

    @contextlib.contextmanager
    def open_read(self, name: str) -> Iterator[BinaryIO]:
        _check_name(name)
        with self._source.open_read(name) as handle:
            yield handle

    def delete(self, name: str) -> None:
        """Delete `name`; S3 does not complain about a name already gone."""
        _check_name(name)
        key = join_key(self.prefix, name)
        with s3_errors(f"s3://{self.bucket}/{key}"):
            self.client.delete_object(Bucket=self.bucket, Key=key)


def s3_backup_store_from_url(
    url: str, *, settings: S3SettingsLike | None = None, client: S3Client | None = None
) -> S3BackupStore:
    """An S3BackupStore for the playbook's `backups.target: s3://bucket/prefix`."""
    bucket, prefix = parse_s3_url(url)
    return S3BackupStore(client or s3_client(settings), bucket, prefix)


def install_lifecycle_rule(
    client: S3Client, bucket: str, prefix: str, retention_days: int
) -> dict[str, Any]:
    """Expire objects under `prefix` after `retention_days` (and stale uploads after 1 day).

    The rule's id is `handover:<prefix>`; other rules of the bucket are kept
    and a previous handover rule for the same prefix is replaced, so running
    it again is harmless. Returns the rule installed.
    """
    if retention_days < 1:
        raise UsageError(f"s3://{bucket}/{prefix}: retention_days must be ≥ 1")
    prefix = normalize_prefix(prefix)
    where = f"s3://{bucket}/{prefix}"
    rule_id = f"handover:{prefix}"[:255]
    rule: dict[str, Any] = {
        "ID": rule_id,
        "Filter": {"Prefix": prefix},
        "Status": "Enabled",
        "Expiration": {"Days": retention_days},
        "NoncurrentVersionExpiration": {"NoncurrentDays": 1},
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
    }
    rules: list[dict[str, Any]] = []
    try:
        current = client.get_bucket_lifecycle_configuration(Bucket=bucket)
        rules = [
            r
            for r in cast(list[dict[str, Any]], current.get("Rules", []))
            if r.get("ID") != rule_id
        ]
    except Exception as exc:
        if s3_error_code(exc) != "NoSuchLifecycleConfiguration":
            raise_s3_error(exc, where)
    with s3_errors(where):
        client.put_bucket_lifecycle_configuration(
            Bucket=bucket,
            LifecycleConfiguration=cast(Any, {"Rules": [*rules, rule]}),
        )
    return rule
