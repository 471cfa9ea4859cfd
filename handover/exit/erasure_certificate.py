"""The erasure certificate: the checked erasure report as Markdown, signed as `handover-erasure`.

The client receives a certificate saying what was erased, where, how, when
and by whom; whether the erasure is complete and, when it is not, what
remains and why; and what the provider keeps, each thing with its location
and reason (the playbook's exempted categories with their legal basis, and
the provider's records of how the contract was performed). It is plain text
signed with the provider's SSH signing key in its own namespace, so the
client checks it with OpenSSH alone and a bundle signature can never pass
for it:

    ssh-keygen -Y verify -f allowed_signers -I provider -n handover-erasure \\
        -s erasure-certificate.md.sig < erasure-certificate.md

The certificate names locations (folders, buckets, prefixes), never the
client's file names, which stay confidential.

`erase_and_certify` is the exit's erasure step, ordered so that the
certificate never says more than what happened and a rerun after a crash
(kill -9 anywhere) finishes the job:

1. The signing key is loaded into memory before anything is deleted (the S3
   clients, with their credentials, are made when the targets are listed,
   before this step). When the key cannot be loaded nothing is deleted, and
   the error says why.
2. Every target is deleted and checked; each record is journalled at once
   (`erasure-journal.json` in the reversibility folder, written atomically)
   so a rerun's certificate still shows what the crashed run erased.
3. The vault goes last, and only when every other copy is checked gone.
4. Only then is the certificate written and signed, from the checked
   records, and recorded in the journal and the audit log.

Signing comes after the vault's deletion because the certificate says the
vault was erased: signing earlier would state something not yet true. So
the one unsafe moment is a crash between the vault's deletion and the
journal's record of the certificate: with the signing key inside the vault
(`vault:` reference), a rerun cannot sign. It then fails before deleting
anything, saying so and what to do (point `reversibility.signing_key` at
the provider's key kept outside the vault). A rerun after the certificate
was recorded needs no key: it checks every target again and, when all are
still gone, returns the recorded certificate. An incomplete erasure keeps
the vault, so its rerun still has the credentials it needs.

An incomplete erasure is not raised: the certificate says `Result:
incomplete` and lists what remains; `SignedErasure.complete` and
`.remaining` let the flow keep the certificate as evidence and then fail
the checklist item.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, ValidationError

from handover.actor import actor
from handover.checklist.store import ChecklistStore
from handover.contract.keys import signing_key
from handover.errors import HandoverError, SecretRefError
from handover.exit.erasure import (
    DONE,
    ErasureRecord,
    ErasureReport,
    ErasureTarget,
    KeptRecord,
    erase_contract_copies,
)
from handover.exit.erasure_targets import kept_records
from handover.i18n import Texts
from handover.i18n.words import erasure_status_text, kept_text
from handover.phases import Phase
from handover.state.atomic import write_atomic
from handover.state.layout import ContractPaths

if TYPE_CHECKING:
    from pathlib import Path

    from handover.bundle.sshsig import SigningKey
    from handover.contract.playbook import Playbook

ERASURE_NAMESPACE = "handover-erasure"
JOURNAL_NAME = "erasure-journal.json"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _when(t: Texts, record: ErasureRecord) -> str:
    return t.datetime(record.verified_at, seconds=True) if record.verified_at else t._("no")


def erasure_certificate(report: ErasureReport, playbook: Playbook) -> str:
    """The certificate text (Markdown), to be signed with sign_certificate().

    Written in the contract's language, its moments in the contract's time
    zone to the second with their offset. Locations, methods and the errors
    recorded are quoted as the erasure recorded them.
    """
    contract = playbook.contract
    t = Texts.for_contract(contract)
    parties = contract.parties
    provider = parties.provider.legal_name
    remaining = [r for r in report.records if r.status not in DONE]
    lines = [
        "# " + t._("Erasure certificate — contract {id}", id=contract.id),
        "",
        "- " + t._("Contract: {title} ({id})", title=contract.title, id=contract.id),
        "- " + t._("Provider: {name}", name=provider),
        "- " + t._("Client: {name}", name=parties.client.legal_name),
        "- " + t._("Erasure started: {at}", at=t.datetime(report.started_at, seconds=True)),
        "- " + t._("Erasure finished: {at}", at=t.datetime(report.finished_at, seconds=True)),
        "- " + t._("Performed by: {by}", by=report.by),
        "- " + (t._("Result: complete") if report.complete else t._("Result: incomplete")),
    ]
    if remaining:
        lines.append(
            "- "
            + t.n_(
                "Remaining: {n} location still holds data meant to be erased (see Remaining)",
                "Remaining: {n} locations still hold data meant to be erased (see Remaining)",
                len(remaining),
            )
        )
    headers = [
        "#",
        t._("what"),
        t._("where"),
        t._("method"),
        t._("status"),
        t._("objects"),
        t._("bytes"),
        t._("when"),
        t._("checked gone"),
    ]
    lines += [
        "",
        "## " + t._("Copies erased"),
        "",
        t._(
            "Status: erased (deleted, then checked gone), absent (found already gone when "
            "checked), failed, refused or postponed (not erased: see Remaining). Objects and "
            "bytes count only what was checked gone."
        ),
        "",
        *_table_head(headers),
    ]
    for number, r in enumerate(report.records, start=1):
        what = r.description or r.kind
        lines.append(
            f"| {number} | {_cell(what)} | {_cell(r.location)} | {_cell(r.method)} "
            f"| {erasure_status_text(t, r.status)} | {r.objects} | {r.bytes} "
            f"| {t.datetime(r.at, seconds=True)} | {_when(t, r)} |"
        )
    if remaining:
        lines += ["", "## " + t._("Remaining (meant to be erased, still there)"), ""]
        lines += [_remaining_line(t, r) for r in remaining]
    lines += _kept_section(t, report.kept)
    lines += ["", "## " + t._("Statement"), "", _statement(t, provider, report), ""]
    lines += [
        "## " + t._("Verify this certificate"),
        "",
        '    echo "provider $(cat provider.pub)" > allowed_signers',
        f"    ssh-keygen -Y verify -f allowed_signers -I provider -n {ERASURE_NAMESPACE} \\",
        "        -s erasure-certificate.md.sig < erasure-certificate.md",
        "",
    ]
    return "\n".join(lines)


def _table_head(headers: list[str]) -> list[str]:
    return [
        "| " + " | ".join(headers) + " |",
        "|" + "|".join("-" * (len(h) + 2) for h in headers) + "|",
    ]


def _remaining_line(t: Texts, r: ErasureRecord) -> str:
    """`- where (what): status, N entries left: error` (the error as recorded)."""
    status = erasure_status_text(t, r.status)
    if r.remaining:
        status += ", " + t.n_("{n} entry left", "{n} entries left", r.remaining)
    return f"- {_cell(r.location)} ({_cell(r.description or r.kind)}): {status}: {_cell(r.error)}"


def _kept_section(t: Texts, kept: list[KeptRecord]) -> list[str]:
    lines = ["", "## " + t._("Kept (not erased), and why"), ""]
    exempted = [k for k in kept if k.kind != "evidence"]
    lines += ["### " + t._("Kept by law or by the contract (the playbook's exemptions)"), ""]
    if exempted:
        lines += _table_head([t._("what"), t._("why"), t._("legal basis")])
        lines += [
            f"| {_cell(k.what)} | {_cell(k.reason)} | {_cell(k.basis) or t._('none given')} |"
            for k in exempted
        ]
    else:
        lines.append("- " + t._("none"))
    evidence = [k for k in kept if k.kind == "evidence"]
    lines += ["", "### " + t._("The provider's records of how the contract was performed"), ""]
    if evidence:
        lines += _table_head([t._("what"), t._("where"), t._("why")])
        lines += [
            f"| {_cell(kept_text(t, k.what))} | {_cell(kept_text(t, k.where))} "
            f"| {_cell(kept_text(t, k.reason))} |"
            for k in evidence
        ]
    else:
        lines.append("- " + t._("none"))
    return lines


def _statement(t: Texts, provider: str, report: ErasureReport) -> str:
    if report.complete:
        return t._(
            "{provider} declares that, after the client's acceptance of the restitution "
            "bundle, the copies listed above as erased were deleted from its systems by the "
            "method stated (file system unlink or S3 object deletion; storage blocks are not "
            "overwritten) and checked gone afterwards, and that those listed as absent were "
            "checked gone already. The data listed under Kept is not erased: the exempted "
            "categories until their retention period ends, the records of the contract as "
            "evidence.",
            provider=provider,
        )
    return t._(
        "{provider} declares that this erasure is INCOMPLETE: the locations listed under "
        "Remaining still hold, or may hold, data meant to be erased. Only the copies listed "
        "as erased or absent were deleted by the method stated (file system unlink or S3 "
        "object deletion; storage blocks are not overwritten) and checked gone. The data "
        "listed under Kept is not erased: the exempted categories until their retention "
        "period ends, the records of the contract as evidence.",
        provider=provider,
    )


def sign_certificate(text: str, signing_key: SigningKey) -> str:
    """Armored SSH signature of the certificate (namespace `handover-erasure`)."""
    from handover.bundle.sshsig import sign

    return sign(text.encode("utf-8"), signing_key, ERASURE_NAMESPACE)


class SignedErasure(BaseModel):
    """The erasure certificate, its SSH signature and what it records (no secret).

    `complete`: every target checked gone; when False, `remaining` lists the
    locations still holding something meant to go (never a client file name)
    and the flow must fail its checklist item after keeping the certificate.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    certificate: str  # Markdown, delivered beside the bundle
    signature: str  # ssh-keygen -Y sign armor, namespace handover-erasure
    certificate_sha256: str
    provider_key: str  # the public line that verifies the signature
    records: list[ErasureRecord]
    complete: bool
    remaining: list[str] = []
    kept: list[KeptRecord] = []


class ErasureJournal(BaseModel):
    """The erasure's progress on disk: the latest record of each target, then the certificate."""

    model_config = ConfigDict(extra="forbid")

    contract_id: str
    records: dict[str, ErasureRecord] = {}  # by location
    signed: SignedErasure | None = None


def journal_path(contract_id: str) -> Path:
    """`erasure-journal.json` in the contract's reversibility folder (kept as evidence)."""
    return ContractPaths(contract_id).phase_dir(Phase.REVERSIBILITY) / JOURNAL_NAME


def load_journal(contract_id: str) -> ErasureJournal:
    """The recorded progress (empty when none); HandoverError when the file is damaged."""
    path = journal_path(contract_id)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return ErasureJournal(contract_id=contract_id)
    try:
        return ErasureJournal.model_validate_json(data)
    except ValidationError as exc:
        raise HandoverError(
            f"{path}: the erasure journal is damaged ({exc.error_count()} problem(s)); "
            "restore it from backup, or move it aside to erase without the earlier records"
        ) from exc


def _save(journal: ErasureJournal) -> None:
    data = journal.model_dump_json(indent=2) + "\n"
    write_atomic(journal_path(journal.contract_id), data.encode("utf-8"))


def _load_key(playbook: Playbook, journal: ErasureJournal) -> tuple[SigningKey | None, str]:
    """The signing key in memory, or why it cannot be loaded and what to do about it."""
    ref = playbook.reversibility.signing_key
    try:
        return signing_key(playbook), ""
    except HandoverError as exc:
        why = f"the signing key {ref} (reversibility.signing_key) cannot be loaded: {exc}"
        vault = ContractPaths(playbook.contract_id).vault_file.absolute()
        if not ref.startswith(f"vault:{playbook.contract_id}/") or vault.exists():
            return None, why
        earlier = journal.records.get(str(vault))
        if earlier is not None and earlier.status == "erased":
            why += (
                ". The contract's vault is gone: an earlier erasure deleted it last, once "
                "every other copy was checked gone, and stopped before its certificate was "
                "recorded"
            )
        else:
            why += f". The contract's vault ({vault}) does not exist"
        return None, why + (
            ". Point reversibility.signing_key at the provider's signing key kept outside "
            "the vault (env:, file: or prefect-secret:) and rerun"
        )


def erase_and_certify(
    playbook: Playbook, bundle_name: str, targets: list[ErasureTarget]
) -> SignedErasure:
    """Erase and check every target, sign the certificate, journal it and record its digest.

    Returns the signed certificate even when the erasure is incomplete
    (`complete` False, `remaining` set): the flow keeps it as evidence, then
    fails its item. Raises SecretRefError, before deleting anything, when the
    signing key cannot be loaded and no complete certificate was recorded by
    an earlier run (see the module docstring).
    """
    cid = playbook.contract_id
    journal = load_journal(cid)
    key, no_key = _load_key(playbook, journal)
    recorded = journal.signed if journal.signed is not None and journal.signed.complete else None
    if key is None and recorded is None:
        raise SecretRefError(f"erasure not started, nothing deleted: {no_key}")

    def progress(record: ErasureRecord) -> None:
        journal.records[record.location] = record
        _save(journal)

    _save(journal)  # the journal exists from the start: it is among the records kept
    report = erase_contract_copies(
        cid, targets, actor=actor(), previous=list(journal.records.values()), on_record=progress
    )
    # listed once the deletions are over, as they are left
    kept = kept_records(playbook, [t.location for t in targets])
    report = report.model_copy(update={"kept": kept})
    if key is None:
        assert recorded is not None
        return _recorded_still_true(playbook, bundle_name, report, recorded, no_key)
    text = erasure_certificate(report, playbook)
    signed = SignedErasure(
        certificate=text,
        signature=sign_certificate(text, key),
        certificate_sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        provider_key=key.public_line("provider"),
        records=report.records,
        complete=report.complete,
        remaining=report.remaining(),
        kept=report.kept,
    )
    journal.signed = signed
    _save(journal)
    _audit(playbook, "erasure.certificate", bundle_name, signed)
    return signed


def _recorded_still_true(
    playbook: Playbook,
    bundle_name: str,
    report: ErasureReport,
    recorded: SignedErasure,
    no_key: str,
) -> SignedErasure:
    """The certificate an earlier run recorded, when this run found every target still gone.

    Without a signing key nothing new can be certified: anything this run
    had to delete, or could not, or a different list of targets, is an error.
    """
    before = {r.location: (r.status, r.objects, r.bytes) for r in recorded.records}
    changed = [
        r for r in report.records if before.get(r.location) != (r.status, r.objects, r.bytes)
    ]
    if report.complete and not changed and len(before) == len(report.records):
        _audit(playbook, "erasure.rechecked", bundle_name, recorded)
        return recorded
    found = ", ".join(f"{r.location}: {r.status}" for r in changed) or "other targets"
    raise SecretRefError(
        "an earlier run recorded a complete erasure certificate, but this run found "
        f"{found} and cannot sign a new certificate: {no_key}"
    )


def _audit(playbook: Playbook, event: str, bundle_name: str, signed: SignedErasure) -> None:
    ChecklistStore().audit_log(playbook.contract_id).append(
        event,
        actor(),
        bundle=bundle_name,
        certificate_sha256=signed.certificate_sha256,
        complete=signed.complete,
        remaining=signed.remaining,
        targets=[
            {"location": r.location, "status": r.status, "objects": r.objects}
            for r in signed.records
        ],
        kept=[{"kind": k.kind, "where": k.where} for k in signed.kept],
    )
