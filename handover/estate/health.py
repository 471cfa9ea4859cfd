"""Health checks of the operational run: reachability, disk space, certificate expiry.

The checks are pure functions of an inventory (collected by the connector)
and the SLA thresholds of the playbook, so a scheduled flow only gathers
facts and this module judges them: the same inventory gives the same
verdicts, in a test or in production.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict

from handover.estate.inventory import Inventory
from handover.sizes import size_text

__all__ = ["HealthCheckResult", "availability", "evaluate_health"]


class HealthCheckResult(BaseModel):
    """One verdict: which host, which check (`reachable`, `disk:/var`, `cert:/etc/ssl/x.pem`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str
    check: str
    ok: bool
    detail: str
    at: datetime


def evaluate_health(
    inventory: Inventory | None,
    reachable: bool,
    disk_threshold_percent: float,
    cert_warning_days: int,
    *,
    host: str | None = None,
    at: datetime | None = None,
) -> list[HealthCheckResult]:
    """Judge one host: reachability, then each disk, then each certificate.

    An unreachable host (or one without inventory) yields only the failed
    reachability check: disks and certificates were not seen, and a check
    that did not run must not count as passed. `host` names the host when
    `inventory` is None.
    """
    name = inventory.host if inventory is not None else (host or "unknown")
    when = at or (inventory.collected_at if inventory is not None else datetime.now(UTC))
    if not reachable or inventory is None:
        return [
            HealthCheckResult(
                host=name, check="reachable", ok=False, detail="host did not answer", at=when
            )
        ]
    results = [HealthCheckResult(host=name, check="reachable", ok=True, detail="answered", at=when)]
    for disk in inventory.disks:
        ok = disk.used_percent < disk_threshold_percent
        detail = (
            f"{disk.used_percent:.1f}% used ({size_text(disk.avail_bytes)} free of "
            f"{size_text(disk.size_bytes)}), threshold {disk_threshold_percent:g}%"
        )
        results.append(
            HealthCheckResult(host=name, check=f"disk:{disk.mount}", ok=ok, detail=detail, at=when)
        )
    for cert in inventory.certificates:
        days = cert.days_left
        expiry = cert.not_after.date().isoformat()
        if days < 0:
            ok, detail = False, f"{cert.subject} expired on {expiry} ({-days} days ago)"
        elif days < cert_warning_days:
            ok, detail = False, f"{cert.subject} expires on {expiry}, in {days} days"
        else:
            ok, detail = True, f"{cert.subject} valid until {expiry} ({days} days left)"
        results.append(
            HealthCheckResult(host=name, check=f"cert:{cert.path}", ok=ok, detail=detail, at=when)
        )
    return results


def availability(results: Iterable[HealthCheckResult]) -> float:
    """Percentage of reachability checks that passed.

    Availability in an SLA is about the service answering, so only the
    `reachable` checks count; a full disk is a finding, not downtime.
    Raises ValueError when there is no reachability check: no measure is not
    100 %, and an SLA report must not claim it.
    """
    reach = [r for r in results if r.check == "reachable"]
    if not reach:
        raise ValueError("availability: no reachability check among the results")
    return 100.0 * sum(r.ok for r in reach) / len(reach)
