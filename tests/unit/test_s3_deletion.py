"""Deleting every version under an S3 prefix, against an in-memory fake (no network)."""

from __future__ import annotations

from typing import Any, cast

import botocore.exceptions
import pytest

from handover.connectors.s3.client import S3Client
from handover.connectors.s3.deletion import DELETE_BATCH, FailedDeletion, delete_prefix
from handover.errors import AuthFailed


class FakeVersionedBucket:
    """list_object_versions pages and DeleteObjects, refusing the keys in `refuse`."""

    def __init__(self, pages: list[dict[str, Any]], refuse: set[str] = frozenset()) -> None:
        self.pages = pages
        self.refuse = refuse
        self.deleted: list[tuple[str, str]] = []
        self.calls: list[dict[str, Any]] = []

    def get_paginator(self, name: str) -> FakeVersionedBucket:
        assert name == "list_object_versions"
        return self

    def paginate(self, **kwargs: Any) -> list[dict[str, Any]]:
        self.calls.append(kwargs)
        return self.pages

    def delete_objects(self, Bucket: str, Delete: dict[str, Any]) -> dict[str, Any]:
        assert Delete["Quiet"] is True and len(Delete["Objects"]) <= DELETE_BATCH
        errors = []
        for obj in Delete["Objects"]:
            if obj["Key"] in self.refuse:
                errors.append({**obj, "Code": "AccessDenied", "Message": "Access Denied"})
            else:
                self.deleted.append((obj["Key"], obj["VersionId"]))
        return {"Errors": errors} if errors else {}


def _version(key: str, version: str, size: int) -> dict[str, Any]:
    return {"Key": key, "VersionId": version, "Size": size}


def test_every_version_and_marker_is_deleted_and_counted() -> None:
    versions = [_version(f"p/k{i}", "v1", 10) for i in range(DELETE_BATCH + 1)]
    pages = [
        {"Versions": versions, "DeleteMarkers": [{"Key": "p/k0", "VersionId": "m1"}]},
        {"Versions": [_version("p/k0", "v0", 5)]},
    ]
    bucket = FakeVersionedBucket(pages)
    counts = delete_prefix(cast(S3Client, bucket), "b", "p/")
    assert bucket.calls == [{"Bucket": "b", "Prefix": "p/"}]
    assert (counts.objects, counts.bytes, counts.failed) == (DELETE_BATCH + 2, 10 * 1001 + 5, ())
    assert ("p/k0", "m1") in bucket.deleted and len(bucket.deleted) == DELETE_BATCH + 3


def test_versions_s3_refuses_are_returned_not_counted() -> None:
    pages = [{"Versions": [_version("p/a", "v1", 10), _version("p/b", "v1", 7)]}]
    bucket = FakeVersionedBucket(pages, refuse={"p/b"})
    counts = delete_prefix(cast(S3Client, bucket), "b", "p/")
    assert (counts.objects, counts.bytes) == (1, 10)
    assert counts.failed == (FailedDeletion("p/b", "v1", "AccessDenied", "Access Denied"),)


def test_a_failed_call_is_a_connector_error_naming_the_prefix() -> None:
    class Refusing(FakeVersionedBucket):
        def paginate(self, **kwargs: Any) -> list[dict[str, Any]]:
            raise botocore.exceptions.ClientError(
                {"Error": {"Code": "AccessDenied", "Message": "no"}}, "ListObjectVersions"
            )

    with pytest.raises(AuthFailed, match=r"s3://b/p/: access denied"):
        delete_prefix(cast(S3Client, Refusing([])), "b", "p/")
