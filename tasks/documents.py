"""The documentation that leaves with the client: reports, checklists, audit log, run history."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from handover.checklist.store import ChecklistStore
from handover.exit.documentation import exit_documents
from handover.operations.run_history import IN_PROGRESS_THIS_EXIT, RunHistory
from handover.state.layout import ContractPaths
from tasks.run_history import read_run_history
from tasks.runtime import flow_run_id


@task(cache_policy=NO_CACHE, task_run_name="collect documentation of {contract}")
def collect_exit_documents(contract: str) -> dict[str, str]:
    """Index-relative name → file: every phase's documents, the checklists and the audit log.

    With a database state store (`HANDOVER_STATE_URL`), the checklists, log
    and checkpoints are first written into the contract's folder as files.
    """
    ChecklistStore().export_to_folder(contract)
    return exit_documents(ContractPaths(contract))


@task(cache_policy=NO_CACHE, task_run_name="run history of {contract}")
def run_history(contract: str) -> RunHistory:
    """Every flow run tagged with the contract, with its task runs, logs and checklist versions.

    Taken by the exit while it runs: its own run (and the lifecycle running
    it, if any) shows as in progress rather than as a bare RUNNING. No
    cache: the history must be read now, and it is large.
    """
    current = flow_run_id()
    return read_run_history(
        contract, in_progress={current: IN_PROGRESS_THIS_EXIT} if current else {}
    )
