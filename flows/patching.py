"""The patching flow (MCO): pending security updates applied in the maintenance window.

One run goes over the playbook's hosts (or those named): it asks each
package manager for its plan, then follows `operations.patching.approval`:

- `report`: the plans are recorded, nothing is applied (the default);
- `auto`: applied at once, host after host;
- `ask`: the run pauses with a form (`PatchApproval`) listing each host's
  packages with their versions; a person approves (with their name) or
  declines. Nobody answering within HANDOVER_PATCH_WAIT_SECONDS (default
  one hour) is a decline.

Outside the maintenance window (or without one) `auto` and `ask` change
nothing: each host is recorded as refused and the run fails saying why, so
a scheduled run that started late shows in the UI. The window is checked
again by each apply, after a slow approval. Each host's record (versions
before and after, or the package manager's output on failure) is written
under `operational/patching/` and in the audit log; a failed host fails
the run, naming the host and the end of the output.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

from prefect import flow, get_run_logger
from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput
from pydantic import BaseModel, ConfigDict

from flows._phase import phase_run_name
from flows.notifications import ensure_notifications_quietly
from flows.playbook_guard import guard_playbook_path
from flows.waits import back_to_running, poll_interval
from flows.writer_lease import one_writer
from handover.contract.loader import load_playbook
from handover.contract.playbook import Playbook
from handover.errors import HandoverError, UsageError
from handover.operations.patching import PatchPlan, PatchRecord, window_refusal
from tasks.hosts import SSH_SESSIONS_PER_CONTRACT, ssh_limit_name
from tasks.patching import apply_patches, plan_patches, record_patching, window_calendar
from tasks.runtime import ensure_concurrency_limit, run_actor
from tasks.tags import tag_flow_run

DEFAULT_WAIT_S = 3600
PAUSE_KEY = "patching-approval"


class PatchingFailed(HandoverError):
    """Patching refused (outside the window) or failed on a host; the message says where."""


class PatchApproval(RunInput):
    """Apply the security updates listed above? approve: true to apply; by: who decides;
    reason: why (kept with the records)."""

    approve: bool = False
    by: str = ""
    reason: str = ""


class PatchingSummary(BaseModel):
    """What one run did, host by host (outcomes and evidence files only)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    contract: str
    approval: str
    outcomes: dict[str, str]
    evidence: list[str]


def wait_seconds() -> int:
    """How long `ask` waits for an answer (HANDOVER_PATCH_WAIT_SECONDS, default 1 h)."""
    try:
        return max(1, int(os.environ.get("HANDOVER_PATCH_WAIT_SECONDS", DEFAULT_WAIT_S)))
    except ValueError:
        return DEFAULT_WAIT_S


def _description(plans: list[PatchPlan], window: str | None) -> str:
    lines = [f"Security updates to apply now, in the maintenance window ({window}):", ""]
    for plan in plans:
        chosen = plan.chosen
        lines.append(f"**{plan.host}** ({plan.manager}): {len(chosen)} package(s)")
        lines += [f"- {p.name}: {p.before or '?'} → {p.candidate}" for p in chosen[:50]]
        if len(chosen) > 50:
            lines.append(f"- … and {len(chosen) - 50} more")
    lines += ["", "Set `approve` to true and say who you are in `by` to apply; false declines."]
    return "\n".join(lines)


def ask_approval(plans: list[PatchPlan], window: str | None) -> tuple[str | None, str]:
    """Pause for a person's answer: (who approved, why) or (None, why not)."""
    log = get_run_logger()
    log.info("patching: waiting for approval (pause %s) in the UI", PAUSE_KEY)
    try:
        answer = pause_flow_run(
            wait_for_input=PatchApproval.with_initial_data(
                description=_description(plans, window), approve=False, by="", reason=""
            ),
            timeout=wait_seconds(),
            poll_interval=poll_interval(),
            key=PAUSE_KEY,
        )
    except FlowPauseTimeout:
        back_to_running("nobody approved the patching in time")
        return None, f"nobody answered within {wait_seconds()} s: not applied"
    if not answer.approve:
        who = answer.by.strip() or "someone (unnamed)"
        return None, f"declined by {who}: {answer.reason.strip() or 'no reason given'}"
    if not answer.by.strip():
        return None, "approved without a name: not applied (say who approves in `by`)"
    return f"{answer.by.strip()} (form)", answer.reason.strip()


def _hosts(playbook: Playbook, names: list[str] | None) -> list[str]:
    known = [h.name for h in playbook.hosts]
    unknown = sorted(set(names or []) - set(known))
    if unknown:
        raise UsageError(f"not in the perimeter: {', '.join(unknown)} (hosts: {', '.join(known)})")
    return [n for n in known if names is None or n in names]


def _plain(playbook: Playbook, plan: PatchPlan, outcome: str, reason: str) -> PatchRecord:
    settings = playbook.operations.patching
    return PatchRecord.model_validate(
        {
            "host": plan.host,
            "outcome": outcome,
            "reason": reason,
            "at": datetime.now(UTC),
            "window": playbook.services.maintenance.window,
            "approval": settings.approval,
            "manager": plan.manager,
            "planned": plan.chosen,
        }
    )


@flow(name="patching", flow_run_name=phase_run_name, log_prints=True)
@one_writer("operational-patching")  # one patching run per contract; its records in the store
def patching(playbook_path: str, hosts: list[str] | None = None) -> PatchingSummary:
    """Plan, then apply (auto, or approved in a form) or report, in the maintenance window."""
    guard_playbook_path(playbook_path)
    playbook = load_playbook(Path(playbook_path))
    contract = playbook.contract_id
    tag_flow_run(contract, "operational")  # the contract's history and status find the run
    settings = playbook.operations.patching
    window = playbook.services.maintenance.window
    names = _hosts(playbook, hosts)
    ensure_concurrency_limit(ssh_limit_name(contract), SSH_SESSIONS_PER_CONTRACT)
    ensure_notifications_quietly(playbook)  # a failure below is told through it
    refusal = None
    if settings.approval != "report":
        refusal = window_refusal(datetime.now(UTC), window, window_calendar(playbook))
    records: list[PatchRecord] = []
    if refusal is not None:
        empty = [
            PatchPlan(host=n, manager="unknown", packages=[], security_only=True) for n in names
        ]
        records = [_plain(playbook, p, "refused", refusal) for p in empty]
    else:
        plans = [
            plan_patches(playbook_path, n, refresh=settings.approval != "report") for n in names
        ]
        if settings.approval == "report":
            records = [
                _plain(
                    playbook,
                    p,
                    "reported",
                    f"{len(p.chosen)} update(s) pending; approval is 'report': nothing applied",
                )
                for p in plans
            ]
        else:
            approved_by: str | None = f"{run_actor()} (approval: auto)"
            why = ""
            if settings.approval == "ask" and any(p.chosen for p in plans):
                approved_by, why = ask_approval(plans, window)
            for plan in plans:
                if not plan.chosen and plan.manager in ("apt", "dnf"):
                    records.append(_plain(playbook, plan, "nothing to do", "no update pending"))
                elif approved_by is None:
                    records.append(_plain(playbook, plan, "declined", why))
                else:
                    records.append(apply_patches(playbook_path, plan.host, plan, approved_by))
    evidence = [record_patching(playbook_path, r) for r in records]
    for record in records:
        print(f"{contract} patching {record.host}: {record.outcome}: {record.reason}")
    summary = PatchingSummary(
        contract=contract,
        approval=settings.approval,
        outcomes={r.host: r.outcome for r in records},
        evidence=[Path(e).name for e in evidence],
    )
    bad = [r for r in records if r.outcome in ("failed", "refused")]
    if bad:
        raise PatchingFailed("; ".join(_problem(r) for r in bad))
    return summary


def _problem(record: PatchRecord) -> str:
    text = f"{record.host} {record.outcome}: {record.reason}"
    last = (record.output or "").strip().splitlines()
    return text + (f": {last[-1][:200]}" if last else "")
