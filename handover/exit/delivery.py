"""Handing the restitution bundle over: to a delivery folder, or as presigned S3 links.

Where the bundle is sealed follows from how it is delivered: S3 delivery
seals straight into the provider's bucket, folder delivery into a working
copy in the contract's folder, copied out once sealed. Either way the
delivered bundle is verified where the client will find it before it is
recorded as delivered. The exit report and the erasure certificate go
beside the bundle, never inside it (it is sealed).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

from handover.bundle.local import DirectoryTarget
from handover.bundle.reader import verify_bundle
from handover.errors import BundleError
from handover.state.atomic import SHARED_FILE_MODE, write_atomic
from handover.state.diskspace import disk_full_from, file_size, require_space
from handover.state.layout import ContractPaths

if TYPE_CHECKING:
    from handover.bundle.types import BundleTarget
    from handover.connectors.s3.client import S3Client
    from handover.contract.playbook import Playbook


class FolderDelivery(BaseModel):
    """The bundle copied into the delivery folder, verified there."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["local"] = "local"
    location: str  # absolute path of the delivered bundle folder


class LinkDelivery(BaseModel):
    """The bundle verified in the provider's bucket, handed over as presigned links."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["s3"] = "s3"
    location: str  # s3://bucket/prefix of the bundle
    # s3://client-bucket/name when the playbook asks for a copy (absent otherwise).
    client_copy: str | None = Field(default=None, exclude_if=lambda value: value is None)
    links: dict[str, str]  # bundle-relative path -> presigned GET URL
    link_expiry_days: int


DeliveryRecord = FolderDelivery | LinkDelivery


def bundle_target(playbook: Playbook, bundle_name: str) -> BundleTarget:
    """S3 delivery seals straight into the bucket; folder delivery seals into a working copy."""
    delivery = playbook.reversibility.delivery
    if delivery.kind == "s3":
        from handover.connectors.s3.client import join_key, s3_client
        from handover.connectors.s3.delivery import S3Target

        assert delivery.bucket is not None
        prefix = join_key(delivery.prefix or "", bundle_name)
        return S3Target(s3_client(playbook.perimeter.s3), delivery.bucket, prefix)
    return DirectoryTarget(ContractPaths(playbook.contract_id).bundle_work_dir(bundle_name))


def copy_to_delivery_folder(playbook: Playbook, bundle_name: str) -> FolderDelivery:
    """Copy the sealed bundle into the delivery folder, check it there, then make it visible.

    The copy lands under a dot-name, is verified (outer hashes and
    signature) and only then renamed: the delivery folder never shows a
    partial bundle under its final name.
    """
    delivery = playbook.reversibility.delivery
    assert delivery.path is not None
    source = ContractPaths(playbook.contract_id).bundle_work_dir(bundle_name)
    final = Path(delivery.path) / bundle_name
    partial = final.with_name(f".{bundle_name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    _copy_bundle(source, partial)
    problems = verify_bundle(partial)
    if problems:
        shutil.rmtree(partial, ignore_errors=True)
        raise BundleError(f"{final}: delivered copy does not verify: " + "; ".join(problems))
    if final.exists():
        shutil.rmtree(final)
    partial.rename(final)
    return FolderDelivery(location=str(final.resolve()))


def _copy_bundle(source: Path, partial: Path) -> None:
    """Copy the bundle folder `source` to `partial`, or leave no `partial` at all.

    The size of the copy is known up front: a delivery folder without room
    for it is refused before anything is written, and a disk that fills
    during the copy anyway gives a DiskFull naming the file being written and
    how far the copy got.
    """
    if not source.is_dir():
        raise BundleError(f"{source}: no sealed bundle there to deliver")
    files = sorted(p for p in source.rglob("*") if p.is_file())
    needed = sum(p.stat().st_size for p in files)
    try:
        partial.parent.mkdir(parents=True, exist_ok=True)
        require_space(partial.parent, needed)
        partial.mkdir()
        copied = 0
        for src in files:
            dst = partial / src.relative_to(source)
            try:
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dst)
            except OSError as exc:
                full = disk_full_from(exc, dst, copied + file_size(dst), needed)
                if full is not None:
                    raise full from exc
                raise
            copied += src.stat().st_size
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise


def share_by_links(playbook: Playbook, bundle_name: str) -> LinkDelivery:
    """Check the bundle in the bucket, presign links, copy to the client's bucket if asked."""
    from handover.connectors.s3.client import join_key, s3_client
    from handover.connectors.s3.delivery import S3BundleSource, copy_bundle, presign_bundle

    delivery = playbook.reversibility.delivery
    assert delivery.bucket is not None
    client = s3_client(playbook.perimeter.s3)
    prefix = join_key(delivery.prefix or "", bundle_name)
    problems = verify_bundle(S3BundleSource(client, delivery.bucket, prefix))
    if problems:
        raise BundleError(
            f"s3://{delivery.bucket}/{prefix}: does not verify: " + "; ".join(problems)
        )
    client_copy = None
    if delivery.client_bucket:
        copy_bundle(client, delivery.bucket, prefix, delivery.client_bucket, bundle_name)
        client_copy = f"s3://{delivery.client_bucket}/{bundle_name}"
    expiry_days = delivery.link_expiry_days or playbook.reversibility.deadlines.retrieval_days
    return LinkDelivery(
        location=f"s3://{delivery.bucket}/{prefix}",
        client_copy=client_copy,
        links=presign_bundle(client, delivery.bucket, prefix, expiry_days),
        link_expiry_days=expiry_days,
    )


def deliver_beside_bundle(
    playbook: Playbook,
    bundle_name: str,
    delivery: DeliveryRecord,
    files: dict[str, str | bytes],
    *,
    s3: S3Client | None = None,
) -> list[str]:
    """Put the exit report and erasure certificate next to the bundle (never inside: sealed).

    `s3`: the S3 client to use, made before the erasure (the contract's S3
    credentials may live in the vault that the erasure deletes).
    """
    written: list[str] = []
    if isinstance(delivery, FolderDelivery):
        folder = Path(delivery.location).parent / f"{bundle_name}.exit"
        for name, text in files.items():
            data = text if isinstance(text, bytes) else text.encode("utf-8")
            # For the client, like the bundle's own files beside them: readable by all.
            write_atomic(folder / name, data, mode=SHARED_FILE_MODE)
            written.append(str(folder / name))
    elif isinstance(delivery, LinkDelivery):
        from handover.connectors.s3.client import join_key, s3_client
        from handover.connectors.s3.delivery import S3Target

        d = playbook.reversibility.delivery
        assert d.bucket is not None
        target = S3Target(
            s3 or s3_client(playbook.perimeter.s3),
            d.bucket,
            join_key(d.prefix or "", f"{bundle_name}.exit"),
        )
        for name, text in files.items():
            with target.open_write(name) as handle:
                handle.write(text if isinstance(text, bytes) else text.encode("utf-8"))
            written.append(f"{target.describe()}/{name}")
    return written
