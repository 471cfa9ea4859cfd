"""Patching tasks: ask a host's package manager for its plan, and apply it in the window.

The rules are the core's (`handover.operations.patching`); these tasks move
commands and outputs through the host's session. `apply_patches` checks
the maintenance window itself, right before it changes anything: an
approval that came late, or a direct call, cannot patch outside it. Every
outcome is written as evidence under `operational/patching/` and in the
contract's audit log; a failure also raises `handover.patch-failed`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from handover.checklist.store import ChecklistStore
from handover.contract.loader import load_playbook
from handover.contract.playbook import Playbook
from handover.errors import UsageError
from handover.operations.alerts import patch_failed_alert
from handover.operations.availability import maintenance_calendar
from handover.operations.business_calendar import BusinessCalendar, contract_zone
from handover.operations.patching import (
    PatchPlan,
    PatchRecord,
    apply_command,
    output_tail,
    parse_plan,
    parse_versions,
    plan_script,
    versions_command,
    window_refusal,
)
from handover.phases import Phase
from handover.state.atomic import write_atomic
from handover.state.layout import ContractPaths
from tasks.alerts import emit_alerts
from tasks.hosts import host_session
from tasks.runtime import run_actor

__all__ = ["apply_patches", "plan_patches", "record_patching", "window_calendar"]


def window_calendar(playbook: Playbook) -> BusinessCalendar | None:
    """The maintenance window as a calendar; UsageError names the field when it is unreadable."""
    try:
        return maintenance_calendar(playbook.services.maintenance.window, contract_zone(playbook))
    except ValueError as exc:
        raise UsageError(f"services.maintenance.window: {exc}") from exc


def _record(playbook: Playbook, host: str, **fields: object) -> PatchRecord:
    settings = playbook.operations.patching
    return PatchRecord.model_validate(
        {
            "host": host,
            "at": datetime.now(UTC),
            "window": playbook.services.maintenance.window,
            "approval": settings.approval,
            **fields,
        }
    )


@task(cache_policy=NO_CACHE, task_run_name="patch plan of {host_name}")
def plan_patches(playbook_path: str, host_name: str, refresh: bool = False) -> PatchPlan:
    """What the host's package manager would upgrade (simulated; lists refreshed if `refresh`)."""
    playbook = load_playbook(Path(playbook_path))
    host = playbook.host(host_name)
    with host_session(playbook, host) as connector:
        if not connector.has_shell():
            return PatchPlan(host=host_name, manager="unknown", packages=[], security_only=True)
        result = connector.run(plan_script(refresh), timeout_s=600)
    output = result.stdout.decode("utf-8", "replace")
    return parse_plan(host_name, output, playbook.operations.patching.security_only)


@task(cache_policy=NO_CACHE, task_run_name="patch {host_name}")
def apply_patches(
    playbook_path: str, host_name: str, plan: PatchPlan, approved_by: str | None
) -> PatchRecord:
    """Apply the plan's chosen packages, in the window only; versions read before and after."""
    playbook = load_playbook(Path(playbook_path))
    chosen = [p.name for p in plan.chosen]
    base = {"approved_by": approved_by, "manager": plan.manager, "planned": plan.chosen}
    refusal = window_refusal(
        datetime.now(UTC), playbook.services.maintenance.window, window_calendar(playbook)
    )
    if refusal is not None:
        return _record(playbook, host_name, outcome="refused", reason=refusal, **base)
    if plan.manager not in ("apt", "dnf"):
        why = f"no package manager handover can drive ({plan.manager})"
        return _record(playbook, host_name, outcome="failed", reason=why, **base)
    if not chosen:
        return _record(playbook, host_name, outcome="nothing to do", reason="no update", **base)
    manager = plan.manager
    timeout = playbook.operations.patching.timeout_minutes * 60
    with host_session(playbook, playbook.host(host_name)) as connector:
        before = parse_versions(connector.run(versions_command(manager, chosen)).stdout.decode())
        result = connector.run(apply_command(manager, chosen), timeout_s=timeout)
        after = parse_versions(connector.run(versions_command(manager, chosen)).stdout.decode())
    if result.exit_status != 0:
        return _record(
            playbook,
            host_name,
            outcome="failed",
            reason=f"{manager} exited with status {result.exit_status}",
            before=before,
            after=after,
            exit_status=result.exit_status,
            output=output_tail(result.stdout, result.stderr),
            **base,
        )
    unchanged = sorted(n for n in chosen if before.get(n) == after.get(n))
    reason = f"{len(chosen) - len(unchanged)} of {len(chosen)} packages upgraded"
    if unchanged:
        reason += f"; unchanged: {', '.join(unchanged[:10])}"
    return _record(
        playbook,
        host_name,
        outcome="applied",
        reason=reason,
        before=before,
        after=after,
        exit_status=0,
        **base,
    )


def evidence_path(contract: str, record: PatchRecord) -> Path:
    """`operational/patching/<UTC time>-<host>.json`."""
    stamp = record.at.astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    folder = ContractPaths(contract).phase_dir(Phase.OPERATIONAL) / "patching"
    return folder / f"{stamp}-{record.host}.json"


@task(cache_policy=NO_CACHE, task_run_name="record patching of {record.host}")
def record_patching(playbook_path: str, record: PatchRecord) -> str:
    """Write the record as evidence, log it in the audit trail, alert on failure; its path."""
    playbook = load_playbook(Path(playbook_path))
    contract = playbook.contract_id
    path = evidence_path(contract, record)
    write_atomic(path, record.model_dump_json(indent=2).encode() + b"\n")
    ChecklistStore().audit_log(contract).append(
        f"patching.{record.outcome.replace(' ', '-')}",
        run_actor(),
        host=record.host,
        packages=len(record.planned),
        approved_by=record.approved_by,
        evidence=path.name,
    )
    if record.outcome == "failed":
        alert = patch_failed_alert(contract, record.host, record.reason, record.output)
        emit_alerts(playbook, [alert])
    return str(path)
