"""The reversibility drill: build a bundle, open it in a sandbox, compare it with the source.

The drill seals every dataset to a throwaway identity (never the client's
key: the drill's output must not be a deliverable), opens the bundle with
handover's own checks into a private sandbox, then snapshots each source
again and compares every file's hash (the rule: `handover.operations.drill`).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from handover.bundle.age import X25519Identity
from handover.bundle.extract import open_bundle
from handover.bundle.manifest import VolumeRecord
from handover.bundle.snapshot import snapshot_source
from handover.bundle.writer import BundleWriter
from handover.contract.keys import signing_key
from handover.contract.loader import load_playbook
from handover.contract.perimeter import Dataset
from handover.contract.playbook import Playbook
from handover.operations.alerts import drill_alert
from handover.operations.drill import Comparison, DrillResult, compare_with_source, drill_result
from handover.state.atomic import ensure_private_dir
from handover.state.layout import ContractPaths
from tasks.alerts import emit_alerts
from tasks.hosts import open_dataset


@task(cache_policy=NO_CACHE, task_run_name="reversibility drill")
def reversibility_drill(playbook_path: str) -> DrillResult:
    """Returns counts and problems (never file names of the client: only dataset names)."""
    playbook = load_playbook(Path(playbook_path))
    identity = X25519Identity.generate()
    base = ContractPaths(playbook.contract_id).drill_dir
    ensure_private_dir(base)
    workdir = Path(tempfile.mkdtemp(prefix="drill-", dir=base))
    try:
        datasets = seal_datasets(playbook, workdir / "bundle", identity)
        manifest = open_bundle(workdir / "bundle", [identity], workdir / "opened")
        comparisons = [
            compare_volume(playbook, datasets[volume.number], volume) for volume in manifest.volumes
        ]
    except Exception as exc:
        failed = drill_alert(playbook.contract_id, [], f"{type(exc).__name__}: {exc}")
        emit_alerts(playbook, [failed] if failed else [])
        raise
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    result = drill_result(len(playbook.datasets), comparisons)
    found = drill_alert(playbook.contract_id, result.problems)
    emit_alerts(playbook, [found] if found else [])
    return result


def seal_datasets(playbook: Playbook, folder: Path, identity: X25519Identity) -> dict[int, Dataset]:
    """Seal every dataset into a bundle only `identity` opens; the dataset of each volume."""
    writer = BundleWriter(folder, [identity.recipient()], signing_key(playbook))
    datasets: dict[int, Dataset] = {}
    for number, dataset in enumerate(playbook.datasets, start=1):
        with open_dataset(playbook, dataset) as source:
            writer.add_volume(source, number=number)
        datasets[number] = dataset
    writer.finish()
    return datasets


def compare_volume(playbook: Playbook, dataset: Dataset, volume: VolumeRecord) -> Comparison:
    """Snapshot the dataset again and compare each sealed file's hash with it."""
    with open_dataset(playbook, dataset) as source:
        current = snapshot_source(source)
    return compare_with_source(dataset.name, volume.members, current)
