"""What the erasure deletes for one contract: every copy the provider still holds, and where.

The provider's working copies come from the map of the contract's folder
(`ContractPaths.working_copies`), so the erasure deletes what the writers
wrote there; then the backups (a folder, or an S3 prefix with every object
version), the bundle in the provider's bucket when it was handed over by
links, and the vault. The checklists and the audit log are kept: they are
the evidence of how the contract was performed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from handover.errors import PermanentConnectorError
from handover.exit.erasure import (
    DeletionResult,
    ErasureTarget,
    path_target,
    s3_target,
    vault_target,
)
from handover.operations.backup_target import contract_backups
from handover.state.layout import ContractPaths

if TYPE_CHECKING:
    from handover.connectors.s3.client import S3SettingsLike
    from handover.contract.playbook import Playbook


def erasure_targets(playbook: Playbook, delivered_prefix: str | None) -> list[ErasureTarget]:
    """The contract's copies, in the certificate's order.

    `delivered_prefix`: the `s3://bucket/prefix` of a bundle handed over by
    links (None when it was delivered to a folder: the client's copy is not
    the provider's to erase).
    """
    paths = ContractPaths(playbook.contract_id)
    targets = [path_target("local", folder, what) for folder, what in paths.working_copies()]
    s3 = playbook.perimeter.s3
    if playbook.backups is not None:
        backups = contract_backups(playbook.backups.target, playbook.contract_id)
        if isinstance(backups, Path):
            targets.append(path_target("backups", backups, "backups"))
        else:
            targets.append(s3_target(backups, s3_prefix_deleter(s3, backups), "backups"))
    if delivered_prefix is not None:
        deleter = s3_prefix_deleter(s3, delivered_prefix)
        targets.append(s3_target(delivered_prefix, deleter, "bundle in the provider's bucket"))
    targets.append(vault_target(paths.vault_file))
    return targets


def s3_prefix_deleter(settings: S3SettingsLike | None, url: str) -> Callable[[], DeletionResult]:
    """Delete every version under `url` when called; a version S3 refuses fails the target.

    The failure is raised (the erasure records the target as failed, with the
    count and S3's reason) and never names a key.
    """
    from handover.connectors.s3.client import parse_s3_url, s3_client
    from handover.connectors.s3.deletion import delete_prefix

    bucket, prefix = parse_s3_url(url)

    def delete() -> DeletionResult:
        counts = delete_prefix(s3_client(settings), bucket, prefix)
        if counts.failed:
            first = counts.failed[0]
            raise PermanentConnectorError(
                f"{len(counts.failed)} object version(s) not deleted "
                f"({first.code}: {first.message})",
                host=url,
            )
        return DeletionResult(counts.objects, counts.bytes)

    return delete
