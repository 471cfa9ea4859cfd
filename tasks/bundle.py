"""Restitution-bundle tasks: one volume per dataset, built concurrently, then the bundle sealed.

The BundleWriter of a run lives in this process (it holds the signing key
and the volume records, which name client files); tasks reach it through
the bundle's name, so task inputs and results stay small references and
summaries without file names.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff

from handover.bundle.age import client_requirements
from handover.bundle.summary import SealedBundle, VolumeSummary, sealed_bundle, volume_summary
from handover.bundle.writer import BundleWriter
from handover.contract.keys import bundle_recipients, signing_key
from handover.contract.loader import load_playbook
from handover.errors import BundleError
from handover.exit.delivery import (
    FolderDelivery,
    LinkDelivery,
    bundle_target,
    copy_to_delivery_folder,
    share_by_links,
)
from tasks.hosts import open_dataset
from tasks.runtime import only_transient

_writers: dict[str, BundleWriter] = {}
_lock = threading.Lock()


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
    result = writer.finish({name: Path(path) for name, path in documents.items()}, extra_manifest)
    with _lock:
        _writers.pop(bundle_name, None)
    return sealed_bundle(result)


@task(cache_policy=NO_CACHE, task_run_name="deliver {bundle_name} to a folder")
def deliver_to_folder(playbook_path: str, bundle_name: str) -> FolderDelivery:
    """Copy the sealed bundle into the delivery folder, check it there, then make it visible."""
    return copy_to_delivery_folder(load_playbook(Path(playbook_path)), bundle_name)


@task(cache_policy=NO_CACHE, task_run_name="deliver {bundle_name} by links")
def deliver_by_links(playbook_path: str, bundle_name: str) -> LinkDelivery:
    """Check the bundle in the bucket, presign links, copy to the client's bucket if asked."""
    return share_by_links(load_playbook(Path(playbook_path)), bundle_name)
