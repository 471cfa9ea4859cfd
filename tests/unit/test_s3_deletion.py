"""Deleting every version under an S3 prefix, against an in-memory fake (no network).

The fake keeps state: what DeleteObjects removes is gone from the next
listing, so the second listing `delete_prefix` makes is a real check.
"""

from __future__ import annotations

from typing import Any, cast

import botocore.exceptions
import pytest

from handover.connectors.s3.client import S3Client
from handover.connectors.s3.deletion import (
    DELETE_BATCH,
    FailedDeletion,
    delete_prefix,
    failure_summary,
)
from handover.errors import AuthFailed

PAGE = 1000


class FakeVersionedBucket:
    """Versions and delete markers; DeleteObjects refuses the keys in `refuse`.

    `with_version_id`: whether an error entry carries the VersionId (AWS does;
    moto leaves it out). `ignore`: keys DeleteObjects reports nothing about
    but silently keeps (a server that lies); `appear`: a version written
    during the deletion, listed the second time only.
    """

    def __init__(
        self,
        versions: list[dict[str, Any]],
        markers: list[dict[str, Any]] = (),  # type: ignore[assignment]
        refuse: set[str] = frozenset(),  # type: ignore[assignment]
        *,
        with_version_id: bool = True,
        ignore: set[str] = frozenset(),  # type: ignore[assignment]
        appear: dict[str, Any] | None = None,
    ) -> None:
        self.versions = list(versions)
        self.markers = list(markers)
        self.refuse = refuse
        self.with_version_id = with_version_id
        self.ignore = ignore
        self.appear = appear
        self.deleted: list[tuple[str, str]] = []
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self._name = ""

    def get_paginator(self, name: str) -> FakeVersionedBucket:
        assert name in ("list_object_versions", "list_objects_v2")
        self._name = name
        return self

    def paginate(self, **kwargs: Any) -> list[dict[str, Any]]:
        self.calls.append((self._name, kwargs))
        if self._name == "list_objects_v2":
            latest = {v["Key"]: v for v in self.versions}
            return [{"Contents": list(latest.values())}] if latest else [{}]
        if len([c for c in self.calls if c[0] == "list_object_versions"]) > 1 and self.appear:
            self.versions.append(self.appear)
        pages = []
        for start in range(0, max(len(self.versions), 1), PAGE):
            page: dict[str, Any] = {"Versions": self.versions[start : start + PAGE]}
            if start == 0 and self.markers:
                page["DeleteMarkers"] = list(self.markers)
            pages.append(page)
        return pages

    def delete_objects(self, Bucket: str, Delete: dict[str, Any]) -> dict[str, Any]:
        assert Delete["Quiet"] is True and len(Delete["Objects"]) <= DELETE_BATCH
        errors = []
        for obj in Delete["Objects"]:
            ident = (obj["Key"], obj["VersionId"])
            if obj["Key"] in self.refuse:
                error = {"Key": obj["Key"], "Code": "AccessDenied", "Message": "Access Denied"}
                if self.with_version_id:
                    error["VersionId"] = obj["VersionId"]
                errors.append(error)
            elif obj["Key"] not in self.ignore:
                self.deleted.append(ident)
                self.versions = [v for v in self.versions if (v["Key"], v["VersionId"]) != ident]
                self.markers = [m for m in self.markers if (m["Key"], m["VersionId"]) != ident]
        return {"Errors": errors} if errors else {}


def _version(key: str, version: str, size: int) -> dict[str, Any]:
    return {"Key": key, "VersionId": version, "Size": size}


def test_every_version_and_marker_is_deleted_counted_and_listed_again() -> None:
    versions = [_version(f"p/k{i}", "v1", 10) for i in range(DELETE_BATCH + 1)]
    versions.append(_version("p/k0", "v0", 5))
    bucket = FakeVersionedBucket(versions, markers=[{"Key": "p/k0", "VersionId": "m1"}])
    counts = delete_prefix(cast(S3Client, bucket), "b", "p/")
    assert (counts.objects, counts.bytes, counts.failed) == (DELETE_BATCH + 2, 10 * 1001 + 5, ())
    assert (counts.found, counts.remaining_versions, counts.remaining_objects) == (1003, 0, 0)
    assert counts.complete
    assert ("p/k0", "m1") in bucket.deleted and len(bucket.deleted) == DELETE_BATCH + 3
    listings = [name for name, _ in bucket.calls]
    assert listings == ["list_object_versions", "list_object_versions", "list_objects_v2"]
    assert all(kwargs == {"Bucket": "b", "Prefix": "p/"} for _, kwargs in bucket.calls)


def test_an_empty_prefix_is_found_empty() -> None:
    counts = delete_prefix(cast(S3Client, FakeVersionedBucket([])), "b", "p/")
    assert (counts.found, counts.objects, counts.complete) == (0, 0, True)


@pytest.mark.parametrize("with_version_id", [True, False])
def test_versions_s3_refuses_are_returned_not_counted(with_version_id: bool) -> None:
    versions = [_version("p/a", "v1", 10), _version("p/b", "v1", 7), _version("p/b", "v2", 3)]
    bucket = FakeVersionedBucket(versions, refuse={"p/b"}, with_version_id=with_version_id)
    counts = delete_prefix(cast(S3Client, bucket), "b", "p/")
    assert (counts.objects, counts.bytes) == (1, 10)
    assert [(f.key, f.code) for f in counts.failed] == [("p/b", "AccessDenied")] * 2
    assert (counts.remaining_versions, counts.remaining_objects) == (2, 1)
    assert not counts.complete
    assert failure_summary(counts.failed) == "2 object version(s) not deleted (AccessDenied: 2)"


def test_what_the_second_listing_shows_is_never_counted_as_deleted() -> None:
    # the server answers "no error" but keeps p/b; a version appears meanwhile
    versions = [_version("p/a", "v1", 10), _version("p/b", "v1", 7)]
    bucket = FakeVersionedBucket(versions, ignore={"p/b"}, appear=_version("p/new", "v1", 1))
    counts = delete_prefix(cast(S3Client, bucket), "b", "p/")
    assert counts.failed == ()
    assert (counts.objects, counts.bytes) == (1, 10)  # p/a only
    assert (counts.remaining_versions, counts.remaining_objects) == (2, 2)
    assert not counts.complete


def test_the_failure_summary_groups_codes_and_names_no_key() -> None:
    failed = [
        FailedDeletion("p/secret-name", "v1", "AccessDenied", "x"),
        FailedDeletion("p/other", "v1", "InternalError", "y"),
        FailedDeletion("p/third", "", "", ""),
        FailedDeletion("p/fourth", "v2", "AccessDenied", "x"),
    ]
    summary = failure_summary(failed)
    assert summary == (
        "4 object version(s) not deleted (AccessDenied: 2, InternalError: 1, no error code: 1)"
    )


def test_a_failed_call_is_a_connector_error_naming_the_prefix() -> None:
    class Refusing(FakeVersionedBucket):
        def paginate(self, **kwargs: Any) -> list[dict[str, Any]]:
            raise botocore.exceptions.ClientError(
                {"Error": {"Code": "AccessDenied", "Message": "no"}}, "ListObjectVersions"
            )

    with pytest.raises(AuthFailed, match=r"s3://b/p/: access denied"):
        delete_prefix(cast(S3Client, Refusing([])), "b", "p/")
