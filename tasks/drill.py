"""The reversibility drill: build a bundle, open it in a sandbox, compare it with the source.

The drill seals every dataset to a throwaway identity (never the client's
key: the drill's output must not be a deliverable), opens the bundle with
handover's own checks into a private sandbox, then snapshots each source
again and compares every file's hash. A file whose mtime is unchanged but
whose hash differs is a problem; a file that changed in between (new
mtime) is only reported as changed: live systems move.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel, ConfigDict

from handover.bundle.age import X25519Identity
from handover.bundle.extract import open_bundle
from handover.bundle.manifest import VolumeRecord
from handover.bundle.snapshot import snapshot_source
from handover.bundle.writer import BundleWriter
from handover.contract.loader import load_playbook
from handover.contract.perimeter import Dataset
from handover.contract.playbook import Playbook
from handover.state.home import contract_dir
from tasks.hosts import open_dataset
from tasks.keys import signing_key


class DrillResult(BaseModel):
    """What a drill found: counts, and problems naming datasets only (never a client file)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    datasets: int
    files_checked: int
    changed_meanwhile: int  # files changed (or gone) on the source since they were sealed
    problems: list[str]


@task(cache_policy=NO_CACHE, task_run_name="reversibility drill")
def reversibility_drill(playbook_path: str) -> DrillResult:
    """Returns counts and problems (never file names of the client: only dataset names)."""
    playbook = load_playbook(Path(playbook_path))
    identity = X25519Identity.generate()
    base = contract_dir(playbook.contract_id) / "drill"
    base.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="drill-", dir=base))
    try:
        datasets = seal_datasets(playbook, workdir / "bundle", identity)
        manifest = open_bundle(workdir / "bundle", [identity], workdir / "opened")
        comparisons = [
            compare_with_source(playbook, datasets[volume.number], volume)
            for volume in manifest.volumes
        ]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return DrillResult(
        datasets=len(playbook.datasets),
        files_checked=sum(c.checked for c in comparisons),
        changed_meanwhile=sum(c.changed for c in comparisons),
        problems=[problem for c in comparisons for problem in c.problems],
    )


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


@dataclass(frozen=True)
class Comparison:
    """One volume against its source now: files checked, changed meanwhile, real differences."""

    checked: int
    changed: int
    problems: list[str]


def compare_with_source(playbook: Playbook, dataset: Dataset, volume: VolumeRecord) -> Comparison:
    """Snapshot the dataset again and compare each sealed file's hash with it."""
    with open_dataset(playbook, dataset) as source:
        current = {m.path: m for m in snapshot_source(source)}
    checked = changed = 0
    problems: list[str] = []
    for member in volume.members:
        if member.type != "file":
            continue
        checked += 1
        again = current.get(member.path)
        if again is None:
            changed += 1
        elif again.sha256 != member.sha256:
            if again.mtime == member.mtime:
                problems.append(f"{dataset.name}: a file differs from its source (same mtime)")
            else:
                changed += 1
    return Comparison(checked, changed, problems)
