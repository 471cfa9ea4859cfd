"""Collect the client's own documents at takeover (dossier d'exploitation, diagrams, licences).

One task run for all the sources of a contract: the files are the core's
business (`handover.estate.client_documents`). Host sources hold one of the
contract's SSH slots while read, through the same sessions as the
inventory. The result is a summary without file names: the names stay in
the index, in the contract's folder.
"""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel, ConfigDict

from handover.contract.loader import load_playbook
from handover.estate.client_documents import collect_client_documents
from handover.state.layout import ContractPaths
from tasks.hosts import host_session


class SourceSummary(BaseModel):
    """What one source gave, without file names."""

    model_config = ConfigDict(frozen=True)

    name: str
    files: int
    bytes: int
    skipped: int
    error: str | None = None


@task(cache_policy=NO_CACHE, task_run_name="collect client documents of {playbook_path}")
def collect_documents(playbook_path: str) -> list[SourceSummary]:
    """Every documentation source of the playbook into the contract's folder, with its index."""
    playbook = load_playbook(Path(playbook_path))
    index = collect_client_documents(
        playbook,
        ContractPaths(playbook.contract_id).client_documents_dir,
        connect=lambda name: host_session(playbook, playbook.host(name)),
        s3_settings=playbook.perimeter.s3,
    )
    return [
        SourceSummary(
            name=s.name, files=s.files, bytes=s.bytes, skipped=len(s.skipped), error=s.error
        )
        for s in index.sources
    ]
