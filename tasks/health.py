"""Health-check tasks: one host each, facts gathered here, judged by the core."""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from handover.contract.loader import load_playbook
from handover.estate.health import HealthCheckResult, evaluate_health
from handover.estate.inventory_collect import NO_SHELL_REASON, collect_inventory
from handover.operations.updates import (
    UPDATES_SCRIPT,
    PendingUpdates,
    UpdatesUnreadable,
    parse_updates,
)
from tasks.hosts import host_session


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
def pending_updates(playbook_path: str, host_name: str) -> PendingUpdates | UpdatesUnreadable:
    """Packages with a pending update, as the host's package manager reports them (simulated)."""
    playbook = load_playbook(Path(playbook_path))
    host = playbook.host(host_name)
    with host_session(playbook, host) as connector:
        if not connector.has_shell():
            return UpdatesUnreadable(host=host_name, unreadable=NO_SHELL_REASON)
        result = connector.run(UPDATES_SCRIPT, timeout_s=300)
    return parse_updates(host_name, result.stdout.decode("utf-8", "replace"))
