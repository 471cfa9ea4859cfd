"""A contract's run history read from the Prefect API (`handover.operations.run_history` models).

Runs are selected by the tag `contract:<id>` (all of them: every state,
scheduled ones included, page after page), and each is read by its id:
its task runs, its logs (at most `LOG_CAP` lines, the run then says it was
capped) and the versions of the contract's checklist artifacts. Nothing is
selected by name. Parameters and log lines pass through the core's rules
(`safe_parameters`, `safe_message`) before they reach the model, since the
history leaves with the client.

A plain function, not a task: `handover history` reads without creating a
task run; the exit's task is `tasks.documents.run_history`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Protocol, TypeVar
from uuid import UUID

from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterKey,
    FlowFilter,
    FlowFilterId,
    FlowRunFilter,
    FlowRunFilterId,
    FlowRunFilterTags,
    LogFilter,
    LogFilterFlowRunId,
)
from prefect.client.schemas.objects import FlowRun, Log, StateType
from prefect.client.schemas.sorting import ArtifactSort, FlowRunSort, LogSort, TaskRunSort

from handover.operations.run_history import (
    IN_PROGRESS_PARENT,
    LOG_CAP,
    PHASE_TAG,
    TASK_RUN_CAP,
    ArtifactVersion,
    FlowRunEntry,
    LogEntry,
    RunHistory,
    TaskRunEntry,
    contract_tag,
    safe_message,
    safe_parameters,
    tag_value,
)
from handover.phases import PHASES
from tasks.checklist import artifact_key

PAGE = 200  # the API's default (and usual maximum) page
R = TypeVar("R", bound="_Record")
_FINAL = {
    s.value for s in (StateType.COMPLETED, StateType.FAILED, StateType.CRASHED, StateType.CANCELLED)
}


def read_run_history(
    contract: str,
    *,
    in_progress: Mapping[str, str] | None = None,
    log_cap: int = LOG_CAP,
    include_logs: bool = True,
) -> RunHistory:
    """Every flow run tagged `contract:<contract>`, oldest first, with tasks, logs and checklists.

    `in_progress`: run id -> the label a still-running run shows instead of
    its bare state (the exit's own run, which is running while it takes
    the history). `include_logs=False` reads no log (a table of the runs
    needs none, and a contract of several years has millions of lines).
    """
    labels = dict(in_progress or {})
    tag = contract_tag(contract)
    with get_client(sync_client=True) as client:
        runs = _pages(
            lambda offset: client.read_flow_runs(
                flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[tag])),
                sort=FlowRunSort.ID_DESC,
                limit=PAGE,
                offset=offset,
            )
        )
        flow_names = _flow_names(client, {run.flow_id for run in runs})
        entries = [
            _entry(client, run, flow_names, log_cap if include_logs else None) for run in runs
        ]
        artifacts = _artifact_versions(client, contract)
    entries = _label_running(_link_parents(entries, runs), labels)
    entries.sort(key=lambda e: (_when(e), e.name))
    return RunHistory(
        contract=contract,
        generated_at=datetime.now(UTC),
        selected_by=tag,
        log_cap=log_cap,
        logs_included=include_logs,
        runs=entries,
        artifacts=artifacts,
        logs_truncated=any(e.logs_truncated for e in entries),
        task_runs_truncated=any(e.task_runs_truncated for e in entries),
    )


def _when(entry: FlowRunEntry) -> datetime:
    when = entry.start_time or entry.expected_start_time
    return when if when is not None else datetime.max.replace(tzinfo=UTC)


class _Record(Protocol):
    id: UUID


def _pages(read: Callable[[int], list[R]], cap: int | None = None) -> list[R]:
    """Read page after page until a short one (or past `cap` items: one more tells it was passed).

    Pages are by offset and the server changes while it is read (the exit
    adds task runs and checklist versions as it takes its own history): an
    item seen twice is kept once.
    """
    items: dict[UUID, R] = {}
    read_so_far = 0
    while True:
        page = read(read_so_far)
        read_so_far += len(page)
        for item in page:
            items.setdefault(item.id, item)
        if len(page) < PAGE or (cap is not None and len(items) > cap):
            return list(items.values())


def _flow_names(client: SyncPrefectClient, flow_ids: set[UUID]) -> dict[UUID, str]:
    if not flow_ids:
        return {}
    flows = client.read_flows(flow_filter=FlowFilter(id=FlowFilterId(any_=sorted(flow_ids))))
    return {flow.id: flow.name for flow in flows}


def _entry(
    client: SyncPrefectClient,
    run: FlowRun,
    flow_names: dict[UUID, str],
    log_cap: int | None,
) -> FlowRunEntry:
    """The run as the history lists it; `log_cap` None: its logs are not read."""
    parameters, dropped = safe_parameters(run.parameters)
    tasks = _task_runs(client, run.id)
    logs = [] if log_cap is None else _logs(client, run.id, log_cap)
    state = run.state
    return FlowRunEntry(
        id=str(run.id),
        name=run.name,
        flow_name=flow_names.get(run.flow_id),
        tags=sorted(run.tags),
        phase=tag_value(run.tags, PHASE_TAG),
        state_type=state.type.value if state else None,
        state_name=state.name if state else None,
        expected_start_time=run.expected_start_time,
        start_time=run.start_time,
        end_time=run.end_time,
        parameters=parameters,
        parameters_dropped=dropped,
        task_runs=tasks[:TASK_RUN_CAP],
        task_runs_truncated=len(tasks) > TASK_RUN_CAP,
        logs=logs[:log_cap],
        logs_truncated=log_cap is not None and len(logs) > log_cap,
    )


def _link_parents(entries: list[FlowRunEntry], runs: list[FlowRun]) -> list[FlowRunEntry]:
    """Name each subflow's parent run: the run holding the task run that called it."""
    run_of_task = {task.id: entry.id for entry in entries for task in entry.task_runs}
    parent_task = {
        str(run.id): str(run.parent_task_run_id) for run in runs if run.parent_task_run_id
    }
    return [
        entry.model_copy(update={"parent_flow_run_id": run_of_task.get(parent_task[entry.id])})
        if entry.id in parent_task
        else entry
        for entry in entries
    ]


def _label_running(entries: list[FlowRunEntry], labels: dict[str, str]) -> list[FlowRunEntry]:
    """Runs still going that are known to be (the ancestors of) the run taking the history.

    Their bare RUNNING would read as a run left hanging; they are simply not
    finished yet when their own history is written.
    """
    labels = dict(labels)
    by_id = {entry.id: entry for entry in entries}
    for run_id in list(labels):
        parent = by_id[run_id].parent_flow_run_id if run_id in by_id else None
        while parent is not None and parent not in labels:
            labels[parent] = IN_PROGRESS_PARENT
            parent = by_id[parent].parent_flow_run_id if parent in by_id else None
    return [
        entry.model_copy(update={"state_name": labels[entry.id]})
        if entry.id in labels and entry.state_type not in _FINAL
        else entry
        for entry in entries
    ]


def _task_runs(client: SyncPrefectClient, flow_run_id: UUID) -> list[TaskRunEntry]:
    only_this_run = FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
    runs = _pages(
        lambda offset: client.read_task_runs(
            flow_run_filter=only_this_run, sort=TaskRunSort.ID_DESC, limit=PAGE, offset=offset
        ),
        cap=TASK_RUN_CAP,
    )
    entries = [
        TaskRunEntry(
            id=str(t.id),
            name=t.name,
            state_type=t.state.type.value if t.state else None,
            state_name=t.state.name if t.state else None,
            start_time=t.start_time,
            end_time=t.end_time,
        )
        for t in runs
    ]
    end_of_time = datetime.max.replace(tzinfo=UTC)
    return sorted(entries, key=lambda t: (t.start_time or end_of_time, t.name))


def _logs(client: SyncPrefectClient, flow_run_id: UUID, cap: int) -> list[LogEntry]:
    """The run's first `cap` log lines in time order, plus one more when there are more."""
    log_filter = LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id]))
    logs: list[Log] = _pages(
        lambda offset: client.read_logs(
            log_filter=log_filter,
            limit=min(PAGE, cap + 1 - offset),
            offset=offset,
            sort=LogSort.TIMESTAMP_ASC,
        ),
        cap=cap,
    )
    return [
        LogEntry(
            time=log.timestamp,
            level=logging.getLevelName(log.level),
            message=safe_message(log.message),
            task_run_id=str(log.task_run_id) if log.task_run_id else None,
        )
        for log in logs
    ]


def _artifact_versions(client: SyncPrefectClient, contract: str) -> list[ArtifactVersion]:
    """Every version of the contract's checklist artifacts (one key per phase), oldest first."""
    phase_of_key = {artifact_key(contract, str(phase)): str(phase) for phase in PHASES}
    artifact_filter = ArtifactFilter(key=ArtifactFilterKey(any_=sorted(phase_of_key)))
    artifacts = _pages(
        lambda offset: client.read_artifacts(
            artifact_filter=artifact_filter, sort=ArtifactSort.ID_DESC, limit=PAGE, offset=offset
        )
    )
    versions = [
        ArtifactVersion(
            key=artifact.key or "",
            phase=phase_of_key.get(artifact.key or "", ""),
            created=artifact.created,
            description=artifact.description,
            flow_run_id=str(artifact.flow_run_id) if artifact.flow_run_id else None,
        )
        for artifact in artifacts
    ]
    start_of_time = datetime.min.replace(tzinfo=UTC)
    return sorted(versions, key=lambda v: (v.created or start_of_time, v.key))
