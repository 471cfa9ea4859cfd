"""Health-check tasks: one host each, facts gathered here, judged by the core.

`sample_host` takes one round of the playbook's health checks on a host (or
the network-only checks, host None) and `record_samples` appends the round
to the contract's sample store, which availability is computed from.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from handover.contract.health_checks import HealthCheckSpec
from handover.contract.loader import load_playbook
from handover.contract.playbook import Playbook
from handover.errors import UsageError
from handover.estate.health import HealthCheckResult, evaluate_health
from handover.estate.health_checks import HealthSample, default_checks, is_due, take_sample
from handover.estate.inventory_collect import NO_SHELL_REASON, collect_inventory
from handover.operations.alerts import Alert, availability_breach_alerts, health_alerts
from handover.operations.availability import (
    CheckRef,
    ServiceAvailability,
    maintenance_calendar,
    service_availability,
)
from handover.operations.business_calendar import contract_zone
from handover.operations.health_samples import SampleStore
from handover.operations.sla import sla_set
from handover.operations.updates import (
    UPDATES_SCRIPT,
    PendingUpdates,
    UpdatesUnreadable,
    parse_updates,
)
from handover.phases import Phase
from handover.secrets.references import Secret, resolve_secret
from handover.state.layout import ContractPaths
from tasks.alerts import emit_alerts
from tasks.hosts import host_session


def health_checks(playbook: Playbook) -> list[HealthCheckSpec]:
    """The playbook's health checks, or a `reachable` check per host when it lists none."""
    return list(playbook.services.health_checks) or default_checks(h.name for h in playbook.hosts)


def sample_store(contract: str) -> SampleStore:
    """The contract's sample store: `operational/health/samples-YYYY-MM.jsonl`."""
    return SampleStore(ContractPaths(contract).phase_dir(Phase.OPERATIONAL) / "health")


@task(cache_policy=NO_CACHE, task_run_name="health checks due")
def due_checks(playbook_path: str) -> dict[str, list[str]]:
    """The checks due this round, by host ("" for the checks needing no host)."""
    playbook = load_playbook(Path(playbook_path))
    checks = health_checks(playbook)
    longest = max((c.interval_minutes for c in checks), default=5)
    now = datetime.now(UTC)
    last = sample_store(playbook.contract_id).last_taken(now, timedelta(minutes=longest + 1))
    due: dict[str, list[str]] = {}
    for check in checks:
        if is_due(check, last.get(check.name), now):
            due.setdefault(check.host or "", []).append(check.name)
    return due


@task(cache_policy=NO_CACHE, task_run_name="health samples of {host_name}")
def sample_host(
    playbook_path: str, host_name: str | None, check_names: list[str]
) -> list[HealthSample]:
    """One sample of each named check on the host (None: the checks needing no host, http).

    A host whose session cannot be opened yields failed samples that say why,
    so an unreachable host is downtime in the store, not a missing round.
    """
    playbook = load_playbook(Path(playbook_path))
    wanted = set(check_names)
    specs = [c for c in health_checks(playbook) if c.name in wanted]
    at = datetime.now(UTC)
    if host_name is None:
        return [take_sample(c, at=at, runner=None) for c in specs]  # http: availability only
    if host_name not in {h.name for h in playbook.hosts}:
        return [
            take_sample(c, at=at, runner=None, reach_error=f"{host_name} is not in the perimeter")
            for c in specs
        ]
    host = playbook.host(host_name)
    address = host.address if host.transport == "ssh" else "127.0.0.1"
    network = [c for c in specs if c.kind in ("tcp", "http")]
    on_host = [c for c in specs if c.kind not in ("tcp", "http")]
    samples = [take_sample(c, at=at, runner=None, address=address) for c in network]
    if not on_host:
        return samples
    try:
        with host_session(playbook, host) as connector:
            for c in on_host:
                env = _env(c)
                samples.append(
                    take_sample(
                        c,
                        at=at,
                        runner=connector,
                        env=env,
                        address=address,
                        disk_threshold=playbook.sla.disk_threshold_percent,
                        cert_warning_days=playbook.sla.cert_warning_days,
                    )
                )
    except Exception as exc:  # the session failed: every host check of the round is down
        why = f"{type(exc).__name__}: {exc}"
        done = {s.check for s in samples}
        samples += [
            take_sample(c, at=at, runner=None, reach_error=why)
            for c in on_host
            if c.name not in done
        ]
    alert_on_samples(playbook, samples)
    return samples


def alert_on_samples(playbook: Playbook, samples: list[HealthSample]) -> list[Alert]:
    """Emit `handover.cert-expiring` and `handover.disk-threshold` for the failed ones."""
    verdicts = [(s.host, f"{s.kind}:{s.check}", s.ok, s.detail) for s in samples]
    return emit_alerts(playbook, health_alerts(playbook.contract_id, verdicts))


def _env(check: HealthCheckSpec) -> dict[str, Secret]:
    """A postgres check's credentials, resolved when the probe runs (never stored)."""
    return {name: resolve_secret(ref) for name, ref in check.env.items()}


@dataclass(frozen=True)
class PeriodHealth:
    """A period read from the sample store: each service's figure and each check's last sample."""

    services: list[ServiceAvailability]
    latest: list[HealthSample]
    samples: int
    unreadable_lines: int


@task(cache_policy=NO_CACHE, task_run_name="availability from the health samples")
def period_health(playbook_path: str, start: datetime, end: datetime) -> PeriodHealth:
    """Measure every service over [start, end) from the stored samples (read, never taken here).

    UsageError names `services.maintenance.window` when it cannot be read.
    """
    playbook = load_playbook(Path(playbook_path))
    window = playbook.services.maintenance.window
    try:
        maintenance = maintenance_calendar(window, contract_zone(playbook))
    except ValueError as exc:
        raise UsageError(f"services.maintenance.window: {exc}") from exc
    checks = [
        CheckRef(c.name, c.service_name, c.interval_minutes * 60) for c in health_checks(playbook)
    ]
    latest: dict[str, HealthSample] = {}
    count = 0

    def read() -> Iterator[HealthSample]:  # one pass over the month files, nothing kept
        nonlocal count
        for sample in sample_store(playbook.contract_id).iter(start, end, bad):
            count += 1
            if sample.check not in latest or latest[sample.check].at <= sample.at:
                latest[sample.check] = sample
            yield sample

    bad: list[int] = []
    services = service_availability(checks, read(), start, end, maintenance)
    target = playbook.sla.availability_percent if sla_set(playbook) else None
    figures = [(s.service, s.percent, s.reason) for s in services]
    emit_alerts(playbook, availability_breach_alerts(playbook.contract_id, figures, target))
    return PeriodHealth(
        services=services, latest=list(latest.values()), samples=count, unreadable_lines=sum(bad)
    )


@task(cache_policy=NO_CACHE, task_run_name="record {contract} health samples")
def record_samples(contract: str, samples: list[HealthSample]) -> int:
    """Append the round to the contract's sample store (fsynced); returns how many."""
    return sample_store(contract).append(samples)


@task(cache_policy=NO_CACHE, task_run_name="health of {host_name}")
def check_host_health(playbook_path: str, host_name: str) -> list[HealthCheckResult]:
    """Reach the host, collect its inventory and judge it against the SLA thresholds."""
    playbook = load_playbook(Path(playbook_path))
    host = playbook.host(host_name)
    with host_session(playbook, host) as connector:
        inventory = collect_inventory(connector, host.cert_paths)
    results = evaluate_health(
        inventory,
        True,
        playbook.sla.disk_threshold_percent,
        playbook.sla.cert_warning_days,
        host=host_name,
    )
    verdicts = [(r.host, r.check, r.ok, r.detail) for r in results]
    emit_alerts(playbook, health_alerts(playbook.contract_id, verdicts))
    return results


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
