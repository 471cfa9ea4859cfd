"""Deleting everything under an S3 prefix: every object version and every delete marker.

The erasure at exit removes the provider's copies kept in S3 (backups, the
delivered bundle). On a versioned bucket a plain delete only hides an object
behind a delete marker, so every version is listed and deleted by its id.
DeleteObjects answers per key, in a successful response: the versions it
could not delete are returned to the caller, never dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from handover.connectors.s3.client import S3Client
from handover.connectors.s3.errors import s3_errors

if TYPE_CHECKING:
    from mypy_boto3_s3.type_defs import ErrorTypeDef, ObjectIdentifierTypeDef

__all__ = ["DeletionCounts", "FailedDeletion", "delete_prefix"]

DELETE_BATCH = 1000  # the most keys one DeleteObjects call accepts


@dataclass(frozen=True)
class FailedDeletion:
    """A version DeleteObjects refused, with S3's code and message for it."""

    key: str
    version_id: str
    code: str
    message: str


@dataclass(frozen=True)
class DeletionCounts:
    """What `delete_prefix` removed: object versions and their bytes; and what it could not."""

    objects: int  # object versions deleted (delete markers hold no data: not counted)
    bytes: int
    failed: tuple[FailedDeletion, ...] = ()


def delete_prefix(client: S3Client, bucket: str, prefix: str) -> DeletionCounts:
    """Delete every version and delete marker under `prefix`; report the versions S3 refused.

    A refused version is neither counted as deleted nor raised: it is in
    `failed`, for the caller to decide. A failed call (listing, access to the
    bucket) raises a ConnectorError naming `s3://bucket/prefix`.
    """
    objects = size = 0
    failed: list[FailedDeletion] = []
    with s3_errors(f"s3://{bucket}/{prefix}"):
        pages = client.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix)
        for page in pages:
            versions = page.get("Versions", [])
            refused = _delete_versions(
                client,
                bucket,
                [
                    {"Key": v["Key"], "VersionId": v["VersionId"]}
                    for v in [*versions, *page.get("DeleteMarkers", [])]
                ],
            )
            not_deleted = {(f.key, f.version_id) for f in refused}
            deleted = [v for v in versions if (v["Key"], v["VersionId"]) not in not_deleted]
            objects += len(deleted)
            size += sum(int(v.get("Size", 0)) for v in deleted)
            failed.extend(refused)
    return DeletionCounts(objects, size, tuple(failed))


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
