"""Takeover (prise en charge): know the client's estate on day one, and plan the exit already.

Inventory every host through a pinned host key, take a baseline of every
dataset (per-file SHA-256, no copy kept), check that every credential the
playbook names was received, and write the baseline report ("état des
lieux") and the reversibility plan.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from prefect import flow

from flows._phase import (
    PhaseOutcome,
    PhaseRun,
    Step,
    StepFailed,
    gather,
    hosts_failed,
    phase_run_name,
    phase_task_runner,
)
from flows.host_keys import confirm_and_pin
from handover.bundle.types import MemberRecord
from handover.contract.loader import load_playbook
from handover.contract.playbook import Playbook
from handover.documents.baseline_report import baseline_report
from handover.documents.reversibility_plan import reversibility_plan
from handover.estate.inventory import Inventory
from tasks.credentials import missing_credentials
from tasks.hosts import SSH_SESSIONS_PER_CONTRACT, inventory_host, snapshot_dataset, ssh_limit_name
from tasks.runtime import ensure_concurrency_limit


@flow(
    name="takeover",
    flow_run_name=phase_run_name,
    task_runner=phase_task_runner(),
    log_prints=True,
)
def takeover(playbook_path: str, pin_host_keys: bool = False, fresh: bool = False) -> PhaseOutcome:
    """Prise en charge: parties, hosts, inventory, credentials, baseline, documentation, plan.

    `pin_host_keys` records the host keys of first contact into the contract's
    known_hosts, once a human confirms them (the flow pauses for it).
    `fresh` reruns items already done.
    """
    playbook = load_playbook(Path(playbook_path))
    ensure_concurrency_limit(ssh_limit_name(playbook.contract_id), SSH_SESSIONS_PER_CONTRACT)
    run = PhaseRun(playbook, "takeover", fresh=fresh)

    # What the hosts gave, shared by the items below (partial when a host failed).
    seen = Seen()

    run.item("parties-confirmed", lambda: confirm_parties(run, playbook))
    run.item(
        "hosts-reachable", lambda: reach_hosts(run, playbook_path, playbook, seen, pin_host_keys)
    )
    run.item("inventory", lambda: record_inventories(run, seen))
    run.item("credentials-received", lambda: check_credentials(run, playbook_path))
    run.item("baseline-snapshot", lambda: take_baseline(run, playbook_path, playbook, seen))
    run.item("documentation-collected", lambda: collect_documentation(run, playbook, seen))
    run.item("baseline-report", lambda: write_baseline_report(run, playbook, seen))
    run.item("reversibility-plan", lambda: draft_reversibility_plan(run, playbook))
    return run.finish()


@dataclass
class Seen:
    """Facts gathered by one item and used by the next ones."""

    inventories: dict[str, Inventory] = field(default_factory=dict)
    host_errors: dict[str, str] = field(default_factory=dict)
    snapshots: dict[str, list[MemberRecord]] = field(default_factory=dict)


def confirm_parties(run: PhaseRun, playbook: Playbook) -> Step[None]:
    parties = playbook.contract.parties
    missing = [
        side
        for side, party in (("provider", parties.provider), ("client", parties.client))
        if not party.contacts
    ]
    if missing:
        raise StepFailed(f"no contact given for: {', '.join(missing)}")
    record = {
        "contract": playbook.contract_id,
        "provider": parties.provider.model_dump(mode="json"),
        "client": parties.client.model_dump(mode="json"),
        "dates": playbook.contract.dates.model_dump(mode="json"),
    }
    return Step([run.write_json("parties.json", record, "document")])


def reach_hosts(
    run: PhaseRun, playbook_path: str, playbook: Playbook, seen: Seen, pin_host_keys: bool
) -> Step[None]:
    """Reach every host through its pinned key; the inventory run proves it.

    With `pin_host_keys`, the keys of first contact are shown to a human
    (next to what the playbook pins) and recorded once confirmed.
    """
    evidence = []
    if pin_host_keys:
        evidence.extend(confirm_and_pin(run, playbook_path))
    names = [h.name for h in playbook.hosts]
    futures = [inventory_host.submit(playbook_path, name) for name in names]
    seen.inventories, seen.host_errors = gather(futures, names)
    table = {
        name: {"reachable": name in seen.inventories, "error": seen.host_errors.get(name)}
        for name in names
    }
    evidence.append(run.write_json("reachability.json", table, "log"))
    hosts_failed(seen.host_errors)
    return Step(evidence)


def record_inventories(run: PhaseRun, seen: Seen) -> Step[None]:
    evidence = run.write_inventories(seen.inventories)
    hosts_failed(seen.host_errors)
    return Step(evidence)


def check_credentials(run: PhaseRun, playbook_path: str) -> Step[None]:
    """Done only when every credential reference of the playbook resolves."""
    missing = missing_credentials(playbook_path)
    if missing:
        raise StepFailed("credentials not received: " + ", ".join(missing))
    return Step([run.write_json("credentials-check.json", {"missing": []}, "log")])


def take_baseline(run: PhaseRun, playbook_path: str, playbook: Playbook, seen: Seen) -> Step[None]:
    names = [d.name for d in playbook.datasets]
    futures = [snapshot_dataset.submit(playbook_path, name) for name in names]
    seen.snapshots, errors = gather(futures, names)
    evidence = [
        run.write_json(
            run.paths.baselines_dir / f"{name}.json",
            [m.model_dump(mode="json") for m in members],
            "snapshot",
        )
        for name, members in sorted(seen.snapshots.items())
    ]
    hosts_failed(errors)
    return Step(evidence)


def collect_documentation(run: PhaseRun, playbook: Playbook, seen: Seen) -> Step[None]:
    """The documentation handed over: the playbook and what the hosts say of themselves."""
    inventories = seen.inventories
    folder = run.paths.documentation_dir
    evidence = []
    if playbook.source is not None:
        evidence.append(
            run.write_file(folder / "playbook.yaml", playbook.source.read_bytes(), "document")
        )
    for name, inv in sorted(inventories.items()):
        facts = {
            "host": name,
            "os": inv.os_name,
            "services": [s.model_dump(mode="json") for s in inv.services],
            "cron": [c.model_dump(mode="json") for c in inv.cron],
        }
        evidence.append(run.write_json(folder / f"{name}-services.json", facts, "document"))
    return Step(evidence)


def write_baseline_report(run: PhaseRun, playbook: Playbook, seen: Seen) -> Step[None]:
    doc = baseline_report(
        playbook, list(seen.inventories.values()), seen.snapshots, datetime.now(UTC)
    )
    return Step(run.write_document(doc, "report"))


def draft_reversibility_plan(run: PhaseRun, playbook: Playbook) -> Step[None]:
    doc = reversibility_plan(playbook, datetime.now(UTC))
    return Step(run.write_document(doc, "document"))
