"""Whose a flow run is: the tags `contract:<id>`, `phase:<phase>` and `trigger:<kind>`.

The run history of a contract (exported at exit, `handover history`)
selects its runs by the tag `contract:<id>`, so every flow run of a
contract must carry it, however it started:

- called in this process (`handover run`, the demo, the lifecycle's
  subflows): the caller wraps the call in `phase_tags(...)`, so the run is
  created with its tags, even one that fails before reading its playbook;
- from a deployment (the UI, `handover serve`, a schedule): a served phase
  deployment is generic (the playbook is a parameter), so it carries only
  `phase:<phase>`, and the contract is known once the flow has read its
  playbook.

Hence `tag_flow_run`, the first thing each phase flow does after loading
its playbook: it adds the tags to the run through the API, whatever
started it, and says how it started (`trigger:schedule` for a run the
scheduler created, `deployment`, `subflow`, or `direct` for a call in a
process). Tags of other kinds are kept; ours replace an inherited value
(a subflow of the lifecycle is `phase:takeover`, not `phase:lifecycle`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import FlowRun
from prefect.context import FlowRunContext, TagsContext

from handover.operations.run_history import merged_tags, run_tags


def trigger_kind(run: FlowRun) -> str:
    """How a run started: `schedule`, `deployment`, `subflow` or `direct` (called in a process)."""
    if run.auto_scheduled:
        return "schedule"
    if run.deployment_id is not None:
        return "deployment"
    if run.parent_task_run_id is not None:
        return "subflow"
    return "direct"


def tag_flow_run(contract: str | None, phase: str) -> list[str]:
    """Tag the current flow run with its contract, phase and trigger; return its tags.

    Outside a flow run there is nothing to tag (an empty list). The run's own
    copy in this process is updated too, so the state events the engine
    emits from now on name the contract among their related resources.
    """
    context = FlowRunContext.get()
    if context is None or context.flow_run is None:
        return []
    run_id = context.flow_run.id
    with get_client(sync_client=True) as client:
        current = client.read_flow_run(run_id)
        tags = merged_tags(current.tags, run_tags(contract, phase, trigger_kind(current)))
        if tags != current.tags:
            client.update_flow_run(run_id, tags=tags)
    context.flow_run.tags = tags
    return tags


@contextmanager
def phase_tags(contract: str | None, phase: str) -> Iterator[set[str]]:
    """Flow runs created inside carry `contract:<id>` and `phase:<phase>` from their creation.

    Unlike `prefect.tags`, which only adds, a contract or phase tag already in
    the context (a lifecycle's) is replaced, never doubled. Task runs created
    inside carry them too.
    """
    tags = set(merged_tags(sorted(TagsContext.get().current_tags), run_tags(contract, phase)))
    with TagsContext(current_tags=tags):
        yield tags
