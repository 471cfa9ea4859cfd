"""The erasure certificate: the erasure report as Markdown, signed as `handover-erasure`.

The client receives a certificate saying what was erased, where, how, when
and by whom, and which data the provider keeps because a law requires it
(the playbook's `reversibility.exempted`, with reason and legal basis). It
is plain text signed with the provider's SSH signing key in its own
namespace, so the client checks it with OpenSSH alone and a bundle
signature can never pass for it:

    ssh-keygen -Y verify -f allowed_signers -I provider -n handover-erasure \\
        -s erasure-certificate.md.sig < erasure-certificate.md

The certificate names locations (folders, buckets, prefixes), never the
client's file names, which stay confidential. `erase_and_certify` is the
exit's erasure step: erase, write and sign the certificate, record it in
the contract's audit log.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

from handover.actor import actor
from handover.checklist.store import ChecklistStore
from handover.contract.keys import signing_key
from handover.errors import HandoverError
from handover.exit.erasure import ErasureRecord, ErasureReport, ErasureTarget, erase_contract_copies

if TYPE_CHECKING:
    from handover.bundle.sshsig import SigningKey
    from handover.contract.playbook import Playbook

ERASURE_NAMESPACE = "handover-erasure"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def erasure_certificate(report: ErasureReport, playbook: Playbook) -> str:
    """The certificate text (Markdown), to be signed with sign_certificate()."""
    contract = playbook.contract
    parties = contract.parties
    lines = [
        f"# Erasure certificate — contract {contract.id}",
        "",
        f"- Contract: {contract.title} ({contract.id})",
        f"- Provider: {parties.provider.legal_name}",
        f"- Client: {parties.client.legal_name}",
        f"- Erasure started: {report.started_at.isoformat(timespec='seconds')}",
        f"- Erasure finished: {report.finished_at.isoformat(timespec='seconds')}",
        f"- Performed by: {report.by}",
        f"- Result: {'complete' if report.complete else 'INCOMPLETE (see failures below)'}",
        "",
        "## Copies erased",
        "",
        "| # | what | where | method | status | objects | bytes | when |",
        "|---|------|-------|--------|--------|---------|-------|------|",
    ]
    for number, r in enumerate(report.records, start=1):
        what = r.description or r.kind
        lines.append(
            f"| {number} | {_cell(what)} | {_cell(r.location)} | {_cell(r.method)} | {r.status} "
            f"| {r.objects} | {r.bytes} | {r.at.isoformat(timespec='seconds')} |"
        )
    failures = [r for r in report.records if r.error]
    if failures:
        lines += ["", "## Failures", ""]
        lines += [f"- {_cell(r.location)}: {r.status}: {_cell(r.error)}" for r in failures]
    lines += ["", "## Data kept by law (not erased)", ""]
    exempted = playbook.reversibility.exempted
    if exempted:
        for item in exempted:
            basis = f" — legal basis: {item.legal_basis}" if item.legal_basis else ""
            lines.append(f"- {item.category}: {item.reason}{basis}")
    else:
        lines.append("- none")
    lines += [
        "",
        "## Statement",
        "",
        f"{parties.provider.legal_name} declares that, after the client's acceptance of the "
        "restitution bundle, the copies listed above were deleted from the provider's systems "
        "by the method stated (file system unlink or S3 object deletion; storage blocks are "
        "not overwritten), except the data kept by law listed above, which will be deleted "
        "when its legal retention period ends.",
        "",
        "## Verify this certificate",
        "",
        '    echo "provider $(cat provider.pub)" > allowed_signers',
        f"    ssh-keygen -Y verify -f allowed_signers -I provider -n {ERASURE_NAMESPACE} \\",
        "        -s erasure-certificate.md.sig < erasure-certificate.md",
        "",
    ]
    return "\n".join(lines)


def sign_certificate(text: str, signing_key: SigningKey) -> str:
    """Armored SSH signature of the certificate (namespace `handover-erasure`)."""
    from handover.bundle.sshsig import sign

    return sign(text.encode("utf-8"), signing_key, ERASURE_NAMESPACE)


class SignedErasure(BaseModel):
    """The erasure certificate, its SSH signature and what it records (no secret)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    certificate: str  # Markdown, delivered beside the bundle
    signature: str  # ssh-keygen -Y sign armor, namespace handover-erasure
    certificate_sha256: str
    provider_key: str  # the public line that verifies the signature
    records: list[ErasureRecord]


def erase_and_certify(
    playbook: Playbook, bundle_name: str, targets: list[ErasureTarget]
) -> SignedErasure:
    """Erase every target, sign the certificate and record its digest in the audit log.

    The audit log records the erasure even when a target failed; HandoverError
    is raised afterwards, naming the failures, so the exit's checklist item
    fails rather than deliver a certificate of an incomplete erasure.
    """
    report = erase_contract_copies(playbook.contract_id, targets, actor=actor())
    text = erasure_certificate(report, playbook)
    key = signing_key(playbook)
    signature = sign_certificate(text, key)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    ChecklistStore().audit_log(playbook.contract_id).append(
        "erasure.certificate",
        actor(),
        bundle=bundle_name,
        certificate_sha256=digest,
        complete=report.complete,
        targets=[
            {"location": r.location, "status": r.status, "objects": r.objects}
            for r in report.records
        ],
    )
    if not report.complete:
        raise HandoverError("erasure incomplete: " + "; ".join(report.problems()))
    return SignedErasure(
        certificate=text,
        signature=signature,
        certificate_sha256=digest,
        provider_key=key.public_line("provider"),
        records=report.records,
    )
