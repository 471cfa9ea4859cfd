"""evaluate_health and availability on hand-made inventories."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from handover.estate.health import HealthCheckResult, availability, evaluate_health
from handover.estate.inventory import Certificate, Disk, Inventory

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def disk(mount: str, percent: float) -> Disk:
    size = 100 * 1024**3
    used = int(size * percent / 100)
    return Disk(
        mount=mount,
        fstype="ext4",
        size_bytes=size,
        used_bytes=used,
        avail_bytes=size - used,
        used_percent=percent,
    )


def cert(path: str, days: int) -> Certificate:
    return Certificate(
        path=path,
        subject=f"CN={path}",
        issuer="CN=ca",
        not_after=NOW + timedelta(days=days),
        days_left=days,
    )


def inventory() -> Inventory:
    return Inventory(
        host="web01",
        collected_at=NOW,
        disks=[disk("/", 50.0), disk("/var", 95.2)],
        certificates=[
            cert("/etc/ssl/ok.pem", 200),
            cert("/etc/ssl/soon.pem", 10),
            cert("/etc/ssl/old.pem", -3),
        ],
    )


def test_evaluate_health_flags_full_disks_and_expiring_certificates() -> None:
    results = evaluate_health(inventory(), True, disk_threshold_percent=90, cert_warning_days=30)
    verdicts = {r.check: r.ok for r in results}
    assert verdicts == {
        "reachable": True,
        "disk:/": True,
        "disk:/var": False,
        "cert:/etc/ssl/ok.pem": True,
        "cert:/etc/ssl/soon.pem": False,
        "cert:/etc/ssl/old.pem": False,
    }
    by_check = {r.check: r for r in results}
    assert "95.2% used" in by_check["disk:/var"].detail
    assert "in 10 days" in by_check["cert:/etc/ssl/soon.pem"].detail
    assert "expired on 2026-11-24 (3 days ago)" in by_check["cert:/etc/ssl/old.pem"].detail
    assert all(r.host == "web01" and r.at == NOW for r in results)


def test_thresholds_are_strict_boundaries() -> None:
    inv = Inventory(
        host="h", collected_at=NOW, disks=[disk("/", 90.0)], certificates=[cert("/c.pem", 30)]
    )
    verdicts = {r.check: r.ok for r in evaluate_health(inv, True, 90, 30)}
    assert verdicts == {"reachable": True, "disk:/": False, "cert:/c.pem": True}


def test_unreachable_host_yields_only_a_failed_reachability_check() -> None:
    results = evaluate_health(None, False, 90, 30, host="db01", at=NOW)
    assert results == [
        HealthCheckResult(
            host="db01", check="reachable", ok=False, detail="host did not answer", at=NOW
        )
    ]
    assert evaluate_health(inventory(), False, 90, 30)[0].ok is False


def test_availability_counts_reachability_only() -> None:
    up = evaluate_health(inventory(), True, 90, 30)
    down = evaluate_health(None, False, 90, 30, host="db01", at=NOW)
    assert availability(up) == 100.0  # full disks do not count as downtime
    assert availability(up + down + up + up) == 75.0
    with pytest.raises(ValueError, match="no reachability check"):
        availability([])
