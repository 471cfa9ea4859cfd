"""Pending package updates of a host: the script that asks its package manager, and its parser.

The operational run reports what would change on each host without
changing anything (simulated upgrades). The script runs through any
connector with a shell; parsing its output is kept here, pure, so that the
task only moves bytes and the report's rules live in one place. Applying
them, in the maintenance window and with the playbook's approval, is
`handover.operations.patching`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

# Simulated upgrades list what would change without changing anything.
UPDATES_SCRIPT = r"""
if command -v apt-get >/dev/null 2>&1; then
  echo "manager: apt"; apt-get -s -o Debug::NoLocking=1 upgrade 2>/dev/null | grep '^Inst ' || true
elif command -v dnf >/dev/null 2>&1; then
  echo "manager: dnf"; dnf -q check-update 2>/dev/null || true
elif command -v apk >/dev/null 2>&1; then
  echo "manager: apk"; apk -s upgrade 2>/dev/null || true
else
  echo "manager: none"
fi
"""

MAX_PACKAGES_LISTED = 200


class PendingUpdates(BaseModel):
    """The updates a host's package manager would install, security ones counted apart."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str
    package_manager: str  # apt, dnf, apk, none (no known manager), unknown (no output)
    pending: int
    security: int
    packages: list[str]  # the manager's lines, the first MAX_PACKAGES_LISTED


class UpdatesUnreadable(BaseModel):
    """A host whose pending updates cannot be asked for (no shell), and why."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str
    package_manager: Literal[None] = None
    unreadable: str


def parse_updates(host: str, output: str) -> PendingUpdates:
    """Read UPDATES_SCRIPT's output: a `manager:` line, then one line per pending package."""
    lines = output.splitlines()
    manager = lines[0].removeprefix("manager: ") if lines else "unknown"
    pending = [line for line in lines[1:] if line.strip()]
    security = [line for line in pending if "security" in line.lower()]
    return PendingUpdates(
        host=host,
        package_manager=manager,
        pending=len(pending),
        security=len(security),
        packages=pending[:MAX_PACKAGES_LISTED],
    )
