"""The documentation that leaves with the client: reports, checklists, audit log, run history."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName
from pydantic import BaseModel, ConfigDict

from handover.exit.documentation import exit_documents
from handover.state.layout import ContractPaths


@task(cache_policy=NO_CACHE, task_run_name="collect documentation of {contract}")
def collect_exit_documents(contract: str) -> dict[str, str]:
    """Index-relative name → file: every phase's documents, the checklists and the audit log."""
    return exit_documents(ContractPaths(contract))


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
