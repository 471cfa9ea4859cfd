"""Alerts from results (pure), the ledger that keeps a fact from being told every round,
and the playbook's notifications section."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from handover.connectors.base import CommandResult
from handover.contract.health_checks import HealthCheckSpec
from handover.contract.operations import Notifications, Operations
from handover.estate.health_checks import take_sample
from handover.operations.alert_ledger import claim, read_sent
from handover.operations.alerts import (
    availability_breach_alerts,
    backup_failed_alert,
    backups_missed_alerts,
    drill_alert,
    due_alerts,
    exit_deadline_alerts,
    health_alerts,
    incident_breach_alerts,
)

NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)


class _Answer:
    """A host session that answers every command with one fixed result."""

    def __init__(self, stdout: str, exit_status: int = 0) -> None:
        self.result = CommandResult(exit_status=exit_status, stdout=stdout.encode(), stderr=b"")

    def run(
        self, command: str, *, stdin: bytes | None = None, timeout_s: float = 120
    ) -> CommandResult:
        return self.result


def _cert_sample(
    stdout: str, exit_status: int = 0, runner: object | None = "answer"
) -> list[tuple[str | None, str, bool, str]]:
    spec = HealthCheckSpec(name="c", kind="cert", host="web01", path="/etc/ssl/site.pem")
    session = _Answer(stdout, exit_status) if runner == "answer" else None
    sample = take_sample(
        spec,
        at=NOW,
        runner=session,
        reach_error="refused",
        cert_warning_days=30,  # type: ignore[arg-type]
    )
    return [(sample.host, f"{sample.kind}:{sample.check}", sample.ok, sample.detail)]


def test_a_certificate_within_the_warning_days_is_a_warning_naming_host_and_path() -> None:
    (alert,) = health_alerts("acme", _cert_sample("notAfter=Mar 11 09:00:00 2026 GMT"))
    assert (alert.kind, alert.severity, alert.subject) == ("cert-expiring", "warning", "web01:c")
    assert "/etc/ssl/site.pem expires on 2026-03-11, in 9 days" in alert.message
    assert alert.event == "handover.cert-expiring"


def test_an_expired_or_unreadable_certificate_is_critical_and_a_valid_one_is_silent() -> None:
    (expired,) = health_alerts("acme", _cert_sample("notAfter=Feb 11 09:00:00 2026 GMT"))
    (unreadable,) = health_alerts("acme", _cert_sample("", exit_status=1))
    assert expired.severity == unreadable.severity == "critical"
    assert "expired on 2026-02-11" in expired.message and "unreadable" in unreadable.message
    assert health_alerts("acme", _cert_sample("notAfter=Dec 11 09:00:00 2026 GMT")) == []


def test_a_probe_that_did_not_run_is_downtime_not_a_certificate_alert() -> None:
    assert health_alerts("acme", _cert_sample("", runner=None)) == []


def test_inventory_checks_name_the_mount_and_reachability_is_not_an_alert() -> None:
    verdicts = [
        ("db01", "disk:/var", False, "95.0% used (1 GiB free of 20 GiB), threshold 90%"),
        ("db01", "disk:/", True, "40.0% used"),
        ("db01", "reachable", False, "host did not answer"),
        ("db01", "systemd", False, "nginx failed (exit 3)"),
    ]
    (alert,) = health_alerts("acme", verdicts)
    assert (alert.kind, alert.subject) == ("disk-threshold", "db01:/var")
    assert alert.message.startswith("db01: 95.0% used")


def test_backups_drill_sla_and_exit_alerts() -> None:
    failed = backup_failed_alert("acme", "pg", "PermanentConnectorError: auth refused")
    assert (failed.kind, failed.severity, failed.subject) == ("backup-failed", "critical", "pg")
    missed = backups_missed_alerts(
        "acme", {"pg": NOW - timedelta(hours=50), "www": NOW - timedelta(hours=2), "new": None},
        NOW, timedelta(hours=36),
    )  # fmt: skip
    assert [(a.subject, a.message) for a in missed] == [
        ("new", "no backup of new in the store"),
        ("pg", "newest backup of pg is 50 h old (at most 36 h)"),
    ]
    assert drill_alert("acme", []) is None
    drill = drill_alert("acme", [f"d{n}: 1 file differs" for n in range(5)])
    assert drill is not None and drill.message.endswith("(+2 more)")
    services = [("web", 98.5, None), ("db", None, "1 sample in 30 days"), ("mail", 99.9, None)]
    breaches = availability_breach_alerts("acme", services, 99.0)
    assert [a.subject for a in breaches] == ["availability:web", "availability:db"]
    assert "98.50 % below the 99 % target" in breaches[0].message
    assert availability_breach_alerts("acme", services, None) == []  # no target, no breach
    late = incident_breach_alerts(
        "acme", [("T-1", "P1", False, True), ("T-2", "P2", True, True), ("T-3", "P9", None, None)]
    )
    assert [(a.subject, a.message) for a in late] == [
        ("incident:T-1", "incident T-1 (P1): response time exceeded")
    ]
    today = date(2026, 3, 2)
    dates = {"switch_over": date(2026, 3, 12), "erasure_by": date(2026, 2, 27)}
    exits = exit_deadline_alerts("acme", dates, today, warning_days=14)
    assert [(a.subject, a.severity) for a in exits] == [
        ("switch_over", "warning"),
        ("erasure_by", "critical"),
    ]
    assert exit_deadline_alerts("acme", {"switch_over": date(2026, 5, 1)}, today, 14) == []


def test_a_fact_is_told_once_per_repeat_interval(tmp_path: Path) -> None:
    (alert,) = health_alerts("acme", _cert_sample("notAfter=Mar 11 09:00:00 2026 GMT"))
    ledger = tmp_path / "operational" / "alerts-sent.json"
    repeat = timedelta(hours=24)
    assert claim(ledger, [alert, alert], NOW, repeat) == [alert]  # one per key
    assert claim(ledger, [alert], NOW + timedelta(hours=23), repeat) == []
    assert claim(ledger, [alert], NOW + timedelta(hours=24), repeat) == [alert]
    assert read_sent(ledger) == {alert.key: NOW + timedelta(hours=24)}
    assert oct(ledger.stat().st_mode & 0o777) == "0o600"
    ledger.write_text("{not json")  # damaged: told again rather than never
    assert claim(ledger, [alert], NOW + timedelta(hours=25), repeat) == [alert]
    assert json.loads(ledger.read_text())[alert.key].startswith("2026-03-03T10:00")
    assert due_alerts([alert], {alert.key: NOW}, NOW + timedelta(hours=1), repeat) == []


def test_notifications_name_a_block_and_known_kinds_only() -> None:
    settings = Operations.model_validate({"notifications": {"block": "custom-webhook/ops-hook"}})
    assert settings.notifications is not None
    assert "cert-expiring" in settings.notifications.kinds
    assert Operations().notifications is None and Operations().patching.approval == "report"
    for bad in ({"block": "ops-hook"}, {"block": "x/y", "kinds": ["disk-full"]}):
        with pytest.raises(ValidationError):
            Notifications.model_validate(bad)
