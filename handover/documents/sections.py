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
from handover.contract.checklists import item_title
from handover.documents.blocks import Inline, badge, code, join_codes, strong
from handover.documents.builder import DocumentBuilder
from handover.documents.field_labels import field_label
from handover.documents.formatting import is_secret_key, scrub, value_inline
from handover.i18n import Texts
from handover.i18n.words import owner_text, status_text

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
    t = b.t
    b.fields(
        [
            (t._("Contract"), [contract.title, " (", code(contract.id), ")"]),
            (t._("Client"), contract.parties.client.legal_name),
            (t._("Provider"), contract.parties.provider.legal_name),
            (t._("Effective date"), t.date(contract.dates.effective)),
            (t._("Generated"), t.datetime(generated_at) if generated_at else None),
            *extra,
        ]
    )


# --------------------------------------------------------------------------- parties


def _contact_rows(party: Party) -> list[list[Inline]]:
    return [[c.name, c.role or "—", c.email or "—", c.phone or "—"] for c in party.contacts]


def _escalation_rows(t: Texts, party: Party) -> list[list[Inline]]:
    rows: list[list[Inline]] = []
    for step in sorted(party.escalation, key=lambda s: s.level):
        after = (
            t.minutes(step.after_minutes)
            if step.after_minutes is not None
            else t._("first contact")
        )
        rows.append([str(step.level), step.name, step.email or "—", step.phone or "—", after])
    return rows


def _both_parties(playbook: Playbook, provider: str, client: str) -> tuple[tuple[str, Party], ...]:
    parties = playbook.contract.parties
    return ((provider, parties.provider), (client, parties.client))


def _contact_headers(t: Texts) -> list[str]:
    return [t._("Contact"), t._("Role"), t._("E-mail"), t._("Phone")]


def _escalation_headers(t: Texts) -> list[str]:
    return [t._("Level"), t._("Who"), t._("E-mail"), t._("Phone"), t._("Escalate after")]


def parties_section(b: DocumentBuilder, playbook: Playbook, level: int = 2) -> None:
    """Both parties in full: registration, address, contacts and escalation path."""
    t = b.t
    b.h(level, t._("Parties"))
    for label, party in _both_parties(playbook, t._("Provider"), t._("Client")):
        b.h(level + 1, t._("{label}: {name}", label=label, name=party.legal_name))
        b.fields([(t._("Registration"), party.registration), (t._("Address"), party.address)])
        b.table(_contact_headers(t), _contact_rows(party), t._("No contact listed."))
        if party.escalation:
            b.p(strong(t._("Escalation")))
            b.table(_escalation_headers(t), _escalation_rows(t, party))


def escalation_tables(b: DocumentBuilder, playbook: Playbook, level: int) -> None:
    """Whom to call, per party: its escalation path, or its contacts when it has none."""
    t = b.t
    for label, party in _both_parties(playbook, t._("Provider"), t._("Client")):
        b.h(level, t._("{label}: {name}", label=label, name=party.legal_name))
        if party.escalation:
            b.table(_escalation_headers(t), _escalation_rows(t, party))
        else:
            b.table(_contact_headers(t), _contact_rows(party), t._("No contact listed."))


def severity_table(b: DocumentBuilder, playbook: Playbook) -> None:
    """The SLA's severities with their response and resolution times."""
    t = b.t
    b.table(
        [t._("Severity"), t._("Description"), t._("Response"), t._("Resolution")],
        [
            [
                strong(s.level),
                s.description,
                t.minutes(s.response_minutes),
                t.hours(s.resolution_hours),
            ]
            for s in playbook.sla.severities
        ],
        t._("No severity levels defined in the SLA."),
    )


# --------------------------------------------------------------------------- perimeter


def host_access(t: Texts, host: Host) -> Inline:
    """How the provider reaches a host: its local root, or the ssh destination."""
    if host.transport == "local":
        return [t._("local, root") + " ", code(host.root or "/")]
    user = f"{host.user}@" if host.user else ""
    return ["ssh ", code(f"{user}{host.address}:{host.port}")]


def dataset_source(t: Texts, dataset: Dataset) -> Inline:
    """Where a dataset's data comes from: an S3 prefix, a dump command, or paths."""
    if dataset.s3 is not None:
        return [
            "S3 ",
            code(f"s3://{dataset.s3.bucket}/{dataset.s3.prefix}"),
            f" ({dataset.s3.versions})",
        ]
    if dataset.dump is not None:
        return [t._("dump") + " ", code(dataset.dump.command), " → ", code(dataset.dump.filename)]
    return [t._("files") + " ", *join_codes(dataset.paths or [])]


def perimeter_section(b: DocumentBuilder, playbook: Playbook, level: int = 2) -> None:
    """The hosts, datasets and software the contract covers."""
    perimeter = playbook.perimeter
    t = b.t
    b.h(level, t._("Perimeter"))
    b.h(level + 1, t._("Hosts"))
    b.table(
        [t._("Host"), t._("Access"), t._("Host key"), t._("Tags")],
        [
            [
                code(h.name),
                host_access(t, h),
                code(h.host_key)
                if h.host_key
                else (t._("n/a") if h.transport == "local" else code("known_hosts")),
                ", ".join(h.tags) or "—",
            ]
            for h in perimeter.hosts
        ],
        t._("No host in the perimeter."),
    )
    b.h(level + 1, t._("Datasets"))
    b.table(
        [t._("Dataset"), t._("Host"), t._("Source")],
        [[code(d.name), d.host or "—", dataset_source(t, d)] for d in perimeter.datasets],
        t._("No dataset in the perimeter."),
    )
    b.h(level + 1, t._("Software and services in scope"))
    b.table(
        [t._("Name"), t._("Kind"), t._("Version"), t._("Licence owner")],
        [
            [s.name, s.kind or "—", s.version or "—", owner_text(t, s.owner)]
            for s in perimeter.software
        ],
        t._("No software listed."),
    )


# --------------------------------------------------------------------------- checklists


def phase_text(t: Texts, phase: str) -> str:
    words = {
        "takeover": t._("Takeover"),
        "implementation": t._("Implementation"),
        "operational": t._("Operational run"),
        "reversibility": t._("Reversibility"),
    }
    return words.get(phase, phase.capitalize())


def _open_items(t: Texts, checklist: Checklist) -> list[Inline]:
    """Items still failed, running or pending (the exit report item only when it failed)."""
    open_points: list[Inline] = []
    for item in checklist.items:
        if item.id == "exit-report" and item.status is not Status.FAILED:
            continue  # the exit report itself: it is being produced
        if item.status in (Status.FAILED, Status.RUNNING, Status.PENDING):
            why = f": {item.reason}" if item.reason and item.status is Status.FAILED else ""
            state = t._("is {status}", status=status_text(t, item.status.value))
            open_points.append(
                [
                    t._("{label}:", label=phase_text(t, checklist.phase.value)) + " ",
                    code(item.id),
                    f" {state}{why}",
                ]
            )
    return open_points


def checklist_sections(
    b: DocumentBuilder, checklists: Sequence[Checklist], level: int
) -> list[Inline]:
    """One section per checklist (summary and items); returns the items still open."""
    open_points: list[Inline] = []
    t = b.t
    for checklist in checklists:
        counts = checklist.summary()
        state = (
            badge(t._("complete"), "done")
            if checklist.is_complete
            else badge(t._("incomplete"), "failed")
        )
        b.h(level, phase_text(t, checklist.phase.value))
        b.p(
            [
                state,
                " "
                + t._(
                    "{done} done, {waived} waived, {failed} failed, {running} running, "
                    "{pending} pending (version {version}).",
                    version=checklist.version,
                    **counts,
                ),
            ]
        )
        b.table(
            [t._("Item"), t._("Title"), t._("Status"), t._("Evidence"), t._("Reason"), t._("By")],
            [
                [
                    code(item.id),
                    item_title(checklist.phase.value, item.id, item.title, t.language),
                    badge(status_text(t, item.status.value), item.status.value),
                    ", ".join(e.short() for e in item.evidence) or "—",
                    item.reason or "—",
                    item.actor,
                ]
                for item in checklist.items
            ],
        )
        open_points += _open_items(t, checklist)
    return open_points


# --------------------------------------------------------------------------- gathered facts


def dict_fields(b: DocumentBuilder, data: Mapping[str, Any]) -> None:
    """Label/value fields from a dict; multi-line text (a certificate) follows as a code block."""
    long_texts: list[tuple[str, str]] = []
    pairs: list[tuple[str, Inline | None]] = []
    for key, value in data.items():
        label = field_label(b.t, str(key))
        if isinstance(value, str) and "\n" in value.strip() and not is_secret_key(str(key)):
            long_texts.append((label, value))
        else:
            pairs.append((label, value_inline(value, str(key), b.t)))
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
        [field_label(b.t, k) for k in keys],
        [[value_inline(row.get(k), k, b.t) for k in keys] for row in rows],
    )
