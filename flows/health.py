"""The health flow: one round of the playbook's health checks, appended to the sample store.

Run on its own schedule (every 5 minutes by default, `operations.schedules.health`
to change it; deployed with the other operational tasks by `flows.schedules`),
apart from the operational run, so availability is measured all period long
rather than once per report. Each round samples the checks whose interval
has passed (`interval_minutes`, default 5), host by host in parallel, and
appends every sample (failed ones included) to
`operational/health/samples-YYYY-MM.jsonl` of the contract. The operational
run's health item and the SLA report read those samples.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow
from pydantic import BaseModel, ConfigDict

from flows._phase import gather, phase_run_name, phase_task_runner
from flows.notifications import ensure_notifications_quietly
from flows.playbook_guard import guard_playbook_path
from handover.contract.loader import load_playbook
from handover.estate.health_checks import HealthSample
from tasks.health import due_checks, record_samples, sample_host
from tasks.hosts import SSH_SESSIONS_PER_CONTRACT, ssh_limit_name
from tasks.runtime import ensure_concurrency_limit
from tasks.tags import tag_flow_run


class HealthRound(BaseModel):
    """What one round recorded (counts only: the samples are in the store)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    contract: str
    samples: int
    failed: int
    hosts_unsampled: list[str]


@flow(name="health", flow_run_name=phase_run_name, task_runner=phase_task_runner(), log_prints=True)
def health(playbook_path: str) -> HealthRound:
    """Sample the checks due, then append the round to the contract's sample store."""
    guard_playbook_path(playbook_path)
    playbook = load_playbook(Path(playbook_path))
    ensure_notifications_quietly(playbook)  # certificate and disk alerts reach people through it
    contract = playbook.contract_id
    tag_flow_run(contract, "health")
    ensure_concurrency_limit(ssh_limit_name(contract), SSH_SESSIONS_PER_CONTRACT)
    due = due_checks(playbook_path)
    keys = list(due)
    results, errors = gather(
        [sample_host.submit(playbook_path, key or None, due[key]) for key in keys],
        [key or "(network checks)" for key in keys],
    )
    samples: list[HealthSample] = [s for batch in results.values() for s in batch]
    written = record_samples(contract, samples)
    failed = sum(not s.ok for s in samples)
    print(f"{contract}: {written} health sample(s), {failed} failed")
    return HealthRound(
        contract=contract, samples=written, failed=failed, hosts_unsampled=sorted(errors)
    )
