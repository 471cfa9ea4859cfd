"""Which VolumeSource a playbook dataset reads: a host's tree, a host's dump, or an S3 prefix.

Beside the connectors it chooses between, and apart from them: each
transport serves trees and dumps (`HostConnector.tree_source`,
`dump_source`) and `s3/` serves prefixes, while this module reads the
dataset's `paths`, `dump` or `s3` and names the volume. Snapshots, exports,
backups and the drill all take their sources from here, so a dataset reads
the same files for each of them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from handover.bundle.types import VolumeSource
from handover.connectors.base import HostConnector
from handover.secrets.references import resolve_secret

if TYPE_CHECKING:
    from handover.connectors.s3.client import S3SettingsLike
    from handover.contract.perimeter import Dataset

__all__ = ["dataset_source"]


def dataset_source(
    dataset: Dataset, connector: HostConnector | None, s3_settings: S3SettingsLike | None
) -> VolumeSource:
    """The VolumeSource of one dataset: a tree, a dump command, or an S3 prefix.

    `connector` is the session to the dataset's host (None for an S3
    dataset, which has no host); `s3_settings` are the contract's
    (`perimeter.s3`). The volume is labelled `<host>-<dataset>`, or the
    dataset's name alone for S3. A dump's `env` references are resolved here
    (SecretRefError names the reference, never a value).
    """
    label = f"{dataset.host}-{dataset.name}" if dataset.host else dataset.name
    if dataset.s3 is not None:
        # Imported here: boto3 is loaded only for contracts with S3 datasets.
        from handover.connectors.s3 import S3PrefixSource, s3_client

        return S3PrefixSource(
            s3_client(s3_settings),
            dataset.s3.bucket,
            dataset.s3.prefix,
            label,
            versions=dataset.s3.versions,
        )
    assert connector is not None, "a host dataset needs a connector"
    if dataset.dump is not None:
        # Resolved here, when the data is read; the values reach the command's environment only.
        env = {name: resolve_secret(ref) for name, ref in dataset.dump.env.items()}
        return connector.dump_source(label, dataset.dump.command, dataset.dump.filename, env)
    return connector.tree_source(label, list(dataset.paths or []))
