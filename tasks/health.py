"""Health-check tasks: one host each, facts gathered here, judged by the core."""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from handover.contract.loader import load_playbook
from handover.estate.health import HealthCheckResult, evaluate_health
from handover.estate.inventory_collect import NO_SHELL_REASON, collect_inventory
from tasks.hosts import host_session

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


@task(cache_policy=NO_CACHE, task_run_name="health of {host_name}")
def check_host_health(playbook_path: str, host_name: str) -> list[HealthCheckResult]:
    """Reach the host, collect its inventory and judge it against the SLA thresholds."""
    playbook = load_playbook(Path(playbook_path))
    host = playbook.host(host_name)
    with host_session(playbook, host) as connector:
        inventory = collect_inventory(connector, host.cert_paths)
    return evaluate_health(
        inventory,
        True,
        playbook.sla.disk_threshold_percent,
        playbook.sla.cert_warning_days,
        host=host_name,
    )


@task(cache_policy=NO_CACHE, task_run_name="pending updates on {host_name}")
def pending_updates(playbook_path: str, host_name: str) -> dict[str, object]:
    """Packages with a pending update, as the host's package manager reports them (simulated)."""
    playbook = load_playbook(Path(playbook_path))
    host = playbook.host(host_name)
    with host_session(playbook, host) as connector:
        if not connector.has_shell():
            return {"host": host_name, "package_manager": None, "unreadable": NO_SHELL_REASON}
        result = connector.run(UPDATES_SCRIPT, timeout_s=300)
    lines = result.stdout.decode("utf-8", "replace").splitlines()
    manager = lines[0].removeprefix("manager: ") if lines else "unknown"
    pending = [line for line in lines[1:] if line.strip()]
    security = [line for line in pending if "security" in line.lower()]
    return {
        "host": host_name,
        "package_manager": manager,
        "pending": len(pending),
        "security": len(security),
        "packages": pending[:200],
    }
