"""Takeover (prise en charge): know the client's estate on day one, and plan the exit already.

Inventory every host through a pinned host key, take a baseline of every
dataset (per-file SHA-256, no copy kept), check that every credential the
playbook names was received, and write the baseline report ("état des
lieux") and the reversibility plan.
"""

from __future__ import annotations

import json
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
from flows.client_documents import client_documents_evidence
from flows.host_keys import confirm_and_pin
from flows.playbook_guard import guard_playbook_path
from flows.writer_lease import one_writer
from handover.bundle.members import MemberTable, member_lines
from handover.bundle.types import MemberRecord
from handover.checklist.model import evidence_for_file
from handover.contract.loader import load_playbook
from handover.contract.playbook import Playbook
from handover.documents.baseline_report import baseline_report
from handover.documents.reversibility_plan import reversibility_plan
from handover.estate.client_documents import read_index
from handover.estate.inventory import Inventory
from tasks.credentials import missing_credentials
from tasks.hosts import SSH_SESSIONS_PER_CONTRACT, inventory_host, snapshot_dataset, ssh_limit_name
from tasks.runtime import ensure_concurrency_limit, flow_run_id
from tasks.tags import tag_flow_run


@flow(
    name="takeover",
    flow_run_name=phase_run_name,
    task_runner=phase_task_runner(),
    log_prints=True,
)
@one_writer("takeover")
def takeover(playbook_path: str, pin_host_keys: bool = False, fresh: bool = False) -> PhaseOutcome:
    """Prise en charge: parties, hosts, inventory, credentials, baseline, documentation, plan.

    `pin_host_keys` records the host keys of first contact into the contract's
    known_hosts, once a human confirms them (the flow pauses for it).
    `fresh` reruns items already done.
    """
    guard_playbook_path(playbook_path)  # a deployment run: only playbooks in the folders
    playbook = load_playbook(Path(playbook_path))
    tag_flow_run(playbook.contract_id, "takeover")
    ensure_concurrency_limit(ssh_limit_name(playbook.contract_id), SSH_SESSIONS_PER_CONTRACT)
    run = PhaseRun(playbook, "takeover", fresh=fresh)

    # Each item persists what it gathers; later items read it back from disk, so a
    # rerun after a crash works from what was recorded, never from an empty memory.
    run.item("parties-confirmed", lambda: confirm_parties(run, playbook))
    run.item("hosts-reachable", lambda: reach_hosts(run, playbook_path, playbook, pin_host_keys))
    # The inventory item checks every host's recorded inventory (a host that was not
    # reached fails it, by name); the baseline reads each dataset's host itself. The
    # documents that summarise them need them complete.
    run.item("inventory", lambda: record_inventories(run, playbook))
    run.item("credentials-received", lambda: check_credentials(run, playbook_path))
    run.item("baseline-snapshot", lambda: take_baseline(run, playbook_path, playbook))
    run.item(
        "documentation-collected",
        lambda: collect_documentation(run, playbook, playbook_path),
        needs=["inventory"],
    )
    run.item(
        "baseline-report",
        lambda: write_baseline_report(run, playbook),
        needs=["inventory", "baseline-snapshot"],
    )
    run.item("reversibility-plan", lambda: draft_reversibility_plan(run, playbook))
    return run.finish()


def saved_inventories(run: PhaseRun, playbook: Playbook) -> dict[str, Inventory]:
    """Every host's inventory as recorded on disk; StepFailed naming the hosts without one."""
    folder = run.paths.inventories_dir(run.phase)
    inventories: dict[str, Inventory] = {}
    problems: list[str] = []
    for host in playbook.hosts:
        path = folder / f"{host.name}.json"
        try:
            inventories[host.name] = Inventory.model_validate_json(path.read_bytes())
        except FileNotFoundError:
            problems.append(f"{host.name}: no inventory recorded")
        except ValueError as exc:
            problems.append(f"{host.name}: recorded inventory unreadable ({exc})")
    if problems:
        raise StepFailed("; ".join(problems))
    return inventories


def saved_baselines(run: PhaseRun, playbook: Playbook) -> dict[str, MemberTable]:
    """Every dataset's baseline as recorded on disk; StepFailed naming the missing ones."""
    baselines: dict[str, MemberTable] = {}
    problems: list[str] = []
    for dataset in playbook.datasets:
        path = run.paths.baselines_dir / f"{dataset.name}.json"
        try:
            rows = json.loads(path.read_bytes())
            # Checked one by one and packed as they come (100,000 records would weigh ~70 MB).
            baselines[dataset.name] = MemberTable.from_records(
                MemberRecord.model_validate(row) for row in rows
            )
        except FileNotFoundError:
            problems.append(f"{dataset.name}: no baseline recorded")
        except ValueError as exc:
            problems.append(f"{dataset.name}: recorded baseline unreadable ({exc})")
    if problems:
        raise StepFailed("; ".join(problems))
    return baselines


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
    run: PhaseRun, playbook_path: str, playbook: Playbook, pin_host_keys: bool
) -> Step[None]:
    """Reach every host through its pinned key; the inventory run proves it.

    The inventories of the hosts reached are recorded at once (a host that
    failed does not hide what the others gave).

    With `pin_host_keys`, the keys of first contact are shown to a human
    (next to what the playbook pins) and recorded once confirmed.
    """
    evidence = []
    if pin_host_keys:
        evidence.extend(confirm_and_pin(run, playbook_path))
    names = [h.name for h in playbook.hosts]
    futures = [inventory_host.submit(playbook_path, name) for name in names]
    inventories, errors = gather(futures, names)
    run.write_inventories(inventories)
    table = {name: {"reachable": name in inventories, "error": errors.get(name)} for name in names}
    evidence.append(run.write_json("reachability.json", table, "log"))
    hosts_failed(errors)
    return Step(evidence)


def record_inventories(run: PhaseRun, playbook: Playbook) -> Step[None]:
    """The inventories recorded when the hosts were reached, read back and checked."""
    folder = run.paths.inventories_dir(run.phase)
    saved_inventories(run, playbook)
    return Step(
        [
            evidence_for_file(folder / f"{host.name}.json", "inventory", flow_run_id())
            for host in playbook.hosts
        ]
    )


def check_credentials(run: PhaseRun, playbook_path: str) -> Step[None]:
    """Done only when every credential reference of the playbook resolves."""
    missing = missing_credentials(playbook_path)
    if missing:
        raise StepFailed("credentials not received: " + ", ".join(missing))
    return Step([run.write_json("credentials-check.json", {"missing": []}, "log")])


def take_baseline(run: PhaseRun, playbook_path: str, playbook: Playbook) -> Step[None]:
    names = [d.name for d in playbook.datasets]
    futures = [snapshot_dataset.submit(playbook_path, name) for name in names]
    snapshots, errors = gather(futures, names)
    # A JSON list, one member per line, rendered from the packed members (not 100,000 dicts).
    evidence = [
        run.write_file(
            run.paths.baselines_dir / f"{name}.json",
            ("[\n" + ",\n".join(member_lines(members)) + "\n]\n").encode("utf-8"),
            "snapshot",
        )
        for name, members in sorted(snapshots.items())
    ]
    hosts_failed(errors)
    return Step(evidence)


def collect_documentation(run: PhaseRun, playbook: Playbook, playbook_path: str) -> Step[None]:
    """The documentation handed over: the client's documents, the playbook, the hosts' services."""
    inventories = saved_inventories(run, playbook)
    folder = run.paths.documentation_dir
    evidence = client_documents_evidence(playbook_path, playbook)
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


def write_baseline_report(run: PhaseRun, playbook: Playbook) -> Step[None]:
    inventories = saved_inventories(run, playbook)
    doc = baseline_report(
        playbook,
        list(inventories.values()),
        saved_baselines(run, playbook),
        datetime.now(UTC),
        client_documents=read_index(run.paths.client_documents_dir),
    )
    return Step(run.write_document(doc, "report"))


def draft_reversibility_plan(run: PhaseRun, playbook: Playbook) -> Step[None]:
    doc = reversibility_plan(playbook, datetime.now(UTC))
    return Step(run.write_document(doc, "document"))
