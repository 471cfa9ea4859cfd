"""The last flow runs of a contract, for `handover status` (Prefect side of the status).

Selected by the tag `contract:<id>` like the history, newest first and only a
few: the status shows where the contract stands, `handover history` the
whole record. A plain function, not a task: reading the status creates no
run.
"""

from __future__ import annotations

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags
from prefect.client.schemas.sorting import FlowRunSort

from handover.operations.run_history import PHASE_TAG, contract_tag, tag_value
from handover.operations.status import RunLine

RECENT_RUNS = 5


def recent_runs(contract: str, limit: int = RECENT_RUNS) -> list[RunLine]:
    """The `limit` latest flow runs tagged `contract:<contract>`, newest first."""
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[contract_tag(contract)])),
            sort=FlowRunSort.EXPECTED_START_TIME_DESC,
            limit=limit,
        )
    return [
        RunLine(
            name=run.name,
            phase=tag_value(run.tags, PHASE_TAG),
            state=run.state.name if run.state else None,
            start_time=run.start_time or run.expected_start_time,
            end_time=run.end_time,
        )
        for run in runs
    ]
