"""Restitution-bundle tasks: one volume per dataset, built concurrently, then the bundle sealed.

The BundleWriter of a run lives in this process (it holds the signing key
and the volume records, which name client files); tasks reach it through
the bundle's name, so task inputs and results stay small references and
summaries without file names.
"""

from __future__ import annotations

import shutil
import threading
from pathlib import Path
from typing import Any, Literal

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff
from pydantic import BaseModel, ConfigDict, Field

from handover.bundle.age import client_requirements
from handover.bundle.local import DirectoryTarget
from handover.bundle.manifest import VolumeRecord
from handover.bundle.reader import verify_bundle
from handover.bundle.types import BundleTarget
from handover.bundle.writer import BundleResult, BundleWriter
from handover.contract.keys import bundle_recipients, signing_key
from handover.contract.loader import load_playbook
from handover.contract.playbook import Playbook
from handover.errors import BundleError
from handover.state.layout import ContractPaths
from tasks.hosts import open_dataset
from tasks.runtime import only_transient

_writers: dict[str, BundleWriter] = {}
_lock = threading.Lock()


def working_copy(playbook: Playbook, bundle_name: str) -> Path:
    """Where the provider seals a bundle before delivering it to a folder."""
    return ContractPaths(playbook.contract_id).bundle_work_dir(bundle_name)


def bundle_target(playbook: Playbook, bundle_name: str) -> BundleTarget:
    """S3 delivery seals straight into the bucket; folder delivery seals into a working copy."""
    delivery = playbook.reversibility.delivery
    if delivery.kind == "s3":
        from handover.connectors.s3 import S3Target, join_key, s3_client

        assert delivery.bucket is not None
        prefix = join_key(delivery.prefix or "", bundle_name)
        return S3Target(s3_client(playbook.perimeter.s3), delivery.bucket, prefix)
    return DirectoryTarget(working_copy(playbook, bundle_name))


class VolumeSummary(BaseModel):
    """A volume without its member names: what a task may return or log."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    number: int
    file: str  # bundle-relative path of the .tar.age
    size: int  # bytes of the encrypted volume
    sha256: str
    files: int  # regular files inside
    bytes: int  # their total size


def volume_summary(record: VolumeRecord) -> VolumeSummary:
    files = [m for m in record.members if m.type == "file"]
    return VolumeSummary(
        number=record.number,
        file=record.file,
        size=record.size,
        sha256=record.sha256,
        files=len(files),
        bytes=sum(m.size for m in files),
    )


class SealedBundle(BaseModel):
    """A sealed bundle as the flow records it: the writer's result, volumes summarised."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    location: str
    files: dict[str, str]  # bundle-relative path -> SHA-256, as in SHA256SUMS
    manifest_sha256: str
    provider_key: str
    created: str
    volumes: list[VolumeSummary]


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


Delivery = FolderDelivery | LinkDelivery


@task(cache_policy=NO_CACHE, task_run_name="open bundle {bundle_name}")
def start_bundle(playbook_path: str, bundle_name: str) -> str:
    """Create the run's writer (removing partial files a crashed run left); returns its location."""
    playbook = load_playbook(Path(playbook_path))
    writer = BundleWriter(
        bundle_target(playbook, bundle_name),
        bundle_recipients(playbook),
        signing_key(playbook),
        title=f"{playbook.contract.title} — {playbook.contract.parties.client.legal_name}",
    )
    for warning in client_requirements(writer.recipients):
        get_run_logger().warning(warning)
    with _lock:
        _writers[bundle_name] = writer
    return writer.target.describe()


def writer_of(bundle_name: str) -> BundleWriter:
    with _lock:
        writer = _writers.get(bundle_name)
    if writer is None:
        raise BundleError(f"{bundle_name}: no bundle being written in this process")
    return writer


@task(
    retries=2,
    retry_delay_seconds=exponential_backoff(backoff_factor=2),
    retry_condition_fn=only_transient,
    cache_policy=NO_CACHE,
    task_run_name="export {dataset_name}",
)
def export_dataset(
    playbook_path: str, bundle_name: str, dataset_name: str, number: int
) -> VolumeSummary:
    """Seal one dataset into its volume (read, hash, tar, encrypt, write in one pass)."""
    playbook = load_playbook(Path(playbook_path))
    dataset = next(d for d in playbook.datasets if d.name == dataset_name)
    writer = writer_of(bundle_name)
    with open_dataset(playbook, dataset) as source:
        record = writer.add_volume(source, number=number)
    return volume_summary(record)


@task(cache_policy=NO_CACHE, task_run_name="seal bundle {bundle_name}")
def seal_bundle(
    bundle_name: str, documents: dict[str, str], extra_manifest: dict[str, Any]
) -> SealedBundle:
    """Write the index, README, provider key, then SHA256SUMS and its signature last."""
    writer = writer_of(bundle_name)
    result: BundleResult = writer.finish(
        {name: Path(path) for name, path in documents.items()}, extra_manifest
    )
    with _lock:
        _writers.pop(bundle_name, None)
    return SealedBundle(
        location=result.location,
        files=result.files,
        manifest_sha256=result.manifest_sha256,
        provider_key=result.provider_key,
        created=result.created,
        volumes=[volume_summary(v) for v in result.volumes],
    )


@task(cache_policy=NO_CACHE, task_run_name="deliver {bundle_name} to a folder")
def deliver_to_folder(playbook_path: str, bundle_name: str) -> FolderDelivery:
    """Copy the sealed bundle into the delivery folder, check it there, then make it visible.

    The copy lands under a dot-name, is verified (outer hashes and
    signature) and only then renamed: the delivery folder never shows a
    partial bundle under its final name.
    """
    playbook = load_playbook(Path(playbook_path))
    delivery = playbook.reversibility.delivery
    assert delivery.path is not None
    source = working_copy(playbook, bundle_name)
    final = Path(delivery.path) / bundle_name
    partial = final.with_name(f".{bundle_name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    final.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(source, partial)
    problems = verify_bundle(partial)
    if problems:
        shutil.rmtree(partial, ignore_errors=True)
        raise BundleError(f"{final}: delivered copy does not verify: " + "; ".join(problems))
    if final.exists():
        shutil.rmtree(final)
    partial.rename(final)
    return FolderDelivery(location=str(final.resolve()))


@task(cache_policy=NO_CACHE, task_run_name="deliver {bundle_name} by links")
def deliver_by_links(playbook_path: str, bundle_name: str) -> LinkDelivery:
    """Check the bundle in the bucket, presign links, copy to the client's bucket if asked."""
    from handover.connectors.s3 import (
        S3BundleSource,
        copy_bundle,
        join_key,
        presign_bundle,
        s3_client,
    )

    playbook = load_playbook(Path(playbook_path))
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
