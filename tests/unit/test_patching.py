"""Patching rules on plain values: the package managers' plans, the window, the commands."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from handover.operations.availability import maintenance_calendar
from handover.operations.patching import (
    OUTPUT_TAIL,
    apply_command,
    output_tail,
    parse_plan,
    parse_versions,
    plan_script,
    versions_command,
    window_refusal,
)

APT = """manager: apt
Inst libssl3 [3.0.11-1~deb12u1] (3.0.11-1~deb12u2 Debian-Security:12/stable-security [amd64])
Inst tzdata [2024a-0+deb12u1] (2025b-0+deb12u1 Debian:12.10/stable [all])
Inst newpkg (1.0-1 Debian-Security:12/stable-security [amd64])
Inst bad;name [1] (2 Debian-Security:12/stable-security [amd64])
"""
DNF = """manager: dnf
update: openssl.x86_64                 1:3.0.7-27.el9              baseos
update: tzdata.noarch                  2025b-1.el9                 baseos
security: RHSA-2024:0001 Important/Sec. openssl-1:3.0.7-27.el9.x86_64
"""
PARIS = ZoneInfo("Europe/Paris")


def test_apt_plan_keeps_versions_and_marks_security_origins() -> None:
    plan = parse_plan("web01", APT, security_only=True)
    assert plan.manager == "apt" and not plan.refresh_failed
    assert [(p.name, p.before, p.candidate, p.security) for p in plan.packages] == [
        ("libssl3", "3.0.11-1~deb12u1", "3.0.11-1~deb12u2", True),
        ("tzdata", "2024a-0+deb12u1", "2025b-0+deb12u1", False),
        ("newpkg", None, "1.0-1", True),
    ]  # a name that is not a package name never reaches a command line
    assert [p.name for p in plan.chosen] == ["libssl3", "newpkg"]
    assert len(parse_plan("web01", APT, security_only=False).chosen) == 3


def test_dnf_plan_takes_security_from_updateinfo() -> None:
    plan = parse_plan("db01", DNF + "refresh: failed\n", security_only=True)
    assert plan.manager == "dnf" and plan.refresh_failed
    assert [(p.name, p.candidate, p.security) for p in plan.packages] == [
        ("openssl", "1:3.0.7-27.el9", True),
        ("tzdata", "2025b-1.el9", False),
    ]
    assert [p.name for p in plan.chosen] == ["openssl"]
    assert parse_plan("x", "manager: none\n", True).packages == []
    assert parse_plan("x", "", True).manager == "unknown"


def test_the_window_is_wall_clock_time_of_the_contracts_zone() -> None:
    window = "Tue 20:00-23:00"
    calendar = maintenance_calendar(window, PARIS)
    tuesday_evening = datetime(2026, 3, 3, 20, 30, tzinfo=PARIS)  # 19:30 UTC
    assert window_refusal(tuesday_evening.astimezone(UTC), window, calendar) is None
    refusal = window_refusal(datetime(2026, 3, 3, 23, 30, tzinfo=PARIS), window, calendar)
    assert (
        refusal
        == "outside the maintenance window (Tue 20:00-23:00): it is Tue 2026-03-03 23:30 CET"
    )
    assert "not set" in str(window_refusal(tuesday_evening, None, None))


def test_commands_quote_names_and_refuse_what_is_not_a_package() -> None:
    assert apply_command("apt", ["libssl3", "libc6"]).endswith(
        "install --only-upgrade libssl3 libc6 2>&1"
    )
    assert "$SUDO dnf -y -q upgrade openssl" in apply_command("dnf", ["openssl"])
    assert 'SUDO="sudo -n"' in apply_command("apt", ["x"])  # never a password prompt
    with pytest.raises(ValueError, match="not a package name"):
        apply_command("apt", ["x; rm -rf /"])
    with pytest.raises(ValueError):
        versions_command("dnf", ["$(id)"])
    assert "REFRESH=1" in plan_script(True) and "REFRESH=\n" in plan_script(False)
    assert versions_command("apt", ["libssl3"]).startswith("dpkg-query -W")


def test_versions_and_output_tail() -> None:
    out = "libssl3 3.0.11-1~deb12u2\npackage nope is not installed\nlibc6 2.36-9\n"
    assert parse_versions(out) == {"libssl3": "3.0.11-1~deb12u2", "libc6": "2.36-9"}
    tail = output_tail(b"x" * 10_000, b"E: last words")
    assert len(tail) == OUTPUT_TAIL and tail.endswith("E: last words") and tail[0] == "…"
    assert output_tail(b"ok\n", b"") == "ok"
