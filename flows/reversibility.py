"""Reversibility (réversibilité): give everything back, prove it, then leave.

Record the exit notice and its deadlines, take a final inventory, export
every dataset into an encrypted, signed restitution bundle together with
the credentials, the documentation, the checklists, the audit log and the
run history, deliver it, wait for the client's acceptance (a human step in
the Prefect UI), revoke the provider's access, erase the provider's copies
with a signed certificate, and write the exit report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from prefect import flow
from prefect.artifacts import create_markdown_artifact
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput
from pydantic import BaseModel, ConfigDict

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
from handover.bundle.summary import SealedBundle, VolumeSummary
from handover.contract.deadlines import exit_deadlines
from handover.contract.loader import load_playbook
from handover.contract.playbook import Playbook
from handover.documents.document import Document
from handover.documents.exit_report import exit_report
from handover.estate.provider_access import ProviderAccessRevoked
from handover.exit.delivery import DeliveryRecord, LinkDelivery, deliver_beside_bundle
from handover.exit.erasure_certificate import SignedErasure
from tasks.access import revoke_access
from tasks.bundle import (
    deliver_by_links,
    deliver_to_folder,
    export_dataset,
    seal_bundle,
    start_bundle,
)
from tasks.checklist import phase_checklists
from tasks.documents import collect_exit_documents, run_history
from tasks.erasure import erase_copies
from tasks.hosts import SSH_SESSIONS_PER_CONTRACT, inventory_host, ssh_limit_name
from tasks.runtime import ensure_concurrency_limit
from tasks.vault import export_credentials

if TYPE_CHECKING:
    from handover.connectors.s3 import S3Client

ACCEPTANCE_TIMEOUT_S = 30 * 24 * 3600  # the retrieval period: the client may take its time


class ClientAcceptance(RunInput):
    """The client's answer after checking and opening the bundle."""

    accepted: bool
    accepted_by: str
    comment: str = ""


class AcceptanceRecord(BaseModel):
    """The client's answer as the checklist evidence and the exit report keep it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    accepted: bool
    accepted_by: str
    comment: str
    at: str  # ISO 8601, UTC


class ExitOutcome(PhaseOutcome):
    """The reversibility flow's result: the phase summary and where the bundle was delivered."""

    bundle: str | None = None  # None when no bundle was delivered in this run


@dataclass
class Seen:
    bundle_name: str = ""
    volumes: list[VolumeSummary] = field(default_factory=list)
    documents: dict[str, str] = field(default_factory=dict)
    sealed: SealedBundle | None = None
    delivery: DeliveryRecord | None = None
    acceptance: AcceptanceRecord | None = None
    revocations: list[ProviderAccessRevoked] = field(default_factory=list)
    erasure: SignedErasure | None = None
    password_file: str | None = None  # the KDBX password, encrypted to the client, delivered apart
    deadlines: dict[str, str] = field(default_factory=dict)
    # S3 client for the files delivered beside the bundle, made at delivery: the erasure
    # deletes the vault that may hold the S3 credentials, and the exit report comes after it.
    s3: S3Client | None = None


@flow(
    name="reversibility",
    flow_run_name=phase_run_name,
    task_runner=phase_task_runner(),
    log_prints=True,
)
def reversibility(
    playbook_path: str, notice_date: date | None = None, fresh: bool = False
) -> ExitOutcome:
    """Réversibilité: notice, inventory, export, credentials, documentation, seal, delivery,
    client acceptance, access revoked, copies erased, exit report."""
    playbook = load_playbook(Path(playbook_path))
    ensure_concurrency_limit(ssh_limit_name(playbook.contract_id), SSH_SESSIONS_PER_CONTRACT)
    run = PhaseRun(playbook, "reversibility", fresh=fresh)
    seen = Seen(bundle_name=f"{playbook.contract_id}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}")

    run.item("exit-notice", lambda: record_notice(run, playbook, notice_date or date.today(), seen))
    run.item("final-inventory", lambda: final_inventory(run, playbook_path, playbook))
    run.item("datasets-exported", lambda: export_datasets(run, playbook_path, playbook, seen))
    run.item("credentials-exported", lambda: hand_back_credentials(run, playbook_path, seen))
    run.item("documentation-exported", lambda: gather_documentation(run, playbook, seen))
    run.item("bundle-sealed", lambda: seal(run, seen))
    run.item("bundle-delivered", lambda: deliver(run, playbook_path, playbook, seen))
    if seen.delivery is None:
        # Nothing reached the client: no acceptance, no revocation, no erasure.
        return exit_outcome(run, seen)
    delivery = seen.delivery
    run.item("client-acceptance", lambda: await_acceptance(run, playbook, delivery, seen))
    if seen.acceptance and seen.acceptance.accepted:
        run.item("access-revoked", lambda: revoke(run, playbook_path, playbook, seen))
        run.item("copies-erased", lambda: erase(run, playbook_path, delivery, seen))
    run.item("exit-report", lambda: write_exit_report(run, playbook, delivery, seen))
    return exit_outcome(run, seen)


def exit_outcome(run: PhaseRun, seen: Seen) -> ExitOutcome:
    """The phase summary (PhaseIncomplete if an item failed) with the delivered bundle."""
    outcome = run.finish()
    return ExitOutcome(
        contract=outcome.contract,
        phase=outcome.phase,
        bundle=seen.delivery.location if seen.delivery else None,
    )


def record_notice(run: PhaseRun, playbook: Playbook, notice: date, seen: Seen) -> Step[None]:
    dates = exit_deadlines(playbook.reversibility.deadlines, notice)
    seen.deadlines = {key: value.isoformat() for key, value in dates.model_dump().items()}
    return Step([run.write_json("exit-notice.json", seen.deadlines, "document")])


def final_inventory(run: PhaseRun, playbook_path: str, playbook: Playbook) -> Step[None]:
    names = [h.name for h in playbook.hosts]
    inventories, errors = gather([inventory_host.submit(playbook_path, n) for n in names], names)
    evidence = run.write_inventories(inventories)
    assets = {
        "hosts": names,
        "datasets": [{"name": d.name, "host": d.host, "kind": d.kind} for d in playbook.datasets],
        "software": [s.model_dump(mode="json") for s in playbook.perimeter.software],
        "exempted": [e.model_dump(mode="json") for e in playbook.reversibility.exempted],
    }
    evidence.append(run.write_json("final-inventory.json", assets, "inventory"))
    hosts_failed(errors)
    return Step(evidence)


def export_datasets(
    run: PhaseRun, playbook_path: str, playbook: Playbook, seen: Seen
) -> Step[None]:
    start_bundle(playbook_path, seen.bundle_name)
    names = [d.name for d in playbook.datasets]
    futures = [
        export_dataset.submit(playbook_path, seen.bundle_name, name, number)
        for number, name in enumerate(names, start=1)
    ]
    volumes, errors = gather(futures, names)
    seen.volumes = [volumes[n] for n in names if n in volumes]
    evidence = [run.write_json("volumes.json", seen.volumes, "bundle")]
    hosts_failed(errors)
    return Step(evidence)


def hand_back_credentials(run: PhaseRun, playbook_path: str, seen: Seen) -> Step[None]:
    exported = export_credentials(playbook_path, seen.bundle_name)
    if exported.kdbx:
        seen.documents["credentials.kdbx"] = exported.kdbx
    seen.password_file = exported.password_file
    return Step([run.write_json("credentials-export.json", exported.record, "log")])


def gather_documentation(run: PhaseRun, playbook: Playbook, seen: Seen) -> Step[None]:
    docs = collect_exit_documents(playbook.contract_id)
    history = run_history(playbook.contract_id)
    history_evidence = run.write_json("run-history.json", history, "log")
    assert history_evidence.path is not None
    docs["run-history.json"] = history_evidence.path
    seen.documents.update(docs)
    listing = {name: Path(path).stat().st_size for name, path in sorted(seen.documents.items())}
    return Step([run.write_json("documents.json", listing, "document")])


def seal(run: PhaseRun, seen: Seen) -> Step[None]:
    if not seen.volumes:
        raise StepFailed("no dataset was exported: nothing to seal")
    snapshot = {
        phase: checklist.model_dump(mode="json")
        for phase, checklist in phase_checklists(run.contract).items()
    }
    seen.sealed = seal_bundle(seen.bundle_name, seen.documents, {"checklists": snapshot})
    return Step([run.write_json("bundle.json", seen.sealed, "bundle")])


def deliver(run: PhaseRun, playbook_path: str, playbook: Playbook, seen: Seen) -> Step[None]:
    if seen.sealed is None:
        raise StepFailed("the bundle was not sealed: nothing to deliver")
    delivery: DeliveryRecord
    if playbook.reversibility.delivery.kind == "s3":
        from handover.connectors.s3 import s3_client

        delivery = deliver_by_links(playbook_path, seen.bundle_name)
        seen.s3 = s3_client(playbook.perimeter.s3)
    else:
        delivery = deliver_to_folder(playbook_path, seen.bundle_name)
    seen.delivery = delivery
    if seen.password_file:
        deliver_beside_bundle(
            playbook,
            seen.bundle_name,
            delivery,
            {"credentials-password.txt.age": Path(seen.password_file).read_bytes()},
            s3=seen.s3,
        )
    create_markdown_artifact(
        delivery_markdown(seen.bundle_name, seen.sealed, delivery),
        key=f"{playbook.contract_id}-delivery",
        description="Bundle delivered",
    )
    return Step([run.write_json(run.paths.delivery_record, delivery, "bundle")])


def delivery_markdown(bundle_name: str, sealed: SealedBundle, delivery: DeliveryRecord) -> str:
    lines = [
        f"## Restitution bundle `{bundle_name}`",
        "",
        f"Location: `{delivery.location}`",
        "",
    ]
    for volume in sealed.volumes:
        lines.append(f"- `{volume.file}`: {volume.files} files, {volume.bytes} bytes")
    if isinstance(delivery, LinkDelivery):
        lines.append(f"\nPresigned links valid {delivery.link_expiry_days} days.")
    return "\n".join(lines)


def await_acceptance(
    run: PhaseRun, playbook: Playbook, delivery: DeliveryRecord, seen: Seen
) -> Step[None]:
    """Pause until the client (through the operator) accepts or refuses the bundle."""
    answer = pause_flow_run(
        wait_for_input=ClientAcceptance.with_initial_data(
            description=(
                f"Client acceptance of `{seen.bundle_name}` at `{delivery.location}`: "
                "the client verifies and opens it with the commands of its README.txt, "
                "then answers."
            ),
            accepted=False,
            accepted_by=playbook.contract.parties.client.legal_name,
        ),
        timeout=ACCEPTANCE_TIMEOUT_S,
    )
    if answer is None:
        raise StepFailed("no answer from the client")
    seen.acceptance = AcceptanceRecord(
        accepted=answer.accepted,
        accepted_by=answer.accepted_by,
        comment=answer.comment,
        at=datetime.now(UTC).isoformat(),
    )
    evidence = [run.write_json("client-acceptance.json", seen.acceptance, "human")]
    if not answer.accepted:
        raise StepFailed(f"the client refused the bundle: {answer.comment or 'no comment'}")
    return Step(evidence)


def revoke(run: PhaseRun, playbook_path: str, playbook: Playbook, seen: Seen) -> Step[None]:
    entries = playbook.security.provider_access
    labels = [f"{e.host}/{e.account}" for e in entries]
    records, errors = gather(
        [revoke_access.submit(playbook_path, i) for i in range(len(entries))], labels
    )
    seen.revocations = [records[label] for label in labels if label in records]
    evidence = [run.write_json("access-revoked.json", seen.revocations, "log")]
    hosts_failed(errors)
    return Step(evidence)


def erase(run: PhaseRun, playbook_path: str, delivery: DeliveryRecord, seen: Seen) -> Step[None]:
    seen.erasure = erase_copies(playbook_path, seen.bundle_name, delivery)
    certificate = seen.erasure.certificate.encode("utf-8")
    signature = seen.erasure.signature.encode("ascii")
    evidence = [
        run.write_file("erasure-certificate.md", certificate, "certificate"),
        run.write_file("erasure-certificate.md.sig", signature, "certificate"),
    ]
    return Step(evidence)


def write_exit_report(
    run: PhaseRun, playbook: Playbook, delivery: DeliveryRecord, seen: Seen
) -> Step[None]:
    """The exit report in the contract folder, and beside the bundle with the erasure proof."""
    doc = exit_report_document(run, playbook, delivery, seen)
    evidence = run.write_document(doc, "report")
    files: dict[str, str | bytes] = {"exit-report.md": doc.markdown, "exit-report.html": doc.html}
    if seen.erasure:
        files["erasure-certificate.md"] = seen.erasure.certificate
        files["erasure-certificate.md.sig"] = seen.erasure.signature
        files["provider.pub"] = seen.erasure.provider_key + "\n"
    deliver_beside_bundle(playbook, seen.bundle_name, delivery, files, s3=seen.s3)
    return Step(evidence)


def exit_report_document(
    run: PhaseRun, playbook: Playbook, delivery: DeliveryRecord, seen: Seen
) -> Document:
    """The report of what this run gave back, proved and erased (open points included)."""
    sealed = seen.sealed.model_dump(mode="json") if seen.sealed else {}
    return exit_report(
        playbook,
        {**sealed, "name": seen.bundle_name, "deadlines": seen.deadlines},
        [delivery.model_dump(mode="json")],
        seen.acceptance.model_dump(mode="json") if seen.acceptance else None,
        [revoked.model_dump(mode="json") for revoked in seen.revocations],
        seen.erasure.model_dump(mode="json", exclude={"signature"}) if seen.erasure else None,
        list(phase_checklists(run.contract).values()),
    )
