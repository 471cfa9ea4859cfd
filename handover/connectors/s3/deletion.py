"""Deleting everything under an S3 prefix: every object version and every delete marker, checked.

The erasure at exit removes the provider's copies kept in S3 (backups, the
delivered bundle). On a versioned bucket a plain delete only hides an object
behind a delete marker, so every version is listed and deleted by its id.

DeleteObjects answers per key inside a successful response (HTTP 200 with
`Errors`, e.g. AccessDenied for a version under object lock or legal hold):
the versions it refused are returned to the caller, never counted as
deleted. Some servers leave `VersionId` out of an error entry, so an error
naming a key alone refuses every version of that key in the batch.

A response is not proof: once the deletion has run, the prefix is listed
again, both as versions (versions and delete markers) and as plain objects,
and whatever is still there is reported in `remaining_*`; a version counted
as deleted that is listed again comes off the count, which therefore never
includes something still present. Nothing here names a key in a message: keys are client file
names.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

from handover.connectors.s3.client import S3Client
from handover.connectors.s3.errors import s3_errors

if TYPE_CHECKING:
    from mypy_boto3_s3.type_defs import ErrorTypeDef, ObjectIdentifierTypeDef

__all__ = ["DeletionCounts", "FailedDeletion", "delete_prefix", "failure_summary"]

DELETE_BATCH = 1000  # the most keys one DeleteObjects call accepts


@dataclass(frozen=True)
class FailedDeletion:
    """A version DeleteObjects refused, with S3's code and message for it ("" when not given)."""

    key: str
    version_id: str
    code: str
    message: str


@dataclass(frozen=True)
class DeletionCounts:
    """What `delete_prefix` found, removed and could not remove, checked by listing again.

    `objects`/`bytes`: object versions deleted and gone on the second listing
    (delete markers hold no data: not counted). `found`: versions and delete
    markers listed before deletion (0: the prefix was already empty).
    `remaining_versions`: versions and delete markers listed after deletion;
    `remaining_objects`: keys the plain object listing still shows.
    """

    objects: int
    bytes: int
    failed: tuple[FailedDeletion, ...] = ()
    found: int = 0
    remaining_versions: int = 0
    remaining_objects: int = 0

    @property
    def complete(self) -> bool:
        """True when S3 refused nothing and nothing is left under the prefix."""
        return not self.failed and not self.remaining_versions and not self.remaining_objects


def failure_summary(failed: tuple[FailedDeletion, ...] | list[FailedDeletion]) -> str:
    """`N object version(s) not deleted (Code: n, ...)`: counts and codes, never a key."""
    codes = Counter(f.code or "no error code" for f in failed)
    by_code = ", ".join(f"{code}: {count}" for code, count in sorted(codes.items()))
    return f"{len(failed)} object version(s) not deleted ({by_code})"


def delete_prefix(client: S3Client, bucket: str, prefix: str) -> DeletionCounts:
    """Delete every version and delete marker under `prefix`, then list it again.

    A refused version is neither counted as deleted nor raised: it is in
    `failed`, for the caller to decide; what the second listing still shows
    is in `remaining_*`. A failed call (listing, access to the bucket) raises
    a ConnectorError naming `s3://bucket/prefix`.
    """
    objects = size = found = 0
    failed: list[FailedDeletion] = []
    counted: set[int] = set()  # hashes of the versions counted as deleted
    with s3_errors(f"s3://{bucket}/{prefix}"):
        pages = client.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix)
        for page in pages:
            versions = page.get("Versions", [])
            markers = page.get("DeleteMarkers", [])
            found += len(versions) + len(markers)
            refused = _delete_versions(
                client,
                bucket,
                [{"Key": v["Key"], "VersionId": v["VersionId"]} for v in [*versions, *markers]],
            )
            refusals = _Refusals(refused)
            deleted = [v for v in versions if (v["Key"], v["VersionId"]) not in refusals]
            objects += len(deleted)
            size += sum(int(v.get("Size", 0)) for v in deleted)
            counted.update(hash((v["Key"], v["VersionId"])) for v in deleted)
            failed.extend(refused)
        left = _listed_again(client, bucket, prefix, counted)
    return DeletionCounts(
        objects=max(0, objects - left.counted),
        bytes=max(0, size - left.counted_bytes),
        failed=tuple(failed),
        found=found,
        remaining_versions=left.entries,
        remaining_objects=left.plain,
    )


class _Refusals:
    """Lookup of refused versions; an error without a VersionId refuses the key's versions."""

    def __init__(self, failed: list[FailedDeletion]) -> None:
        self.versions = {(f.key, f.version_id) for f in failed if f.version_id}
        self.keys = {f.key for f in failed if not f.version_id}

    def __contains__(self, version: tuple[str, str]) -> bool:
        return version in self.versions or version[0] in self.keys


@dataclass(frozen=True)
class _Left:
    """The second listing: entries (versions and markers), plain objects, and of the
    versions left, those counted as deleted, with their bytes."""

    entries: int
    plain: int
    counted: int
    counted_bytes: int


def _listed_again(client: S3Client, bucket: str, prefix: str, counted: set[int]) -> _Left:
    """What is still under the prefix once the deletion has run.

    A version listed again that was counted as deleted (S3 did not refuse
    it, yet it is there) comes off the deleted totals, which therefore never
    include something still present. `counted` holds hashes, not keys, to
    stay small: a collision can only take a version off that was not
    counted, so the count errs low, never high.
    """
    entries = taken = taken_bytes = plain = 0
    pages = client.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix)
    for page in pages:
        versions = page.get("Versions", [])
        entries += len(versions) + len(page.get("DeleteMarkers", []))
        for v in versions:
            if hash((v["Key"], v["VersionId"])) in counted:
                taken += 1
                taken_bytes += int(v.get("Size", 0))
    listing = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    for objects_page in listing:
        plain += len(objects_page.get("Contents", []))
    return _Left(entries, plain, taken, taken_bytes)


def _delete_versions(
    client: S3Client, bucket: str, versions: list[ObjectIdentifierTypeDef]
) -> list[FailedDeletion]:
    """DeleteObjects in batches (quiet: S3 lists only the failures); the failures."""
    failed: list[FailedDeletion] = []
    for start in range(0, len(versions), DELETE_BATCH):
        answer = client.delete_objects(
            Bucket=bucket,
            Delete={"Objects": versions[start : start + DELETE_BATCH], "Quiet": True},
        )
        failed.extend(_failure(error) for error in answer.get("Errors", []))
    return failed


def _failure(error: ErrorTypeDef) -> FailedDeletion:
    return FailedDeletion(
        key=str(error.get("Key", "")),
        version_id=str(error.get("VersionId", "")),
        code=str(error.get("Code", "")),
        message=str(error.get("Message", "")),
    )
