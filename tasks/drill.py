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
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from handover.bundle.age import X25519Identity
from handover.bundle.reader import open_bundle
from handover.bundle.snapshot import snapshot_source
from handover.bundle.writer import BundleWriter
from handover.contract.loader import load_playbook
from handover.state.home import contract_dir
from tasks.hosts import open_dataset
from tasks.keys import signing_key


@task(cache_policy=NO_CACHE, task_run_name="reversibility drill")
def reversibility_drill(playbook_path: str) -> dict[str, Any]:
    """Returns counts and problems (never file names of the client: only dataset names)."""
    playbook = load_playbook(Path(playbook_path))
    identity = X25519Identity.generate()
    base = contract_dir(playbook.contract_id) / "drill"
    base.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="drill-", dir=base))
    problems: list[str] = []
    changed = 0
    checked = 0
    try:
        writer = BundleWriter(workdir / "bundle", [identity.recipient()], signing_key(playbook))
        sources = {}
        for number, dataset in enumerate(playbook.datasets, start=1):
            with open_dataset(playbook, dataset) as source:
                writer.add_volume(source, number=number)
            sources[number] = dataset
        writer.finish()
        manifest = open_bundle(workdir / "bundle", [identity], workdir / "opened")
        for volume in manifest.volumes:
            dataset = sources[volume.number]
            with open_dataset(playbook, dataset) as source:
                now = snapshot_source(source)
            current = {m.path: m for m in now}
            for member in volume.members:
                if member.type != "file":
                    continue
                checked += 1
                again = current.get(member.path)
                if again is None:
                    changed += 1
                elif again.sha256 != member.sha256:
                    if again.mtime == member.mtime:
                        problems.append(
                            f"{dataset.name}: a file differs from its source (same mtime)"
                        )
                    else:
                        changed += 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return {
        "datasets": len(playbook.datasets),
        "files_checked": checked,
        "changed_meanwhile": changed,
        "problems": problems,
    }
