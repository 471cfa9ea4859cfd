"""Operational run (exploitation): one run of the checks, backups and reports the SLA promises.

Meant to run on a schedule (the implementation phase deploys it): health
checks of every host, a backup of every dataset with pruning and a sample
restore check, pending security updates, incidents measured against the
SLA, the SLA report for the period, and a reversibility drill (seal every
dataset, open the bundle in a sandbox, compare with the source).

The incidents item and the SLA report read the same period (the playbook's
`sla.reporting_period` before the run) from the contract's incident journal
(`handover incident ...`); the item is done only when the journal exists and
was read, so "no incident" is a fact with its source, never a missing file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from prefect import flow
from prefect.artifacts import create_markdown_artifact

from flows._phase import (
    PhaseOutcome,
    PhaseRun,
    Step,
    StepFailed,
    gather,
    hosts_failed,
    phase_run_name,
    phase_task_runner,
)
from flows.playbook_guard import guard_playbook_path
from flows.writer_lease import one_writer
from handover.contract.loader import load_playbook
from handover.contract.playbook import Playbook
from handover.documents.sla_report import sla_report
from handover.estate.health import HealthCheckResult
from handover.operations.availability import ServiceAvailability
from handover.operations.backup import BackupRecord
from handover.operations.business_calendar import contract_calendar
from handover.operations.incident_journal import IncidentJournal, journal_path
from handover.operations.sla import measure_incidents, reporting_period
from tasks.backups import backup_dataset, check_restore, prune_backups
from tasks.clauses import clauses_for_report
from tasks.drill import reversibility_drill
from tasks.health import (
    due_checks,
    pending_updates,
    period_health,
    record_samples,
    sample_host,
)
from tasks.hosts import SSH_SESSIONS_PER_CONTRACT, ssh_limit_name
from tasks.runtime import ensure_concurrency_limit
from tasks.tags import tag_flow_run


@dataclass
class Seen:
    checks: list[HealthCheckResult] = field(default_factory=list)
    services: list[ServiceAvailability] | None = None  # None: the samples were not read
    backups: dict[str, BackupRecord] = field(default_factory=dict)


@flow(
    name="operational",
    flow_run_name=phase_run_name,
    task_runner=phase_task_runner(),
    log_prints=True,
)
@one_writer("operational")
def operational(playbook_path: str, fresh: bool = True) -> PhaseOutcome:
    """Exploitation: health checks, backups, restore check, updates, incidents, SLA report, drill.

    Every run is a new round of the same obligations, so items done in an
    earlier run are reopened (`fresh` defaults to true).
    """
    guard_playbook_path(playbook_path)  # a deployment run: only playbooks in the folders
    playbook = load_playbook(Path(playbook_path))
    tag_flow_run(playbook.contract_id, "operational")
    ensure_concurrency_limit(ssh_limit_name(playbook.contract_id), SSH_SESSIONS_PER_CONTRACT)
    run = PhaseRun(playbook, "operational", fresh=fresh)
    seen = Seen()
    period = reporting_period(datetime.now(UTC), playbook.sla.reporting_period)

    run.item("health-checks", lambda: run_health_checks(run, playbook_path, playbook, seen, period))
    run.item("backups", lambda: run_backups(run, playbook_path, playbook, seen))
    run.item(
        "restore-check", lambda: run_restore_check(run, playbook_path, seen), needs=["backups"]
    )
    run.item("security-updates", lambda: report_updates(run, playbook_path, playbook))
    run.item("incidents", lambda: record_incidents(run, playbook, period))
    run.item(
        "sla-report",
        lambda: write_sla_report(run, playbook, seen, period),
        needs=["health-checks", "incidents"],
    )
    run.item("reversibility-drill", lambda: run_drill(run, playbook_path))
    return run.finish()


def run_health_checks(
    run: PhaseRun,
    playbook_path: str,
    playbook: Playbook,
    seen: Seen,
    period: tuple[datetime, datetime],
) -> Step[None]:
    """Measure the period from the stored health samples, after one round of the checks due.

    The health flow samples every check on its own schedule (`flows.health`);
    this run adds the round due now (so the store holds the current state
    even where the health flow is not deployed yet), then reads the whole
    period: availability per service, with its samples and longest gap, and
    the last sample of each check as the current findings.
    """
    due = due_checks(playbook_path)
    keys = list(due)
    names = [key or "(network checks)" for key in keys]
    results, errors = gather(
        [sample_host.submit(playbook_path, key or None, due[key]) for key in keys], names
    )
    record_samples(playbook.contract_id, [s for batch in results.values() for s in batch])
    health = period_health(playbook_path, *period)
    seen.services = health.services
    seen.checks = [
        HealthCheckResult(
            host=s.host or s.service,
            check="reachable" if s.kind == "reachable" else f"{s.kind}:{s.check}",
            ok=s.ok,
            detail=s.detail,
            at=s.at,
        )
        for s in health.latest
    ]
    publish_health(playbook.contract_id, seen.checks, health.services)
    evidence = [
        run.write_json(
            run.paths.health_record,
            {
                "period": [period[0].isoformat(), period[1].isoformat()],
                "samples": health.samples,
                "unreadable_lines": health.unreadable_lines,
                "services": [_service_json(s) for s in health.services],
                "latest": [c.model_dump(mode="json") for c in seen.checks],
            },
            "report",
        )
    ]
    hosts_failed(errors)  # a host that could not be sampled fails the item; findings do not
    return Step(evidence)


def _service_json(service: ServiceAvailability) -> dict[str, object]:
    return {
        "service": service.service,
        "checks": list(service.checks),
        "samples": service.samples,
        "expected": service.expected,
        "passed": service.passed,
        "longest_gap_s": service.longest_gap.total_seconds(),
        "planned_downtime_s": service.planned_downtime.total_seconds(),
        "availability_percent": service.percent,
        "not_measured": service.reason,
    }


def publish_health(
    contract: str, checks: list[HealthCheckResult], services: list[ServiceAvailability]
) -> None:
    """The health table as the `<contract>-health` artifact, findings counted in its description."""
    findings = [c for c in checks if not c.ok]
    table = "\n".join(
        f"| {c.host} | {c.check} | {'ok' if c.ok else '**finding**'} | {c.detail} |" for c in checks
    )
    figures = "\n".join(
        f"| {s.service} | "
        f"{f'{s.percent:.2f}%' if s.percent is not None else 'not measured: ' + str(s.reason)} "
        f"| {s.samples} ({s.expected}) | {s.longest_gap} |"
        for s in services
    )
    create_markdown_artifact(
        f"## Health of {contract}\n\n"
        f"| service | availability | samples (expected) | longest gap |\n|---|---|---|---|\n"
        f"{figures}\n\n"
        f"| host | check | verdict | detail |\n|---|---|---|---|\n{table}\n",
        key=f"{contract}-health",
        description=f"{len(findings)} finding(s)",
    )


def run_backups(run: PhaseRun, playbook_path: str, playbook: Playbook, seen: Seen) -> Step[None]:
    if playbook.backups is None:
        raise StepFailed("the playbook has no backups section: nothing says where backups go")
    names = [d.name for d in playbook.datasets]
    results, errors = gather([backup_dataset.submit(playbook_path, n) for n in names], names)
    seen.backups = results
    pruned, prune_errors = gather([prune_backups.submit(playbook_path, n) for n in names], names)
    evidence = [
        run.write_json("backups/latest.json", {"backups": results, "pruned": pruned}, "log")
    ]
    hosts_failed({**errors, **{f"{k} (prune)": v for k, v in prune_errors.items()}})
    return Step(evidence)


def run_restore_check(run: PhaseRun, playbook_path: str, seen: Seen) -> Step[None]:
    if not seen.backups:
        raise StepFailed("no backup was made in this run: nothing to restore")
    # The sample: the smallest backup of this run, so the check stays quick.
    dataset = min(seen.backups, key=lambda name: seen.backups[name].size)
    result = check_restore(playbook_path, dataset, seen.backups[dataset])
    evidence = [run.write_json(f"backups/restore-check-{dataset}.json", result, "log")]
    if not result.ok:
        raise StepFailed(f"restore check of {dataset} failed: {result.problems}")
    return Step(evidence)


def report_updates(run: PhaseRun, playbook_path: str, playbook: Playbook) -> Step[None]:
    names = [h.name for h in playbook.hosts]
    results, errors = gather([pending_updates.submit(playbook_path, n) for n in names], names)
    evidence = [run.write_json("security-updates.json", results, "report")]
    hosts_failed(errors)
    return Step(evidence)


def record_incidents(
    run: PhaseRun, playbook: Playbook, period: tuple[datetime, datetime]
) -> Step[None]:
    """The period's incidents from the incident journal, each against its severity's times.

    No journal fails the item: nobody recorded or imported anything, which
    is not the same as no incident. An empty journal (an export with no
    ticket was imported) is read, and "no incident" is then stated with it.
    """
    journal = IncidentJournal(journal_path(run.paths.root))
    source = journal.path.relative_to(run.paths.root).as_posix()
    if not journal.exists():
        legacy = run.paths.incidents_file
        hint = (
            f"; move the older {legacy.name} into it with `handover incident import "
            f"{playbook.contract_id} {legacy} --format json`"
            if legacy.exists()
            else ""
        )
        raise StepFailed(
            f"no incident journal ({source}): record incidents with `handover incident open`, "
            f"or import the ticketing tool's export (`handover incident import`), even an "
            f"empty one{hint}"
        )
    measured = measure_incidents(
        playbook, journal.incidents(), source, period, contract_calendar(playbook)
    )
    print(measured.statement)
    return Step([run.write_json(run.paths.incidents_measured, measured, "report")])


def write_sla_report(
    run: PhaseRun, playbook: Playbook, seen: Seen, period: tuple[datetime, datetime]
) -> Step[None]:
    journal = IncidentJournal(journal_path(run.paths.root))
    source = journal.path.relative_to(run.paths.root).as_posix() if journal.exists() else None
    incidents = journal.incidents() if journal.exists() else []
    clauses = clauses_for_report(playbook, run.paths, incidents, period[1])
    doc = sla_report(
        playbook,
        *period,
        seen.checks,
        incidents,
        incident_source=source,
        clauses=clauses,
        services=seen.services,
    )
    return Step(run.write_document(doc, "report"))


def run_drill(run: PhaseRun, playbook_path: str) -> Step[None]:
    result = reversibility_drill(playbook_path)
    evidence = [run.write_json("reversibility-drill.json", result, "report")]
    if result.problems:
        raise StepFailed("drill found differences: " + "; ".join(result.problems[:5]))
    return Step(evidence)
