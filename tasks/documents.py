"""The documentation that leaves with the client: reports, checklists, audit log, run history."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName
from pydantic import BaseModel, ConfigDict

from handover.contract.phases import PHASES
from handover.contract.playbook import Playbook
from handover.state.atomic import write_atomic
from handover.state.layout import ContractPaths
from tasks.bundle import Delivery, FolderDelivery, LinkDelivery

if TYPE_CHECKING:
    from handover.connectors.s3 import S3Client


@task(cache_policy=NO_CACHE, task_run_name="collect documentation of {contract}")
def collect_exit_documents(contract: str) -> dict[str, str]:
    """Index-relative name → file: every phase's documents, the checklists and the audit log."""
    paths = ContractPaths(contract)
    documents: dict[str, str] = {}
    for phase in PHASES:
        folder = paths.documents_dir(phase)
        if folder.is_dir():
            for path in sorted(folder.iterdir()):
                if path.is_file():
                    documents[f"documents/{phase}/{path.name}"] = str(path)
        checklist = paths.checklist_file(phase)
        if checklist.is_file():
            documents[f"checklists/{phase}.json"] = str(checklist)
    audit = paths.audit_log
    if audit.is_file():
        documents["audit/audit.log"] = str(audit)
    return documents


class FlowRunRecord(BaseModel):
    """One flow run of the contract as the run history lists it (times in ISO 8601)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    name: str
    state: str | None
    start_time: str | None
    end_time: str | None


@task(cache_policy=NO_CACHE, task_run_name="run history of {contract}")
def run_history(contract: str) -> list[FlowRunRecord]:
    """Every flow run of the contract known to the Prefect server, oldest first."""
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(name=FlowRunFilterName(like_=contract)),
            limit=200,
        )
    rows = [
        FlowRunRecord(
            id=str(r.id),
            name=r.name,
            state=r.state.type.value if r.state else None,
            start_time=r.start_time.isoformat() if r.start_time else None,
            end_time=r.end_time.isoformat() if r.end_time else None,
        )
        for r in runs
    ]
    return sorted(rows, key=lambda row: row.start_time or "")


def deliver_beside_bundle(
    playbook: Playbook,
    bundle_name: str,
    delivery: Delivery,
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
            write_atomic(folder / name, text if isinstance(text, bytes) else text.encode("utf-8"))
            written.append(str(folder / name))
    elif isinstance(delivery, LinkDelivery):
        from handover.connectors.s3 import S3Target, join_key, s3_client

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
