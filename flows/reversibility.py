"""Reversibility (réversibilité): give everything back, prove it, then leave.

Record the exit notice and its calendar, plan the knowledge transfer, wait
for the switch-over, take a final inventory, export every dataset into an
encrypted, signed restitution bundle together with the credentials, the
documentation, the checklists, the audit log and the run history, deliver
it, wait for the client's acceptance and for the incoming team to confirm
the knowledge transfer (people, in the Prefect UI), then pass the two
one-way doors: revoke the provider's access and, once the retrieval period
is over (or earlier if the client asked), erase the provider's copies with
a signed certificate; then write the exit report.

The phase is sequential: an item runs only when every item before it is
done or waived, so a failed export stops the exit before delivery, and
nothing before acceptance can open the one-way doors. Everything a later
item needs is in the exit state on disk (`handover.exit.progress`) as soon
as it exists: a rerun after a crash at any point goes on from there.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from prefect import flow
from prefect.artifacts import create_markdown_artifact
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput

from flows._phase import (
    ExitOutcome,
    PhaseRun,
    Step,
    StepFailed,
    gather,
    hosts_failed,
    phase_run_name,
    phase_task_runner,
)
from flows.acceptance import await_signed_acceptance
from flows.playbook_guard import guard_playbook_path
from flows.redelivery import redeliver, reopen_for_redelivery
from flows.waits import poll_interval, start_of, wait_until
from flows.writer_lease import one_writer
from handover.bundle.sshsig import SigningKey, sign
from handover.bundle.summary import SealedBundle
from handover.checklist.model import Status
from handover.contract.deadlines import ExitDeadlines, exit_deadlines
from handover.contract.keys import signing_key
from handover.contract.loader import load_playbook
from handover.contract.playbook import Playbook
from handover.documents.document import Document
from handover.documents.exit_report import exit_report
from handover.errors import AuditTrailBroken, HandoverError
from handover.exit.delivery import DeliveryRecord, LinkDelivery, deliver_beside_bundle
from handover.exit.progress import ExitProgress, ExitState
from tasks.access import revoke_access
from tasks.audit import anchor_audit, verify_audit
from tasks.bundle import (
    dataset_numbers,
    deliver_by_links,
    deliver_to_folder,
    export_dataset,
    seal_bundle,
    start_bundle,
    volume_files,
)
from tasks.checklist import phase_checklists
from tasks.documents import collect_exit_documents, run_history
from tasks.erasure import erase_copies
from tasks.hosts import SSH_SESSIONS_PER_CONTRACT, inventory_host, ssh_limit_name
from tasks.runtime import ensure_concurrency_limit
from tasks.tags import tag_flow_run
from tasks.vault import export_credentials, prepare_credentials_key

if TYPE_CHECKING:
    from handover.connectors.s3 import S3Client

KNOWLEDGE_TRANSFER_TIMEOUT_S = 30 * 24 * 3600
EXIT_NAMESPACE = "handover-exit"  # the signed exit record, never to pass for another signature


class KnowledgeTransferDone(RunInput):
    """The incoming team confirms the knowledge-transfer sessions were held."""

    confirmed_by: str
    sessions: str  # dates and topics of the sessions held


class Exit:
    """One run of the exit: its checklist, its playbook and the exit state on disk."""

    def __init__(self, run: PhaseRun, playbook_path: str, playbook: Playbook) -> None:
        self.run = run
        self.playbook_path = playbook_path
        self.playbook = playbook
        self.progress = ExitProgress(playbook.contract_id)
        self.state = self._open_state()
        # S3 client for the files delivered beside the bundle, made before the erasure
        # deletes the vault that may hold the S3 credentials.
        self.s3: S3Client | None = None
        # The provider's signing key, loaded before the erasure (it may live in the vault
        # the erasure deletes) for the signed exit record written after it.
        self.key: SigningKey | None = None

    def signing_key(self) -> SigningKey:
        if self.key is None:
            try:
                self.key = signing_key(self.playbook)
            except HandoverError as exc:
                raise StepFailed(
                    f"the provider's signing key cannot be loaded ({exc}); the exit record "
                    "is signed with it: keep reversibility.signing_key outside the vault"
                ) from exc
        return self.key

    def _open_state(self) -> ExitState:
        """The exit in progress, or a new one when the exit starts (again) from its notice.

        The first item pending means this run starts the exit: a fresh run, a
        first run, or one whose notice never got recorded. An earlier exit's
        state is then kept beside, under its bundle's name, never overwritten.
        """
        state = self.progress.load()
        if state is not None and self.run.status("exit-notice") is not Status.PENDING:
            return state
        if state is not None:
            self.progress.archive(state)
        name = f"{self.playbook.contract_id}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
        return self.progress.start(name)

    def save(self) -> None:
        self.progress.save(self.state)

    @property
    def deadlines(self) -> ExitDeadlines:
        if self.state.deadlines is None:
            raise StepFailed("the exit notice is not recorded: no calendar")
        return self.state.deadlines


@flow(
    name="reversibility",
    flow_run_name=phase_run_name,
    task_runner=phase_task_runner(),
    log_prints=True,
)
@one_writer("reversibility")
def reversibility(
    playbook_path: str, notice_date: date | None = None, fresh: bool = False
) -> ExitOutcome:
    """Réversibilité: notice, knowledge transfer, switch-over, inventory, export, credentials,
    documentation, seal, delivery, acceptance, access revoked, copies erased, exit report."""
    guard_playbook_path(playbook_path)  # a deployment run: only playbooks in the folders
    playbook = load_playbook(Path(playbook_path))
    tag_flow_run(playbook.contract_id, "reversibility")
    ensure_concurrency_limit(ssh_limit_name(playbook.contract_id), SSH_SESSIONS_PER_CONTRACT)
    run = PhaseRun(playbook, "reversibility", fresh=fresh, sequential=True)
    ex = Exit(run, playbook_path, playbook)

    run.item("exit-notice", lambda: record_notice(ex, notice_date or date.today()))
    run.item("knowledge-transfer-plan", lambda: plan_knowledge_transfer(ex))
    if not run.unmet("final-inventory") and run.status("final-inventory") is Status.PENDING:
        wait_for_switch_over(ex)
    prepare_key_ahead(ex, "final-inventory")
    run.item("final-inventory", lambda: final_inventory(ex))
    reopen_for_redelivery(ex)  # a crash between a new revision and reopening its items
    while True:  # once per delivery: reservations bring a corrected re-delivery
        prepare_key_ahead(ex, "datasets-exported")
        run.item("datasets-exported", lambda: export_datasets(ex))
        run.item("credentials-exported", lambda: hand_back_credentials(ex))
        run.item("documentation-exported", lambda: gather_documentation(ex))
        run.item("bundle-sealed", lambda: seal(ex))
        run.item("bundle-delivered", lambda: deliver(ex))
        run.item("client-acceptance", lambda: await_acceptance(ex))
        if run.status("client-acceptance") is not Status.FAILED:
            break
        if not ex.state.reservations_open() or not redeliver(ex):
            break
    run.item("knowledge-transfer-sessions", lambda: await_knowledge_transfer(ex))
    run.item("access-revoked", lambda: revoke(ex))
    if not run.unmet("copies-erased") and run.status("copies-erased") is Status.PENDING:
        wait_for_erasure_date(ex)
    run.item("copies-erased", lambda: erase(ex))
    run.item("exit-report", lambda: write_exit_report(ex))
    outcome = run.finish()
    return ExitOutcome(
        contract=outcome.contract,
        phase=outcome.phase,
        bundle=ex.state.delivery.location if ex.state.delivery else None,
    )


def prepare_key_ahead(ex: Exit, next_item: str) -> None:
    """Derive credentials.kdbx's key now, if the exit is about to run `next_item` and export it.

    Why this early: the key's Argon2 needs 64 MiB on top of whatever the process
    holds. Before the final inventory it holds little more than Prefect and our
    modules (~130 MiB); after the exports, the connections' and the member
    tables' leftovers too. A run resumed past the inventory derives it at the
    first call all the same; the second, before the datasets' exports, covers
    each re-delivery (the delivery before took its key).
    """
    run = ex.run
    if run.status("credentials-exported") is Status.PENDING and not run.unmet(next_item):
        prepare_credentials_key(ex.playbook.contract_id)


def record_notice(ex: Exit, notice: date) -> Step[None]:
    """The exit calendar from the notice date, recorded once for the whole exit."""
    if ex.state.deadlines is not None and ex.state.deadlines.notice_date != notice:
        ex.run.log.warning(
            "exit notice already recorded on %s; keeping it", ex.state.deadlines.notice_date
        )
    else:
        ex.state.deadlines = exit_deadlines(ex.playbook.reversibility.deadlines, notice)
        ex.save()
    dates = ex.deadlines.model_dump(mode="json")
    return Step([ex.run.write_json("exit-notice.json", dates, "document")])


def plan_knowledge_transfer(ex: Exit) -> Step[None]:
    """What the incoming team must learn before the switch-over, and from which documents."""
    playbook = ex.playbook
    documents = sorted(
        str(path.relative_to(ex.run.paths.root))
        for phase in ("takeover", "implementation", "operational")
        for path in (
            sorted(ex.run.paths.documents_dir(phase).glob("*.md"))
            if ex.run.paths.documents_dir(phase).is_dir()
            else []
        )
    )
    plan = {
        "switch_over": ex.deadlines.switch_over.isoformat(),
        "incoming": [str(r) for r in playbook.reversibility.recipients],
        "topics": [
            {"topic": "hosts and services", "items": [h.name for h in playbook.hosts]},
            {"topic": "datasets and their formats", "items": [d.name for d in playbook.datasets]},
            {"topic": "backups and restore checks", "items": [d.name for d in playbook.datasets]},
            {"topic": "credentials handed back", "items": ["credentials.kdbx in the bundle"]},
            {"topic": "runbooks and procedures", "items": documents},
        ],
        "sessions": "to be confirmed by the incoming team (item knowledge-transfer-sessions)",
    }
    return Step([ex.run.write_json("knowledge-transfer-plan.json", plan, "document")])


def wait_for_switch_over(ex: Exit) -> None:
    """The final export happens at the switch-over (end of the transition), not on notice day."""
    if "switch-over" in ex.state.waits:
        return
    ended = wait_until(
        "switch-over",
        start_of(ex.deadlines.switch_over),
        "final export at the switch-over (end of the transition period)",
        may_continue_early=True,
    )
    ex.state.waits["switch-over"] = ended
    ex.save()


def final_inventory(ex: Exit) -> Step[None]:
    run, playbook = ex.run, ex.playbook
    names = [h.name for h in playbook.hosts]
    inventories, errors = gather([inventory_host.submit(ex.playbook_path, n) for n in names], names)
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


def export_datasets(ex: Exit) -> Step[None]:
    """Every dataset into its volume; volumes an earlier run finished are adopted, not redone."""
    name = ex.state.bundle_name
    adopted = set(start_bundle(ex.playbook_path, name))
    numbers = dataset_numbers(ex.playbook)
    todo = [d for d in numbers if d not in adopted]
    futures = [export_dataset.submit(ex.playbook_path, name, d, numbers[d]) for d in todo]
    _, errors = gather(futures, todo)
    ex.state.sealed = None  # whatever was sealed before is sealed again
    ex.save()
    volumes = volume_files(name)  # the run's records, not the saved ones read back (memory)
    listing = {
        dataset: {
            "volume": volumes[number][0],
            "sha256": volumes[number][1],
            "adopted": dataset in adopted,
        }
        for dataset, number in numbers.items()
        if number in volumes
    }
    evidence = [ex.run.write_json("volumes.json", listing, "bundle")]
    hosts_failed(errors)
    return Step(evidence)


def hand_back_credentials(ex: Exit) -> Step[None]:
    exported = export_credentials(ex.playbook_path, ex.state.bundle_name)
    if exported.kdbx:
        ex.state.documents["credentials.kdbx"] = exported.kdbx
    ex.state.password_file = exported.password_file
    ex.save()
    return Step([ex.run.write_json("credentials-export.json", exported.record, "log")])


def gather_documentation(ex: Exit) -> Step[None]:
    contract = ex.playbook.contract_id
    docs = collect_exit_documents(contract)
    # The checklists go in as the bundle sees them (evidence paths into the bundle),
    # written when the bundle is sealed.
    docs = {n: p for n, p in docs.items() if not n.startswith("checklists/")}
    history = run_history(contract)
    history_evidence = ex.run.write_json("run-history.json", history, "log")
    assert history_evidence.path is not None
    docs["run-history.json"] = history_evidence.path
    ex.state.documents.update(docs)
    ex.save()
    listing = {name: Path(path).stat().st_size for name, path in sorted(ex.state.documents.items())}
    return Step([ex.run.write_json("documents.json", listing, "document")])


def seal(ex: Exit) -> Step[None]:
    """Check the audit trail, sign its head, then seal: the bundle's copy covers the exit so far."""
    try:
        verify_audit(ex.playbook_path)
    except AuditTrailBroken as exc:
        # A contract whose earlier runs predate checkpoints has none yet: the one made
        # below is its first. Anything else (a cut or rewritten log) stops the exit.
        if not all(problem.startswith("no checkpoint") for problem in exc.problems):
            raise
    anchor_audit(ex.playbook_path, "before sealing")
    ex.state.sealed = seal_bundle(ex.playbook_path, ex.state.bundle_name)
    ex.save()
    return Step([ex.run.write_json("bundle.json", ex.state.sealed, "bundle")])


def deliver(ex: Exit) -> Step[None]:
    sealed, playbook = ex.state.sealed, ex.playbook
    if sealed is None:
        raise StepFailed("the bundle was not sealed: nothing to deliver")
    delivery: DeliveryRecord
    if playbook.reversibility.delivery.kind == "s3":
        delivery = deliver_by_links(ex.playbook_path, ex.state.bundle_name)
    else:
        delivery = deliver_to_folder(ex.playbook_path, ex.state.bundle_name)
    if ex.state.password_file:
        deliver_beside_bundle(
            playbook,
            ex.state.bundle_name,
            delivery,
            {"credentials-password.txt.age": Path(ex.state.password_file).read_bytes()},
            s3=s3_of(ex),
        )
    ex.state.delivery = delivery
    ex.save()
    create_markdown_artifact(
        delivery_markdown(ex.state.bundle_name, sealed, delivery),
        key=f"{playbook.contract_id}-delivery",
        description="Bundle delivered",
    )
    return Step([ex.run.write_json(ex.run.paths.delivery_record, delivery, "bundle")])


def s3_of(ex: Exit) -> S3Client | None:
    """The S3 client of an S3 delivery, made once (before the erasure removes the vault)."""
    if ex.s3 is None and ex.playbook.reversibility.delivery.kind == "s3":
        from handover.connectors.s3 import s3_client

        ex.s3 = s3_client(ex.playbook.perimeter.s3)
    return ex.s3


def delivered(ex: Exit) -> DeliveryRecord:
    if ex.state.delivery is None:
        raise StepFailed("the bundle was not delivered")
    return ex.state.delivery


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


def await_acceptance(ex: Exit) -> Step[None]:
    """Pause until the client's signed acceptance (procès-verbal de réception) comes in.

    Only a statement signed by a key of `reversibility.client_signers`, for
    this bundle and its SHA256SUMS, counts (flows.acceptance). `accepted`
    opens the way to the one-way doors; `accepted-with-reservations` and
    `refused` fail the item, so the sequential gate keeps revocation and
    erasure closed until a corrected re-delivery is accepted. The signed
    statement and its signature are the item's evidence.
    """
    delivered(ex)
    acceptance = ex.state.acceptance
    # Reservations already signed for this delivery (a rerun) go straight to the correction.
    if (acceptance is None or not acceptance.accepted) and not ex.state.reservations_open():
        acceptance = await_signed_acceptance(ex.playbook, ex.state, s3=s3_of(ex))
        ex.state.acceptance = acceptance
        ex.save()
    assert acceptance is not None
    record = acceptance.model_dump(mode="json", exclude={"statement", "signature"})
    # Each delivery's answer under its own name: a re-delivery never overwrites the
    # statement that asked for it.
    stem = "client-acceptance" + ("" if ex.state.revision == 1 else f"-r{ex.state.revision}")
    evidence = [ex.run.write_json(f"{stem}.json", record, "human")]
    if acceptance.statement:
        evidence += [
            ex.run.write_file(f"{stem}.txt", acceptance.statement.encode("utf-8"), "human"),
            ex.run.write_file(f"{stem}.txt.sig", acceptance.signature.encode("ascii"), "human"),
        ]
    if acceptance.decision == "accepted-with-reservations":
        raise StepFailed(
            f"accepted with reservations (signed by {acceptance.signer_fingerprint}): "
            f"a corrected re-delivery follows; reservations: "
            + acceptance.reservations.replace("\n", "; ")
        )
    if not acceptance.accepted:
        raise StepFailed(f"refused: {acceptance.comment or 'no reason given'}")
    signer = f"{acceptance.accepted_by} (signed by {acceptance.signer_principal}, key"
    return Step(evidence, actor=f"{signer} {acceptance.signer_fingerprint})")


def await_knowledge_transfer(ex: Exit) -> Step[None]:
    """Pause until the incoming team confirms the knowledge-transfer sessions were held.

    The item may also be ticked from the CLI (`handover checklist done`); then
    the flow finds it done and never pauses.
    """
    answer = pause_flow_run(
        wait_for_input=KnowledgeTransferDone.with_initial_data(
            description=(
                "Knowledge transfer (transfert de compétences): the incoming team confirms "
                "the sessions held (dates, topics), following knowledge-transfer-plan.json."
            ),
            confirmed_by="",
            sessions="",
        ),
        timeout=KNOWLEDGE_TRANSFER_TIMEOUT_S,
        poll_interval=poll_interval(),
        key="knowledge-transfer",
    )
    if answer is None or not answer.confirmed_by.strip() or not answer.sessions.strip():
        raise StepFailed("the knowledge transfer was not confirmed (who and which sessions)")
    record = {
        "confirmed_by": answer.confirmed_by,
        "sessions": answer.sessions,
        "at": datetime.now(UTC).isoformat(),
    }
    return Step(
        [ex.run.write_json("knowledge-transfer-sessions.json", record, "human")],
        actor=f"{answer.confirmed_by.strip()} (declared in the pause form)",
    )


def signed_acceptance(ex: Exit) -> bool:
    """The one-way doors open only on a verified, signed `accepted` (an unsigned record of an
    earlier version, or any other decision, keeps them closed)."""
    acceptance = ex.state.acceptance
    return (
        acceptance is not None
        and acceptance.accepted
        and acceptance.decision == "accepted"
        and bool(acceptance.signer_fingerprint)
    )


def revoke(ex: Exit) -> Step[None]:
    """One-way door: only after a valid acceptance (and every item before it, by the gate)."""
    if not signed_acceptance(ex):
        raise StepFailed("no signed client acceptance: access stays")
    entries = ex.playbook.security.provider_access
    labels = [f"{e.host}/{e.account}" for e in entries]
    records, errors = gather(
        [revoke_access.submit(ex.playbook_path, i) for i in range(len(entries))], labels
    )
    ex.state.revocations = [records[label] for label in labels if label in records]
    ex.save()
    evidence = [ex.run.write_json("access-revoked.json", ex.state.revocations, "log")]
    hosts_failed(errors)
    return Step(evidence)


def wait_for_erasure_date(ex: Exit) -> None:
    """Erasure waits for the end of the retrieval period, unless the client asked otherwise.

    Only the client's acceptance can bring it forward: an operator resuming
    the pause early changes nothing.
    """
    acceptance = ex.state.acceptance
    if "erasure" in ex.state.waits or acceptance is None:
        return
    if acceptance.early_erasure:
        ended = f"early erasure asked by {acceptance.accepted_by} on {acceptance.at}"
    else:
        ended = wait_until(
            "erasure",
            start_of(ex.deadlines.erasure_earliest),
            "erasure of the provider's copies after the retrieval period",
            may_continue_early=False,
        )
    ex.state.waits["erasure"] = ended
    ex.save()


def erase(ex: Exit) -> Step[None]:
    """One-way door: after the retrieval period, or earlier if the client's acceptance asked."""
    acceptance = ex.state.acceptance
    if acceptance is None or not signed_acceptance(ex):
        raise StepFailed("no signed client acceptance: copies stay")
    if "erasure" not in ex.state.waits:
        raise StepFailed(
            f"the retrieval period runs until {ex.deadlines.erasure_earliest}: copies stay"
        )
    delivery = delivered(ex)
    s3_of(ex)  # made now: the erasure deletes the vault that may hold the S3 credentials
    ex.signing_key()  # likewise the key that signs the exit record afterwards
    earlier = [replaced.delivery for replaced in ex.state.redeliveries]
    ex.state.erasure = erase_copies(ex.playbook_path, ex.state.bundle_name, [*earlier, delivery])
    ex.save()
    erasure = ex.state.erasure
    evidence = [
        ex.run.write_file("erasure-certificate.md", erasure.certificate.encode(), "certificate"),
        ex.run.write_file(
            "erasure-certificate.md.sig", erasure.signature.encode("ascii"), "certificate"
        ),
    ]
    if not erasure.complete:
        # The certificate says "incomplete" and is kept as evidence; the item fails and a
        # rerun erases what remains (targets already gone count as absent).
        remaining = ", ".join(erasure.remaining) or "see the certificate"
        raise StepFailed(f"erasure incomplete, still there: {remaining}")
    return Step(evidence)


def write_exit_report(ex: Exit) -> Step[None]:
    """The signed exit record: the report in the contract folder and beside the bundle.

    The bundle's copy of the audit log ends at sealing; what came after
    (delivery, acceptance, revocation, erasure) is in this report, signed in
    its own namespace so the client checks it with OpenSSH:
    `ssh-keygen -Y verify -f allowed_signers -I provider -n handover-exit
    -s exit-report.md.sig < exit-report.md`.
    """
    delivery = delivered(ex)
    key = ex.signing_key()
    doc = exit_report_document(ex, delivery)
    evidence = ex.run.write_document(doc, "report")
    signature = sign(doc.markdown.encode("utf-8"), key, EXIT_NAMESPACE)
    evidence.append(ex.run.write_file("exit-report.md.sig", signature.encode("ascii"), "report"))
    files: dict[str, str | bytes] = {
        "exit-report.md": doc.markdown,
        "exit-report.md.sig": signature,
        "exit-report.html": doc.html,
        "provider.pub": key.public_line("provider") + "\n",
    }
    erasure = ex.state.erasure
    if erasure:
        files["erasure-certificate.md"] = erasure.certificate
        files["erasure-certificate.md.sig"] = erasure.signature
    deliver_beside_bundle(ex.playbook, ex.state.bundle_name, delivery, files, s3=s3_of(ex))
    return Step(evidence)


def exit_report_document(ex: Exit, delivery: DeliveryRecord) -> Document:
    """The report of what this exit gave back, proved and erased (open points included)."""
    state = ex.state
    sealed = state.sealed.model_dump(mode="json") if state.sealed else {}
    deadlines = state.deadlines.model_dump(mode="json") if state.deadlines else {}
    return exit_report(
        ex.playbook,
        {**sealed, "name": state.bundle_name, "deadlines": deadlines, "waits": state.waits},
        [
            *(replaced.delivery.model_dump(mode="json") for replaced in state.redeliveries),
            delivery.model_dump(mode="json"),
        ],
        state.acceptance.model_dump(mode="json") if state.acceptance else None,
        [revoked.model_dump(mode="json") for revoked in state.revocations],
        state.erasure.model_dump(mode="json", exclude={"signature"}) if state.erasure else None,
        list(phase_checklists(ex.run.contract).values()),
        deadlines=state.deadlines,
        replaced=[
            replaced.model_dump(mode="json", exclude={"sealed"}) for replaced in state.redeliveries
        ],
    )
