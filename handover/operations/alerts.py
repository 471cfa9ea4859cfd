"""Alerts: the facts of a run that someone must hear about now, as plain values.

A certificate expiring in 9 days used to show only inside a report nobody
reads before it expires. Each function here turns a result the run already
has (a health sample, a backup error, a drill, the SLA figures, the exit
calendar) into `Alert` values; `tasks.alerts` emits them as Prefect events
`handover.<kind>` and the contract's automation (`flows.notifications`)
sends them through the provider's notification block.

An alert carries what is needed to act and nothing more: the kind, the
contract, what it is about (a host and mount, a dataset, an incident id),
a severity and one line. Never a secret, never a client's file name: the
lines are built from the verdicts' own details, which name paths the
playbook lists, mounts and dataset names only.

The same fact seen every five minutes must not page every five minutes:
`due_alerts` keeps only those whose key was not sent within the repeat
interval (the ledger is `handover.operations.alert_ledger`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from handover.contract.operations import AlertKind

__all__ = [
    "ALERT_KINDS",
    "MAX_MESSAGE",
    "Alert",
    "AlertKind",
    "availability_breach_alerts",
    "backup_failed_alert",
    "backups_missed_alerts",
    "drill_alert",
    "due_alerts",
    "exit_deadline_alerts",
    "health_alerts",
    "incident_breach_alerts",
    "patch_failed_alert",
]

ALERT_KINDS: tuple[str, ...] = get_args(AlertKind)
Severity = Literal["warning", "critical"]
MAX_MESSAGE = 300
EVENT_PREFIX = "handover."
#: How `handover.estate.health_checks` words a sample whose probe did not run.
NOT_PROBED = ("host did not answer", "probe failed:")


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…"


class Alert(BaseModel):
    """One fact to tell the provider's on-call people, as the event's payload carries it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: AlertKind
    contract: str = Field(min_length=1)
    subject: str = Field(min_length=1, description="What it is about: host:/mount, dataset, id.")
    severity: Severity
    message: str = Field(max_length=MAX_MESSAGE)

    @property
    def event(self) -> str:
        """The Prefect event name: `handover.<kind>`."""
        return EVENT_PREFIX + self.kind

    @property
    def key(self) -> str:
        """What makes two alerts the same fact (for not repeating it)."""
        return f"{self.kind}:{self.subject}"


def _alert(kind: AlertKind, contract: str, subject: str, severity: Severity, msg: str) -> Alert:
    return Alert(
        kind=kind, contract=contract, subject=subject, severity=severity, message=_clip(msg)
    )


# -- health ------------------------------------------------------------------------------


def health_alerts(
    contract: str, verdicts: Iterable[tuple[str | None, str, bool, str]]
) -> list[Alert]:
    """Failed disk and certificate verdicts as alerts.

    `verdicts`: (host, check, ok, detail), where check is `kind:what`: a
    sample's kind and check name (`cert:shop-cert`) or the inventory check
    (`disk:/var`, `cert:/etc/ssl/x.pem`); `host:what` is the alert's subject.
    The certificate judges fail a certificate that is expired, expires
    within the playbook's warning days, or cannot be read; the disk judges
    fail one used at or over the threshold, or whose `df` failed. The
    detail, which says which, is the message. Other kinds (reachable,
    http, systemd) are availability: the SLA report counts them.
    A probe that did not run (host unreachable, probe broken) says nothing
    of the disk or the certificate: that is downtime, not one of these.
    """
    alerts: list[Alert] = []
    for host, check, ok, detail in verdicts:
        if ok or detail.startswith(NOT_PROBED):
            continue
        kind_name, _, target = check.partition(":")
        where = f"{host or '-'}:{target}" if target else f"{host or '-'}"
        if kind_name == "cert":
            severity: Severity = "warning" if " expires on " in detail else "critical"
            alerts.append(
                _alert("cert-expiring", contract, where, severity, f"{host or '-'}: {detail}")
            )
        elif kind_name == "disk":
            alerts.append(
                _alert("disk-threshold", contract, where, "warning", f"{host or '-'}: {detail}")
            )
    return alerts


# -- backups and drill -------------------------------------------------------------------


def backup_failed_alert(contract: str, dataset: str, error: str) -> Alert:
    """A dataset's backup that failed for good (after its retries)."""
    return _alert(
        "backup-failed", contract, dataset, "critical", f"backup of {dataset} failed: {error}"
    )


def backups_missed_alerts(
    contract: str, latest: Mapping[str, datetime | None], now: datetime, max_age: timedelta
) -> list[Alert]:
    """Datasets whose newest backup is older than `max_age`, or that have none."""
    alerts: list[Alert] = []
    for dataset, last in sorted(latest.items()):
        if last is None:
            msg = f"no backup of {dataset} in the store"
        elif now - last > max_age:
            hours = (now - last).total_seconds() / 3600
            msg = f"newest backup of {dataset} is {hours:.0f} h old (at most {_hours(max_age)} h)"
        else:
            continue
        alerts.append(_alert("backup-missed", contract, dataset, "critical", msg))
    return alerts


def _hours(delta: timedelta) -> str:
    return f"{delta.total_seconds() / 3600:g}"


def drill_alert(contract: str, problems: list[str], error: str | None = None) -> Alert | None:
    """A drill that found differences (dataset names only) or could not run."""
    if error is not None:
        return _alert("drill-failed", contract, "drill", "critical", f"drill failed: {error}")
    if not problems:
        return None
    shown = "; ".join(problems[:3]) + (f" (+{len(problems) - 3} more)" if len(problems) > 3 else "")
    return _alert("drill-failed", contract, "drill", "critical", f"drill found: {shown}")


def patch_failed_alert(contract: str, host: str, reason: str, output: str | None) -> Alert:
    """A host whose upgrade failed: the reason and the last line of the manager's output."""
    last = (output or "").strip().splitlines()
    message = f"{host}: {reason}" + (f": {last[-1]}" if last else "")
    return _alert("patch-failed", contract, host, "critical", message)


# -- SLA ---------------------------------------------------------------------------------


def availability_breach_alerts(
    contract: str,
    services: Iterable[tuple[str, float | None, str | None]],
    target: float | None,
) -> list[Alert]:
    """Services below the availability target, or not measured, against a target that is set.

    `services`: (service, percent or None, reason when not measured), as the
    SLA report shows them: not measured is a breach there, so it is one here.
    """
    if target is None:
        return []
    alerts: list[Alert] = []
    for service, percent, reason in services:
        if percent is None:
            msg = f"{service}: availability not measured ({reason or 'no samples'})"
        elif percent < target:
            msg = f"{service}: availability {percent:.2f} % below the {target:g} % target"
        else:
            continue
        alerts.append(_alert("sla-breach", contract, f"availability:{service}", "critical", msg))
    return alerts


def incident_breach_alerts(
    contract: str, incidents: Iterable[tuple[str, str, bool | None, bool | None]]
) -> list[Alert]:
    """Incidents past their severity's response or resolution time.

    `incidents`: (id, severity, response met, resolution met), None when the
    SLA defines no time for that severity.
    """
    alerts: list[Alert] = []
    for ident, severity, response_met, resolution_met in incidents:
        late = [
            name
            for name, met in (("response", response_met), ("resolution", resolution_met))
            if met is False
        ]
        if late:
            msg = f"incident {ident} ({severity}): {' and '.join(late)} time exceeded"
            alerts.append(_alert("sla-breach", contract, f"incident:{ident}", "critical", msg))
    return alerts


# -- exit --------------------------------------------------------------------------------


def exit_deadline_alerts(
    contract: str, dates: Mapping[str, date], today: date, warning_days: int
) -> list[Alert]:
    """Exit dates coming within `warning_days` (or passed, for `erasure_by`).

    `dates`: name -> day, e.g. switch_over, erasure_earliest, erasure_by of
    the recorded calendar; the caller leaves out the steps already done.
    """
    alerts: list[Alert] = []
    for name, day in dates.items():
        left = (day - today).days
        if left < 0 and name != "erasure_by":
            continue  # a date reached is the flow's business (it waits on it), not news
        if left < 0:
            msg = f"exit: {name} was {day.isoformat()}, {-left} days ago, and is not done"
            severity: Severity = "critical"
        elif left <= warning_days:
            msg = f"exit: {name} on {day.isoformat()}, in {left} days"
            severity = "critical" if left <= 1 else "warning"
        else:
            continue
        alerts.append(_alert("exit-deadline", contract, name, severity, msg))
    return alerts


# -- not repeating -----------------------------------------------------------------------


def due_alerts(
    alerts: Iterable[Alert], sent: Mapping[str, datetime], now: datetime, repeat: timedelta
) -> list[Alert]:
    """The alerts not sent within `repeat` (by key); one per key, first wins."""
    chosen: dict[str, Alert] = {}
    for alert in alerts:
        last = sent.get(alert.key)
        if alert.key in chosen or (last is not None and now - last < repeat):
            continue
        chosen[alert.key] = alert
    return list(chosen.values())
