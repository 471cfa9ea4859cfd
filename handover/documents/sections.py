"""Sections several documents share: header, parties, contacts and escalation, perimeter,
severities, checklists, and tables of the plain facts a flow gathered.

A party's escalation path or the perimeter reads the same in the baseline
report, the plan and the runbooks because each is written once, here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from handover.checklist.model import Checklist, Status
from handover.documents.blocks import Inline, badge, code, join_codes, strong
from handover.documents.builder import DocumentBuilder
from handover.documents.formatting import (
    date_text,
    datetime_text,
    hours_text,
    is_secret_key,
    minutes_text,
    scrub,
    value_inline,
)

if TYPE_CHECKING:
    from handover.contract.parties import Party
    from handover.contract.perimeter import Dataset, Host
    from handover.contract.playbook import Playbook


def header_fields(
    b: DocumentBuilder,
    playbook: Playbook,
    generated_at: datetime | None,
    extra: Sequence[tuple[str, Inline | None]] = (),
) -> None:
    """The fields every document opens with: contract, parties, dates, then `extra`."""
    contract = playbook.contract
    b.fields(
        [
            ("Contract", [contract.title, " (", code(contract.id), ")"]),
            ("Client", contract.parties.client.legal_name),
            ("Provider", contract.parties.provider.legal_name),
            ("Effective date", date_text(contract.dates.effective)),
            ("Generated", datetime_text(generated_at) if generated_at else None),
            *extra,
        ]
    )


# --------------------------------------------------------------------------- parties


def _contact_rows(party: Party) -> list[list[Inline]]:
    return [[c.name, c.role or "—", c.email or "—", c.phone or "—"] for c in party.contacts]


def _escalation_rows(party: Party) -> list[list[Inline]]:
    rows: list[list[Inline]] = []
    for step in sorted(party.escalation, key=lambda s: s.level):
        after = (
            minutes_text(step.after_minutes) if step.after_minutes is not None else "first contact"
        )
        rows.append([str(step.level), step.name, step.email or "—", step.phone or "—", after])
    return rows


def _both_parties(playbook: Playbook, provider: str) -> tuple[tuple[str, Party], ...]:
    parties = playbook.contract.parties
    return ((provider, parties.provider), ("Client", parties.client))


def parties_section(b: DocumentBuilder, playbook: Playbook, level: int = 2) -> None:
    """Both parties in full: registration, address, contacts and escalation path."""
    b.h(level, "Parties (parties au contrat)")
    for label, party in _both_parties(playbook, "Provider (prestataire)"):
        b.h(level + 1, f"{label}: {party.legal_name}")
        b.fields([("Registration", party.registration), ("Address", party.address)])
        b.table(["Contact", "Role", "E-mail", "Phone"], _contact_rows(party), "No contact listed.")
        if party.escalation:
            b.p(strong("Escalation (escalade)"))
            b.table(["Level", "Who", "E-mail", "Phone", "Escalate after"], _escalation_rows(party))


def escalation_tables(b: DocumentBuilder, playbook: Playbook, level: int) -> None:
    """Whom to call, per party: its escalation path, or its contacts when it has none."""
    for label, party in _both_parties(playbook, "Provider"):
        b.h(level, f"{label}: {party.legal_name}")
        if party.escalation:
            b.table(["Level", "Who", "E-mail", "Phone", "Escalate after"], _escalation_rows(party))
        else:
            b.table(
                ["Contact", "Role", "E-mail", "Phone"], _contact_rows(party), "No contact listed."
            )


def severity_table(b: DocumentBuilder, playbook: Playbook) -> None:
    """The SLA's severities with their response and resolution times."""
    b.table(
        ["Severity", "Description", "Response", "Resolution"],
        [
            [
                strong(s.level),
                s.description,
                minutes_text(s.response_minutes),
                hours_text(s.resolution_hours),
            ]
            for s in playbook.sla.severities
        ],
        "No severity levels defined in the SLA.",
    )


# --------------------------------------------------------------------------- perimeter


def host_access(host: Host) -> Inline:
    """How the provider reaches a host: its local root, or the ssh destination."""
    if host.transport == "local":
        return ["local, root ", code(host.root or "/")]
    user = f"{host.user}@" if host.user else ""
    return ["ssh ", code(f"{user}{host.address}:{host.port}")]


def dataset_source(dataset: Dataset) -> Inline:
    """Where a dataset's data comes from: an S3 prefix, a dump command, or paths."""
    if dataset.s3 is not None:
        return [
            "S3 ",
            code(f"s3://{dataset.s3.bucket}/{dataset.s3.prefix}"),
            f" ({dataset.s3.versions})",
        ]
    if dataset.dump is not None:
        return ["dump ", code(dataset.dump.command), " → ", code(dataset.dump.filename)]
    return ["files ", *join_codes(dataset.paths or [])]


def perimeter_section(b: DocumentBuilder, playbook: Playbook, level: int = 2) -> None:
    """The hosts, datasets and software the contract covers."""
    perimeter = playbook.perimeter
    b.h(level, "Perimeter (périmètre)")
    b.h(level + 1, "Hosts")
    b.table(
        ["Host", "Access", "Host key", "Tags"],
        [
            [
                code(h.name),
                host_access(h),
                code(h.host_key)
                if h.host_key
                else ("n/a" if h.transport == "local" else "known_hosts"),
                ", ".join(h.tags) or "—",
            ]
            for h in perimeter.hosts
        ],
        "No host in the perimeter.",
    )
    b.h(level + 1, "Datasets")
    b.table(
        ["Dataset", "Host", "Source"],
        [[code(d.name), d.host or "—", dataset_source(d)] for d in perimeter.datasets],
        "No dataset in the perimeter.",
    )
    b.h(level + 1, "Software and services in scope")
    b.table(
        ["Name", "Kind", "Version", "Licence owner"],
        [[s.name, s.kind or "—", s.version or "—", s.owner] for s in perimeter.software],
        "No software listed.",
    )


# --------------------------------------------------------------------------- checklists


def _open_items(checklist: Checklist) -> list[Inline]:
    """Items still failed, running or pending (the exit report item only when it failed)."""
    open_points: list[Inline] = []
    for item in checklist.items:
        if item.id == "exit-report" and item.status is not Status.FAILED:
            continue  # the exit report itself: it is being produced
        if item.status in (Status.FAILED, Status.RUNNING, Status.PENDING):
            why = f": {item.reason}" if item.reason and item.status is Status.FAILED else ""
            open_points.append(
                [f"{checklist.phase.value}: ", code(item.id), f" is {item.status.value}{why}"]
            )
    return open_points


def checklist_sections(
    b: DocumentBuilder, checklists: Sequence[Checklist], level: int
) -> list[Inline]:
    """One section per checklist (summary and items); returns the items still open."""
    open_points: list[Inline] = []
    for checklist in checklists:
        counts = checklist.summary()
        state = (
            badge("complete", "done") if checklist.is_complete else badge("incomplete", "failed")
        )
        b.h(level, f"{checklist.phase.value.capitalize()}")
        b.p(
            [
                state,
                f" {counts['done']} done, {counts['waived']} waived, {counts['failed']} failed, "
                f"{counts['running']} running, {counts['pending']} pending "
                f"(version {checklist.version}).",
            ]
        )
        b.table(
            ["Item", "Title", "Status", "Evidence", "Reason", "By"],
            [
                [
                    code(item.id),
                    item.title,
                    badge(item.status.value, item.status.value),
                    ", ".join(e.short() for e in item.evidence) or "—",
                    item.reason or "—",
                    item.actor,
                ]
                for item in checklist.items
            ],
        )
        open_points += _open_items(checklist)
    return open_points


# --------------------------------------------------------------------------- gathered facts


def dict_fields(b: DocumentBuilder, data: Mapping[str, Any]) -> None:
    """Label/value fields from a dict; multi-line text (a certificate) follows as a code block."""
    long_texts: list[tuple[str, str]] = []
    pairs: list[tuple[str, Inline | None]] = []
    for key, value in data.items():
        label = str(key).replace("_", " ").capitalize()
        if isinstance(value, str) and "\n" in value.strip() and not is_secret_key(str(key)):
            long_texts.append((label, value))
        else:
            pairs.append((label, value_inline(value, str(key))))
    b.fields(pairs)
    for label, text in long_texts:
        b.p(strong(label))
        b.code(scrub(text))


def dict_table(b: DocumentBuilder, rows: Sequence[Mapping[str, Any]]) -> None:
    """A table from dicts: columns are the union of keys in first-seen order."""
    keys: list[str] = []
    for row in rows:
        for key in row:
            if key not in keys:
                keys.append(str(key))
    b.table(
        [k.replace("_", " ").capitalize() for k in keys],
        [[value_inline(row.get(k), k) for k in keys] for row in rows],
    )
