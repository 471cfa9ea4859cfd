"""Implementation (mise en œuvre): install what the run needs, and record it so it can be undone.

Install the provider's SSH access listed in the security section (and keep
the record that the exit will use to revoke it), define the health checks
from the SLA, deploy the operational tasks' schedules as Prefect deployments
(each task on its own clock: `flows.schedules`), and write the hotline/on-site
procedure and the runbooks.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow

from flows._phase import (
    PhaseOutcome,
    PhaseRun,
    Step,
    gather,
    hosts_failed,
    phase_run_name,
    phase_task_runner,
)
from flows.playbook_guard import guard_playbook_path
from flows.schedules import deploy_operational_schedules
from flows.writer_lease import one_writer
from handover.contract.loader import load_playbook
from handover.contract.playbook import Playbook
from handover.documents.hotline_procedure import hotline_procedure
from handover.documents.runbooks import runbooks
from handover.operations.schedules import task_schedules
from tasks.access import install_access
from tasks.hosts import SSH_SESSIONS_PER_CONTRACT, ssh_limit_name
from tasks.runtime import ensure_concurrency_limit
from tasks.tags import tag_flow_run


@flow(
    name="implementation",
    flow_run_name=phase_run_name,
    task_runner=phase_task_runner(),
    log_prints=True,
)
@one_writer("implementation")
def implementation(playbook_path: str, fresh: bool = False) -> PhaseOutcome:
    """Mise en œuvre: provider access, health checks, backup schedule, procedures, runbooks."""
    guard_playbook_path(playbook_path)  # a deployment run: only playbooks in the folders
    playbook = load_playbook(Path(playbook_path))
    tag_flow_run(playbook.contract_id, "implementation")
    ensure_concurrency_limit(ssh_limit_name(playbook.contract_id), SSH_SESSIONS_PER_CONTRACT)
    run = PhaseRun(playbook, "implementation", fresh=fresh)

    run.item("provider-access", lambda: install_provider_access(run, playbook_path, playbook))
    run.item("health-checks-defined", lambda: define_health_checks(run, playbook))
    run.item("backup-schedule", lambda: schedule_backups(run, playbook_path, playbook))
    run.item("hotline-procedure", lambda: Step(run.write_document(hotline_procedure(playbook))))
    run.item("runbooks", lambda: Step(run.write_document(runbooks(playbook))))
    run.item("reversibility-drill-scheduled", lambda: schedule_drill(run, playbook))
    return run.finish()


def install_provider_access(run: PhaseRun, playbook_path: str, playbook: Playbook) -> Step[None]:
    """Install each provider key of the security section; keep the record for the exit."""
    entries = playbook.security.provider_access
    if not entries:
        return Step([run.write_json("provider-access.json", [], "log")])
    labels = [f"{e.host}/{e.account}" for e in entries]
    futures = [install_access.submit(playbook_path, i) for i in range(len(entries))]
    records, errors = gather(futures, labels)
    evidence = [run.write_json("provider-access.json", records, "log")]
    hosts_failed(errors)
    return Step(evidence)


def define_health_checks(run: PhaseRun, playbook: Playbook) -> Step[None]:
    sla = playbook.sla
    checks = {
        "hosts": [h.name for h in playbook.hosts],
        "checks": [
            {"check": "reachability", "rule": "the host answers through its pinned key"},
            {"check": "disk", "rule": f"every filesystem below {sla.disk_threshold_percent}% used"},
            {
                "check": "certificates",
                "rule": f"no certificate expiring within {sla.cert_warning_days} days",
            },
        ],
        "availability_target_percent": sla.availability_percent,
        "reporting_period": sla.reporting_period,
    }
    return Step([run.write_json("health-checks.json", checks, "document")])


def schedule_backups(run: PhaseRun, playbook_path: str, playbook: Playbook) -> Step[None]:
    """Deploy every operational task on its schedule, the backups' among them."""
    deployed = deploy_operational_schedules(playbook_path)
    return Step([run.write_json("backup-schedule.json", deployed, "log")])


def schedule_drill(run: PhaseRun, playbook: Playbook) -> Step[None]:
    """The drill's own schedule (quarterly by default), with the deadlines it rehearses."""
    drill = next(s for s in task_schedules(playbook) if s.task == "drill")
    plan = {
        "drill": "seals every dataset, opens the bundle in a sandbox and compares it with "
        "the source; ticks reversibility-drill in the checklist of its quarter",
        "schedule": drill.describe,
        "deadlines": playbook.reversibility.deadlines.model_dump(mode="json"),
    }
    return Step([run.write_json("reversibility-drill.json", plan, "document")])
