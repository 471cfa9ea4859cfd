"""Restitution-bundle tasks: one volume per dataset, built concurrently, then the bundle sealed.

The BundleWriter of a run lives in this process (it holds the signing key
and the volume records, which name client files); tasks reach it through
the bundle's name, so task inputs and results stay small references and
summaries without file names.

Each finished volume's record is saved with the contract's exit state
(`handover.exit.progress`) as soon as the volume is complete. A rerun after a
crash opens a writer on the same bundle, adopts the volumes whose records and
files agree, and reseals only the others; sealing after a crash builds its
writer from the saved records alone.
"""

from __future__ import annotations

import threading
from pathlib import Path

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff

from handover.bundle.age import client_requirements
from handover.bundle.buffers import trim_heap
from handover.bundle.local import DirectoryTarget
from handover.bundle.manifest import VolumeRecord
from handover.bundle.readme import TEMPLATE_FOLDER, ReadmeContact, ReadmeFacts, dump_engine
from handover.bundle.summary import SealedBundle, VolumeSummary, sealed_bundle, volume_summary
from handover.bundle.writer import SIGNATURE_NAME, VOLUMES_DIR, BundleWriter
from handover.contract.keys import bundle_recipients, signing_key
from handover.contract.loader import load_playbook
from handover.contract.playbook import Playbook
from handover.errors import BundleError
from handover.exit.bundle_evidence import bundle_checklists
from handover.exit.delivery import (
    FolderDelivery,
    LinkDelivery,
    bundle_target,
    copy_to_delivery_folder,
    share_by_links,
)
from handover.exit.documentation import client_documents
from handover.exit.progress import ExitProgress, ExitState
from handover.state.home import handover_home
from tasks.hosts import open_dataset
from tasks.runtime import only_transient

_writers: dict[str, BundleWriter] = {}
_lock = threading.Lock()


def _new_writer(playbook: Playbook, bundle_name: str) -> BundleWriter:
    """A writer on the bundle's target; it removes the partial files a crashed run left."""
    writer = BundleWriter(
        bundle_target(playbook, bundle_name),
        bundle_recipients(playbook),
        signing_key(playbook),
        title=f"{playbook.contract.title} — {playbook.contract.parties.client.legal_name}",
    )
    # A bundle being (re)built is not a sealed one: its old signature goes first, so
    # nothing under construction ever looks complete.
    if isinstance(writer.target, DirectoryTarget):
        (writer.target.path / SIGNATURE_NAME).unlink(missing_ok=True)
    return writer


def readme_facts(playbook: Playbook, bundle_name: str, state: ExitState | None) -> ReadmeFacts:
    """What the client's README.txt says of this contract and exit: language, dates, contacts."""
    provider = playbook.contract.parties.provider
    contacts = [
        ReadmeContact(name=c.name, role=c.role, email=c.email, phone=c.phone)
        for c in provider.contacts
    ] + [
        ReadmeContact(name=e.name, email=e.email, phone=e.phone, level=e.level)
        for e in provider.escalation
    ]
    deadlines = state.deadlines if state else None
    engines = {
        number: engine
        for number, dataset in enumerate(playbook.datasets, start=1)
        if dataset.dump and (engine := dump_engine(dataset.dump.command))
    }
    return ReadmeFacts(
        language=playbook.contract.language,
        timezone=playbook.contract.timezone,
        bundle_name=bundle_name,
        provider=provider.legal_name,
        contacts=contacts,
        retrieval_ends=deadlines.erasure_earliest if deadlines else None,
        erasure_by=deadlines.erasure_by if deadlines else None,
        credentials=bool(state and state.password_file),
        delivery=playbook.reversibility.delivery.kind,
        dump_engines=engines,
        template_dir=str(handover_home() / TEMPLATE_FOLDER),
    )


def dataset_numbers(playbook: Playbook) -> dict[str, int]:
    """Each dataset's volume number: its place in the playbook, from 1."""
    return {dataset.name: number for number, dataset in enumerate(playbook.datasets, start=1)}


def _adoptable(writer: BundleWriter, record: VolumeRecord, number: int) -> bool:
    """A saved volume is adopted only if its number holds and its file is whole."""
    if record.number != number or not writer.target.exists(record.file):
        return False
    if isinstance(writer.target, DirectoryTarget):
        return (writer.target.path / record.file).stat().st_size == record.size
    return True


def _adopt_saved(playbook: Playbook, bundle_name: str, writer: BundleWriter) -> list[str]:
    """Adopt the saved volumes that still hold; forget the others. Returns the datasets adopted."""
    progress = ExitProgress(playbook.contract_id)
    numbers = dataset_numbers(playbook)
    adopted: list[str] = []
    for dataset, record in progress.saved_volumes(bundle_name).items():
        if dataset in numbers and _adoptable(writer, record, numbers[dataset]):
            writer.adopt_volume(record)
            adopted.append(dataset)
        else:
            progress.forget_volume(bundle_name, dataset)
    if isinstance(writer.target, DirectoryTarget):
        # Volume files no record vouches for (a crash before the record, a dataset since
        # removed) would be extra files of the bundle: remove them before sealing anew.
        kept = {record.file for record in writer.volumes}
        folder = writer.target.path / VOLUMES_DIR
        for path in sorted(folder.glob("*.tar.age")) if folder.is_dir() else []:
            if f"{VOLUMES_DIR}/{path.name}" not in kept:
                path.unlink()
    return sorted(adopted)


@task(cache_policy=NO_CACHE, task_run_name="open bundle {bundle_name}")
def start_bundle(playbook_path: str, bundle_name: str) -> list[str]:
    """Create the run's writer, adopting the volumes an earlier run finished.

    Returns the datasets whose volumes were adopted (they are not exported again).
    The exports' threads share two malloc arenas: the `flows` package caps
    them when it is imported, which is the only time the cap can work.
    """
    playbook = load_playbook(Path(playbook_path))
    writer = _new_writer(playbook, bundle_name)
    for warning in client_requirements(writer.recipients):
        get_run_logger().warning(warning)
    adopted = _adopt_saved(playbook, bundle_name, writer)
    if adopted:
        get_run_logger().info(
            "%d volume(s) adopted from an earlier run: %s", len(adopted), ", ".join(adopted)
        )
    with _lock:
        _writers[bundle_name] = writer
    return adopted


def volume_files(bundle_name: str) -> dict[int, tuple[str, str]]:
    """(file, SHA-256) of each volume of the run's writer, by number (exported or adopted).

    What the exit's volume listing needs, from the records the writer already
    holds: reading the saved records back validated every member again (an
    exit of 100,000 files: ~100 MB of models at the end of the exports).
    """
    return {v.number: (v.file, v.sha256) for v in writer_of(bundle_name).volumes}


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
    """Seal one dataset into its volume (read, hash, tar, encrypt, write in one pass).

    The volume's record is saved with the exit state once the file is complete.
    The free pages malloc still holds go back to the system as the volume
    ends (`trim_heap`), so the rest of the exit (Argon2 of the credentials
    export, the index) does not sit on top of them.
    """
    playbook = load_playbook(Path(playbook_path))
    dataset = next(d for d in playbook.datasets if d.name == dataset_name)
    writer = writer_of(bundle_name)
    try:
        with open_dataset(playbook, dataset) as source:
            record = writer.add_volume(source, number=number)
        ExitProgress(playbook.contract_id).save_volume(bundle_name, dataset_name, record)
        return volume_summary(record)
    finally:
        trim_heap()


@task(cache_policy=NO_CACHE, task_run_name="seal bundle {bundle_name}")
def seal_bundle(playbook_path: str, bundle_name: str) -> SealedBundle:
    """Write the index, README, provider key, then SHA256SUMS and its signature last.

    Uses the writer of this run's export, or after a crash a new one built from
    the saved volume records. Every dataset of the playbook must have its
    volume; the index holds the documents of the exit state, the checklists
    as they are now (evidence paths pointing into the bundle) and the
    evidence files themselves.
    """
    from tasks.checklist import phase_checklists

    playbook = load_playbook(Path(playbook_path))
    progress = ExitProgress(playbook.contract_id)
    with _lock:
        writer = _writers.pop(bundle_name, None)
    if writer is None:
        writer = _new_writer(playbook, bundle_name)
        _adopt_saved(playbook, bundle_name, writer)
    sealed_numbers = {record.number for record in writer.volumes}
    missing = [n for n, number in dataset_numbers(playbook).items() if number not in sealed_numbers]
    if missing:
        raise BundleError(f"{bundle_name}: no volume for dataset(s) {', '.join(missing)}")
    state = progress.load()
    documents: dict[str, bytes | Path] = {
        name: Path(path) for name, path in (state.documents if state else {}).items()
    }
    checklists = {str(phase): c for phase, c in phase_checklists(playbook.contract_id).items()}
    texts, evidence, snapshot = bundle_checklists(checklists, progress.paths.root)
    documents.update(texts)
    documents.update({name: Path(path) for name, path in evidence.items()})
    documents.update({n: Path(p) for n, p in client_documents(progress.paths).items()})
    readme = readme_facts(playbook, bundle_name, state)
    result = writer.finish(documents, {"checklists": snapshot}, readme)
    return sealed_bundle(result)


@task(cache_policy=NO_CACHE, task_run_name="deliver {bundle_name} to a folder")
def deliver_to_folder(playbook_path: str, bundle_name: str) -> FolderDelivery:
    """Copy the sealed bundle into the delivery folder, check it there, then make it visible."""
    return copy_to_delivery_folder(load_playbook(Path(playbook_path)), bundle_name)


@task(cache_policy=NO_CACHE, task_run_name="deliver {bundle_name} by links")
def deliver_by_links(playbook_path: str, bundle_name: str) -> LinkDelivery:
    """Check the bundle in the bucket, presign links, copy to the client's bucket if asked."""
    return share_by_links(load_playbook(Path(playbook_path)), bundle_name)
