"""The reversibility plan (plan de réversibilité): how the client gets everything back at exit.

Drafted at takeover and kept with the contract: who can decrypt the bundle,
how it is delivered, the exit calendar with the legal basis of its
transition, the knowledge transfer (transfert de compétences) planned
during the transition, what is returned and what is not, whose deliverables
are whose, the provider access revoked at the end, and how the client
checks the bundle with standard tools only.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING

from handover.bundle.readme import NAMESPACE, SIGNER_IDENTITY
from handover.clock import as_utc
from handover.contract.deadlines import exit_deadlines
from handover.contract.playbook import phase_items
from handover.documents.blocks import Inline, code
from handover.documents.builder import DocumentBuilder
from handover.documents.document import Document
from handover.documents.exit_sections import calendar_section, planned_transfer_section
from handover.documents.formatting import shorten
from handover.documents.sections import dataset_source, escalation_tables, header_fields
from handover.i18n import Texts
from handover.i18n.words import owner_text
from handover.sshkeys import line_fingerprint

if TYPE_CHECKING:
    from handover.contract.playbook import Playbook
    from handover.contract.reversibility import Delivery


def reversibility_plan(
    playbook: Playbook,
    generated_at: datetime,
    notice_date: date | None = None,
    recipients: Sequence[str] | None = None,
) -> Document:
    """The reversibility plan (plan de réversibilité), drafted from day one.

    Dates are computed from `notice_date`; without one (at takeover) the
    plan shows the delays and an example schedule for a notice given on the
    day the plan was generated. `recipients` are the expanded recipients
    (`playbook.reversibility.load_recipients(base)`), shown instead of the
    `file:` references when given.
    """
    rev = playbook.reversibility
    b = DocumentBuilder(Texts.for_contract(playbook.contract))
    t = b.t
    header_fields(b, playbook, generated_at)
    b.p(
        [
            t._(
                "At the end of the contract, whatever its cause, the provider returns every "
                "piece of the client's data, documentation and credentials in a restitution "
                "bundle that the client verifies and opens with standard tools only"
            )
            + " (",
            code("age"),
            ", ",
            code("tar"),
            ", ",
            code("sha256sum"),
            ", ",
            code("ssh-keygen"),
            "), " + t._("then revokes its access and erases its copies."),
        ],
        "note",
    )
    b.h(2, t._("Recipients"))
    b.p(t._("Only these keys can decrypt the bundle; the provider keeps no key that opens it."))
    shown = list(recipients) if recipients else list(rev.recipients)
    b.table(
        ["#", t._("Kind"), t._("Recipient")],
        [_recipient_row(t, i, r) for i, r in enumerate(shown, start=1)],
    )
    _delivery_section(b, rev.delivery)
    _deadlines_section(b, playbook, notice_date or as_utc(generated_at).date(), notice_date)
    _data_returned_section(b, playbook)
    _ownership_section(b, playbook)
    _access_section(b, playbook)
    _verification_section(b)
    b.h(2, t._("Contacts"))
    escalation_tables(b, playbook, level=3)
    title = t._("Reversibility plan: {title}", title=playbook.contract.title)
    return b.document("reversibility-plan", title)


def _key_label(line: str) -> Inline:
    """A public key shown by type, fingerprint and comment (the base64 blob is too long)."""
    parts = line.split(None, 2)
    fingerprint = line_fingerprint(line)
    if not fingerprint:
        return code(shorten(line))
    comment = f" ({parts[2]})" if len(parts) > 2 else ""
    return [code(parts[0]), " ", code(fingerprint), comment]


def _recipient_row(t: Texts, index: int, entry: str) -> list[Inline]:
    if entry.startswith("file:"):
        return [str(index), t._("recipients file (age -R)"), code(entry)]
    if entry.startswith("age1"):
        return [str(index), "age X25519", code(entry)]
    kind = entry.split(None, 1)[0]
    return [str(index), t._("SSH public key ({kind})", kind=kind), _key_label(entry)]


def _delivery_section(b: DocumentBuilder, delivery: Delivery) -> None:
    t = b.t
    b.h(2, t._("Delivery"))
    if delivery.kind == "local":
        b.fields(
            [
                (t._("Method"), t._("folder handed over to the client")),
                (t._("Folder"), code(delivery.path)),
            ]
        )
        return
    b.fields(
        [
            (t._("Method"), t._("S3 bucket with presigned download links")),
            (t._("Location"), code(f"s3://{delivery.bucket}/{delivery.prefix}")),
            (
                t._("Link lifetime"),
                t._("{days} days, re-issued on request", days=delivery.link_expiry_days),
            ),
            (
                t._("Copy to the client's bucket"),
                code(delivery.client_bucket) if delivery.client_bucket else None,
            ),
        ]
    )


def _deadlines_section(
    b: DocumentBuilder, playbook: Playbook, notice: date, actual: date | None
) -> None:
    """The exit calendar from `notice` (the actual notice, or an example one when None),
    then the knowledge transfer that takes place during the transition."""
    example = actual is None
    dates = exit_deadlines(playbook.reversibility.deadlines, notice)
    calendar_section(b, dates, example=example)
    b.p(
        b.t._(
            "Contract termination notice: {months} months. Switching deadlines follow the "
            "EU Data Act (Regulation 2023/2854, art. 25): notice at most 2 months, transition "
            "at most 30 days unless a longer one is notified as technically necessary "
            "(art. 25(4), at most 7 months) or agreed in the contract, retrieval at least "
            "30 days.",
            months=playbook.contract.dates.notice_period_months,
        )
    )
    planned_transfer_section(
        b, phase_items(playbook, "reversibility"), dates.switch_over, example=example
    )


def _data_returned_section(b: DocumentBuilder, playbook: Playbook) -> None:
    """What is returned and in which format, then what is not returned and why."""
    rev = playbook.reversibility
    t = b.t
    b.h(2, t._("Data returned"))
    b.table(
        [t._("Dataset"), t._("Host"), t._("Source")],
        [[code(d.name), d.host or "S3", dataset_source(t, d)] for d in playbook.perimeter.datasets],
        t._("No dataset in the perimeter."),
    )
    b.p(
        [
            t._(
                "Also returned: the inventory of every host, the documentation, the "
                "checklists, the audit log, and the credentials held for the client as a "
                "KeePass file"
            )
            + " (",
            code("credentials.kdbx"),
            ") " + t._("inside the encrypted index."),
        ]
    )
    b.h(3, t._("Formats"))
    b.table(
        [t._("Data"), t._("Format")],
        [[f.data, f.format] for f in rev.formats],
        t._("No format stated."),
    )
    b.h(2, t._("Data not returned"))
    b.table(
        [t._("Category"), t._("Reason"), t._("Legal basis")],
        [[e.category, e.reason, e.legal_basis or "—"] for e in rev.exempted],
        t._("No exemption: everything is returned."),
    )


def _ownership_section(b: DocumentBuilder, playbook: Playbook) -> None:
    t = b.t
    b.h(2, t._("Ownership of deliverables"))
    b.table(
        [t._("Deliverable"), t._("Owner"), t._("Notes")],
        [
            [o.item, owner_text(t, o.owner), o.notes or "—"]
            for o in playbook.reversibility.software_ownership
        ],
        t._("No deliverable listed."),
    )
    if playbook.perimeter.software:
        b.table(
            [t._("Software in scope"), t._("Licence owner")],
            [[s.name, owner_text(t, s.owner)] for s in playbook.perimeter.software],
        )


def _access_section(b: DocumentBuilder, playbook: Playbook) -> None:
    t = b.t
    b.h(2, t._("Provider access revoked at exit"))
    b.table(
        [t._("Host"), t._("Account"), t._("Key"), t._("Purpose")],
        [
            [code(a.host), code(a.account), _key_label(key), a.purpose or "—"]
            for a in playbook.security.provider_access
            for key in a.public_keys
        ],
        t._("No provider access recorded."),
    )


def _verification_section(b: DocumentBuilder) -> None:
    """The client's checks, in order, with the exact commands of the standard tools."""
    t = b.t
    b.h(2, t._("Verification by the client"))
    b.bullets(
        [
            [t._("Check the download:") + " ", code("sha256sum -c SHA256SUMS")],
            [
                t._("Check the provider's signature, after comparing") + " ",
                code("provider.pub"),
                " " + t._("with the key the provider gave out of band:") + " ",
                code(f'echo "{SIGNER_IDENTITY} $(cat provider.pub)" > allowed_signers'),
                " " + t._("then") + " ",
                code(
                    f"ssh-keygen -Y verify -f allowed_signers -I {SIGNER_IDENTITY} "
                    f"-n {NAMESPACE} -s SHA256SUMS.sig < SHA256SUMS"
                ),
            ],
            [
                t._("Decrypt and extract each volume:") + " ",
                code("age -d -i key.txt volumes/NNNN-….tar.age | tar -x"),
            ],
            [
                t._("Check every file:") + " ",
                code("sha256sum -c SHA256SUMS"),
                " " + t._("inside each extracted volume"),
            ],
            t._("Record acceptance (or the problems found) with the provider."),
        ],
        ordered=True,
    )
