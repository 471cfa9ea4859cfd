"""The steps of the operational tasks: what each checklist item does and the evidence it keeps.

Shared by the task flows (`flows.operational_tasks`, each on its own clock)
and by the run of everything at once (`flows.operational`). Each step takes
the `PhaseRun` of the period checklist it ticks.

The incidents item and the SLA report read the same period from the
contract's incident journal (`handover incident ...`); the item is done only
when the journal exists and was read, so "no incident" is a fact with its
source, never a missing file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from prefect.artifacts import create_markdown_artifact

from flows._phase import PhaseRun, Step, StepFailed, gather, hosts_failed
from handover.contract.playbook import Playbook, phase_items
from handover.documents.sla_report import sla_report
from handover.estate.health import HealthCheckResult
from handover.operations.availability import ServiceAvailability
from handover.operations.backup import BackupRecord
from handover.operations.business_calendar import contract_calendar
from handover.operations.incident_journal import IncidentJournal, journal_path
from handover.operations.schedules import (
    TASK_ITEMS,
    Task,
    period_checklist,
    period_items,
    reporting_kind,
)
from handover.operations.sla import measure_incidents
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
from tasks.hosts import inventory_host


def period_run(playbook: Playbook, task: Task, period: str) -> PhaseRun:
    """The PhaseRun of the checklist of `period`, the task's own items reopened for this run.

    Every run is a new round of the same obligations: the items this task
    ticks, done by an earlier run of the period, are reopened (with the
    reason in the audit log); the other tasks' items are left as they are.
    """
    items = period_items(phase_items(playbook, "operational"), period, reporting_kind(playbook))
    return PhaseRun(
        playbook,
        "operational",
        fresh=True,
        checklist=period_checklist(period),
        items=items,
        own=list(TASK_ITEMS[task]),
    )


@dataclass
class Seen:
    checks: list[HealthCheckResult] = field(default_factory=list)
    services: list[ServiceAvailability] | None = None  # None: the samples were not read
    backups: dict[str, BackupRecord] = field(default_factory=dict)


def run_health_checks(
    run: PhaseRun,
    playbook_path: str,
    playbook: Playbook,
    seen: Seen,
    period: tuple[datetime, datetime],
    *,
    sample: bool = True,
) -> Step[None]:
    """Measure the period from the stored health samples, after one round of the checks due.

    The health flow samples every check on its own schedule (`flows.health`);
    a run to date adds the round due now (so the store holds the current
    state even where the health flow is not deployed yet; `sample`), then
    reads the whole period: availability per service, with its samples and
    longest gap, and the last sample of each check as the current findings.
    The report of a period that is over only reads it.
    """
    errors: dict[str, str] = {}
    if sample:
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


def run_technology_watch(run: PhaseRun, playbook_path: str, playbook: Playbook) -> Step[None]:
    """End-of-life software and certificates near expiry, from a fresh inventory of each host.

    Findings (an OS past support, a certificate expiring within
    `sla.cert_warning_days`) are the watch's report, not a failure of the
    item; a host that could not be inventoried fails it.
    """
    names = [h.name for h in playbook.hosts]
    inventories, errors = gather([inventory_host.submit(playbook_path, n) for n in names], names)
    warning = playbook.sla.cert_warning_days
    report = {
        name: {
            "os": inventory.os_name,
            "end_of_life": inventory.eol_flags,
            "certificates_expiring": [
                {"path": c.path, "subject": c.subject, "not_after": c.not_after.isoformat()}
                for c in inventory.certificates
                if c.days_left <= warning
            ],
            "collected_at": inventory.collected_at.isoformat(),
        }
        for name, inventory in sorted(inventories.items())
    }
    findings = sum(len(r["end_of_life"]) + len(r["certificates_expiring"]) for r in report.values())
    print(f"{playbook.contract_id}: technology watch, {findings} finding(s)")
    evidence = [
        run.write_json(
            "technology-watch.json",
            {"certificate_warning_days": warning, "hosts": report},
            "report",
        )
    ]
    hosts_failed(errors)
    return Step(evidence)
