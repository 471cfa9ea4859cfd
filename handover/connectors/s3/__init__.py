"""S3 (boto3): client buckets as dataset sources, bundle delivery, backups.

The public names of the S3 connector, gathered from its modules:

- `client`: `s3_client(settings, credentials=None)`, `register_credentials_provider(fn)`,
  `S3Credentials`, `parse_s3_url(url) -> (bucket, prefix)`, `join_key(prefix, name)`.
- `errors`: `raise_s3_error(exc, where)`, and `s3_errors(where)`, the block every S3 call
  of the connector runs in.
- `source`: `S3PrefixSource(client, bucket, prefix, label, versions)` (VolumeSource),
  `s3_source_from_url(url, label)`.
- `delivery`: `S3Target(client, bucket, prefix, sse)` (BundleTarget),
  `S3BundleSource(client, bucket, prefix)` (BundleSource), `s3_target_from_url(url)`,
  `s3_bundle_source_from_url(url)`, `presign_bundle(client, bucket, prefix, expiry_days)`,
  `copy_bundle(client, src_bucket, src_prefix, dst_bucket, dst_prefix)`,
  `abort_incomplete_uploads(client, bucket, prefix)`.
- `deletion`: `delete_prefix(client, bucket, prefix) -> DeletionCounts` (every version and
  delete marker; the versions S3 refused in `failed`).
- `backup`: `S3BackupStore(client, bucket, prefix)` (a BackupStore of
  handover.operations.backup), `s3_backup_store_from_url(url)`,
  `install_lifecycle_rule(client, bucket, prefix, days)`.

`S3Settings` itself is the playbook's model (`handover.contract.perimeter.S3Settings`).
Every failure is a ConnectorError naming `s3://bucket[/key]`: AuthFailed for
refused credentials, PermanentConnectorError for a missing bucket or object,
TransientConnectorError for an unreachable endpoint. No secret is ever in a message.
"""

from __future__ import annotations

from handover.connectors.s3.backup import (
    S3BackupStore,
    install_lifecycle_rule,
    s3_backup_store_from_url,
)
from handover.connectors.s3.client import (
    S3Client,
    S3Credentials,
    S3SettingsLike,
    join_key,
    parse_s3_url,
    register_credentials_provider,
    s3_client,
)
from handover.connectors.s3.deletion import DeletionCounts, FailedDeletion, delete_prefix
from handover.connectors.s3.delivery import (
    S3BundleSource,
    S3Target,
    abort_incomplete_uploads,
    copy_bundle,
    presign_bundle,
    s3_bundle_source_from_url,
    s3_target_from_url,
)
from handover.connectors.s3.errors import raise_s3_error
from handover.connectors.s3.source import S3PrefixSource, s3_source_from_url

__all__ = [
    "DeletionCounts",
    "FailedDeletion",
    "S3BackupStore",
    "S3BundleSource",
    "S3Client",
    "S3Credentials",
    "S3PrefixSource",
    "S3SettingsLike",
    "S3Target",
    "abort_incomplete_uploads",
    "copy_bundle",
    "delete_prefix",
    "install_lifecycle_rule",
    "join_key",
    "parse_s3_url",
    "presign_bundle",
    "raise_s3_error",
    "register_credentials_provider",
    "s3_backup_store_from_url",
    "s3_bundle_source_from_url",
    "s3_client",
    "s3_source_from_url",
    "s3_target_from_url",
]
