"""Applying pending security updates (MCO): the plan, the window, the commands and their reading.

Pending updates used to be listed and never applied. Patching changes the
client's hosts, so it keeps three rules, all stated here and kept pure:

- only in the maintenance window (`services.maintenance.window`, wall-clock
  time of the contract's zone): outside it, or without a window, nothing
  is run that changes a host (`window_refusal` says why);
- only with the playbook's approval (`operations.patching.approval`): `auto`
  applies, `ask` waits for a person's answer in a Prefect form, `report`
  lists and never applies;
- what changed is recorded: each package's version before and after, read
  from the package database (`dpkg-query`, `rpm`) around the upgrade, and on
  failure the package manager's own output (its end), so the record says
  what happened rather than what was meant.

The scripts run through any connector with a shell; they use `sudo -n`
when the login is not root (a password prompt would hang: refused instead).
Package names come from the manager's output and are checked against
`PACKAGE_NAME` before they reach a command line, then shell-quoted anyway.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from handover.operations.availability import in_window
from handover.operations.business_calendar import BusinessCalendar

__all__ = [
    "OUTPUT_TAIL",
    "PACKAGE_NAME",
    "PackageChange",
    "PatchPlan",
    "PatchRecord",
    "apply_command",
    "output_tail",
    "parse_plan",
    "parse_versions",
    "plan_script",
    "versions_command",
    "window_refusal",
]

Manager = Literal["apt", "dnf"]
Outcome = Literal["applied", "failed", "reported", "refused", "declined", "nothing to do"]
OUTPUT_TAIL = 4000  # characters of the package manager's output kept with a failure
PACKAGE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9+._-]{0,200}$")

_SUDO = 'if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO="sudo -n"; fi\n'

_PLAN = r"""
if command -v apt-get >/dev/null 2>&1; then
  echo "manager: apt"
  [ -n "$REFRESH" ] && { $SUDO apt-get -q update >/dev/null 2>&1 || echo "refresh: failed"; }
  apt-get -s -o Debug::NoLocking=1 upgrade 2>/dev/null | grep '^Inst ' || true
elif command -v dnf >/dev/null 2>&1; then
  echo "manager: dnf"
  dnf -q check-update 2>/dev/null | sed 's/^/update: /' || true
  dnf -q updateinfo list --security --updates 2>/dev/null | sed 's/^/security: /' || true
else
  echo "manager: none"
fi
"""


class PackageChange(BaseModel):
    """One package of a plan: installed version, the one offered, and whether it is security."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=PACKAGE_NAME.pattern)
    before: str | None = None  # installed, as the manager's plan states it (None: not stated)
    candidate: str
    security: bool


class PatchPlan(BaseModel):
    """What a host's package manager offers; `chosen` is what patching would apply."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str
    manager: Literal["apt", "dnf", "none", "unknown"]
    packages: list[PackageChange]
    security_only: bool
    refresh_failed: bool = False

    @property
    def chosen(self) -> list[PackageChange]:
        return [p for p in self.packages if p.security or not self.security_only]


class PatchRecord(BaseModel):
    """What patching did on one host, kept as evidence: no secret, package names and versions."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str
    outcome: Outcome
    reason: str
    at: datetime
    window: str | None
    approval: Literal["auto", "ask", "report"]
    approved_by: str | None = None
    manager: str | None = None
    before: dict[str, str] = {}  # package -> version installed before (package database)
    after: dict[str, str] = {}  # package -> version installed after
    planned: list[PackageChange] = []
    exit_status: int | None = None
    output: str | None = None  # the end of the package manager's output, on failure only


def window_refusal(
    now: datetime, window: str | None, calendar: BusinessCalendar | None
) -> str | None:
    """Why patching may not change a host now (None: it may: `now` is in the window)."""
    if calendar is None:
        return "services.maintenance.window is not set: patching applies only in the window"
    if not in_window(now, calendar):
        local = now.astimezone(calendar.zone).strftime("%a %Y-%m-%d %H:%M %Z")
        return f"outside the maintenance window ({window}): it is {local}"
    return None


def plan_script(refresh: bool) -> str:
    """Ask the package manager what it would upgrade (simulated; `refresh`: lists updated first)."""
    return _SUDO + ("REFRESH=1\n" if refresh else "REFRESH=\n") + _PLAN


_APT_INST = re.compile(r"^Inst (\S+) (?:\[([^\]]+)\] )?\((\S+) ([^)\[]*)")
_DNF_UPDATE = re.compile(r"^(\S+)\.[A-Za-z0-9_]+\s+(\S+)\s+(\S+)\s*$")
_DNF_NEVRA = re.compile(r"^(.+)-(?:\d+:)?[^-]+-[^-]+\.[A-Za-z0-9_]+$")


def parse_plan(host: str, output: str, security_only: bool) -> PatchPlan:
    """Read `plan_script`'s output (apt `Inst` lines; dnf check-update and updateinfo lines)."""
    lines = output.splitlines()
    first = lines[0].removeprefix("manager: ").strip() if lines else "unknown"
    manager = first if first in ("apt", "dnf", "none") else "unknown"
    refresh_failed = any(line.strip() == "refresh: failed" for line in lines)
    packages: list[PackageChange] = []
    if manager == "apt":
        for line in lines[1:]:
            match = _APT_INST.match(line.strip())
            if match and PACKAGE_NAME.match(match[1]):
                packages.append(
                    PackageChange(
                        name=match[1],
                        before=match[2],
                        candidate=match[3],
                        security="security" in match[4].lower(),
                    )
                )
    elif manager == "dnf":
        secure = set()
        for line in lines[1:]:
            if line.startswith("security: "):
                nevra = line.removeprefix("security: ").split()[-1]
                name = _DNF_NEVRA.match(nevra)
                if name:
                    secure.add(name[1])
        for line in lines[1:]:
            match = _DNF_UPDATE.match(line.removeprefix("update: ").strip())
            if line.startswith("update: ") and match and PACKAGE_NAME.match(match[1]):
                packages.append(
                    PackageChange(name=match[1], candidate=match[2], security=match[1] in secure)
                )
    return PatchPlan(
        host=host,
        manager=manager,  # type: ignore[arg-type]
        packages=packages,
        security_only=security_only,
        refresh_failed=refresh_failed,
    )


def _names(packages: Iterable[str]) -> str:
    names = list(packages)
    bad = [n for n in names if not PACKAGE_NAME.match(n)]
    if bad:
        raise ValueError(f"not a package name: {bad[0]!r}")
    return " ".join(shlex.quote(n) for n in names)


def versions_command(manager: Manager, packages: Iterable[str]) -> str:
    """Installed versions from the package database, one `name version` line each."""
    names = _names(packages)
    if manager == "apt":
        return f"dpkg-query -W -f='${{Package}} ${{Version}}\\n' {names}"
    return f"rpm -q --qf '%{{NAME}} %{{EPOCHNUM}}:%{{VERSION}}-%{{RELEASE}}\\n' {names}"


def parse_versions(output: str) -> dict[str, str]:
    """`name version` lines as a dict; other lines (rpm's "not installed") are skipped."""
    versions: dict[str, str] = {}
    for line in output.splitlines():
        parts = line.split()
        if len(parts) == 2 and PACKAGE_NAME.match(parts[0]):
            versions[parts[0]] = parts[1]
    return versions


def apply_command(manager: Manager, packages: Iterable[str]) -> str:
    """Upgrade exactly these packages, non-interactively, keeping the host's configuration files."""
    names = _names(packages)
    if manager == "apt":
        return (
            _SUDO + "$SUDO env DEBIAN_FRONTEND=noninteractive apt-get -y -q "
            "-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "
            f"install --only-upgrade {names} 2>&1"
        )
    return _SUDO + f"$SUDO dnf -y -q upgrade {names} 2>&1"


def output_tail(stdout: bytes, stderr: bytes, limit: int = OUTPUT_TAIL) -> str:
    """The end of a command's output (both streams), for a failure's record."""
    text = (stdout + (b"\n" + stderr if stderr else b"")).decode("utf-8", "replace").strip()
    return text if len(text) <= limit else "…" + text[-(limit - 1) :]
