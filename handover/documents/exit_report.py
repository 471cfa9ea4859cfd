"""The exit report (rapport de fin de contrat / de réversibilité): the exit as recorded.

Each section states one step of the exit from the facts the reversibility
flow gathered, and every step missing or failed becomes an open point, so
the report never reads as complete when it is not; the verdict is put
first, right after the header. The exit calendar the flow recorded (with
the transition's legal basis, and how each of its waits ended) and the
knowledge transfer come before the steps, as the plan they were measured
against.

The erasure is shown from the signed certificate's record: what was erased
(a table of the targets), what the provider keeps and on what basis (a
table), and, when the erasure is incomplete, a warning and an open point
naming the locations that still hold data; before the erasure, when it is
due.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from handover.checklist.model import Checklist, ChecklistItem
from handover.clock import as_utc
from handover.contract.deadlines import ExitDeadlines
from handover.contract.playbook import phase_items
from handover.documents.blocks import Fields, Inline, Para, badge, code
from handover.documents.builder import DocumentBuilder
from handover.documents.document import Document
from handover.documents.exit_sections import (
    ERASURE,
    SWITCH_OVER,
    calendar_section,
    planned_transfer_section,
    recorded_transfer_section,
)
from handover.documents.formatting import count_text, date_text, datetime_text, value_text
from handover.documents.sections import checklist_sections, dict_fields, dict_table, header_fields
from handover.exit.erasure import DONE
from handover.phases import Phase

if TYPE_CHECKING:
    from handover.contract.playbook import Playbook


def exit_report(
    playbook: Playbook,
    bundle_summary: Mapping[str, Any],
    deliveries: Sequence[Mapping[str, Any]],
    acceptance: Mapping[str, Any] | None,
    revocations: Sequence[Mapping[str, Any]],
    erasure: Mapping[str, Any] | None,
    checklists: Sequence[Checklist],
    generated_at: datetime | None = None,
    *,
    deadlines: ExitDeadlines | None = None,
    replaced: Sequence[Mapping[str, Any]] = (),
) -> Document:
    """The final exit report (rapport de fin de contrat / de réversibilité).

    Inputs are plain facts gathered by the reversibility flow: the bundle
    summary (location, volumes, hashes), deliveries, the client's acceptance
    (None while not received), access revocations, the erasure record (None
    while pending) and the checklists of every phase. Anything missing or
    failed is listed under "Open points", so the report never reads as
    complete when it is not. Values under keys that look secret (password,
    token, private...) are masked.

    `deadlines` is the exit calendar the flow recorded at the notice; without
    it, a calendar under the bundle summary's `deadlines` key is used (and
    not repeated among the bundle's fields). The summary's `waits` (how each
    calendar wait ended, by wait) is shown with the calendar, not among the
    bundle's fields; without that key the calendar states its rules only.
    An erasure still pending after `erasure_by`, as of `generated_at`, is an
    open point of its own, and so is an incomplete one.

    `replaced`: the deliveries the client accepted with reservations, each
    with its revision, bundle, the signed reservations and the correction
    declared (`handover.exit.progress.Redelivery`), oldest first.
    """
    summary = dict(bundle_summary)
    recorded = _recorded_calendar(summary)  # taken out of the summary either way
    waits = _recorded_waits(summary)
    dates = deadlines or recorded
    today = as_utc(generated_at).date() if generated_at else None
    b = DocumentBuilder()
    header_fields(b, playbook, generated_at)
    past = ([SWITCH_OVER] if deliveries else []) + ([ERASURE] if erasure else [])
    _calendar_and_transfer(b, playbook, dates, acceptance, checklists, waits, past)
    open_points = _bundle_section(b, summary)
    open_points += _deliveries_section(b, deliveries)
    _replaced_section(b, replaced)
    open_points += _acceptance_section(b, acceptance)
    open_points += _revocations_section(b, playbook, revocations)
    open_points += _erasure_section(b, erasure, acceptance, dates, today)
    b.h(2, "Checklists")
    open_points += checklist_sections(b, checklists, level=3)
    if not checklists:
        b.p("No checklist given.", "warning")
    b.h(2, "Open points")
    b.bullets(open_points, empty="None: the exit is complete.")
    # the verdict goes first: right after the header fields
    verdict_at = 1 if b.blocks and isinstance(b.blocks[0], Fields) else 0
    b.blocks.insert(verdict_at, _verdict(open_points))
    title = f"Exit report (rapport de fin de contrat): {playbook.contract.title}"
    return b.document("exit-report", title)


def _verdict(open_points: Sequence[Inline]) -> Para:
    if not open_points:
        return Para([badge("complete", "done"), " Every exit step is done and recorded."])
    return Para(
        [
            badge("incomplete", "failed"),
            f" {len(open_points)} open points (see the end of this report).",
        ],
        "warning",
    )


def _bundle_section(b: DocumentBuilder, bundle_summary: Mapping[str, Any]) -> list[Inline]:
    b.h(2, "Restitution bundle")
    open_points: list[Inline] = []
    summary = dict(bundle_summary)
    volumes = summary.pop("volumes", None)
    if summary:
        dict_fields(b, summary)
    else:
        open_points.append("No restitution bundle recorded.")
        b.p("No bundle recorded.", "warning")
    if isinstance(volumes, list) and volumes:
        b.h(3, "Volumes")
        dict_table(b, volumes)
    return open_points


def _deliveries_section(
    b: DocumentBuilder, deliveries: Sequence[Mapping[str, Any]]
) -> list[Inline]:
    b.h(2, "Deliveries")
    if deliveries:
        dict_table(b, list(deliveries))
        return []
    b.p("No delivery recorded.", "warning")
    return ["The bundle was not delivered."]


def _replaced_section(b: DocumentBuilder, replaced: Sequence[Mapping[str, Any]]) -> None:
    """Each delivery accepted with reservations, why, and what was corrected before the next."""
    if not replaced:
        return
    b.h(2, "Deliveries replaced after reservations")
    rows = []
    for entry in replaced:
        acceptance = entry.get("acceptance") or {}
        correction = entry.get("correction") or {}
        rows.append(
            {
                "revision": entry.get("revision"),
                "bundle": entry.get("bundle_name"),
                "signed by": f"{acceptance.get('accepted_by', '')} "
                f"({acceptance.get('signer_fingerprint', '')})",
                "reservations": acceptance.get("reservations", ""),
                "corrected by": correction.get("corrected_by", ""),
                "corrections": correction.get("corrections", ""),
            }
        )
    dict_table(b, rows)


def _acceptance_section(b: DocumentBuilder, acceptance: Mapping[str, Any] | None) -> list[Inline]:
    b.h(2, "Client verification and acceptance")
    if not acceptance:
        b.p("The client's acceptance has not been received.", "warning")
        return ["Client acceptance not received."]
    dict_fields(b, acceptance)
    if acceptance.get("accepted") is False:
        return ["The client did not accept the bundle."]
    return []


def _revocations_section(
    b: DocumentBuilder, playbook: Playbook, revocations: Sequence[Mapping[str, Any]]
) -> list[Inline]:
    """Each revocation recorded (a failed one is an open point), or why there is none."""
    b.h(2, "Provider access revoked")
    if revocations:
        dict_table(b, list(revocations))
        return [
            f"Access revocation failed: {value_text(r.get('host', '?'))}"
            for r in revocations
            if r.get("ok") is False or r.get("status") in ("failed", "error")
        ]
    if playbook.security.provider_access:
        b.p("No revocation recorded.", "warning")
        return ["Provider access not revoked."]
    b.p("The playbook records no provider access to revoke.")
    return []


def _erasure_section(
    b: DocumentBuilder,
    erasure: Mapping[str, Any] | None,
    acceptance: Mapping[str, Any] | None,
    dates: ExitDeadlines | None,
    today: date | None,
) -> list[Inline]:
    """The erasure as its record has it: result, targets, what is kept, then the certificate."""
    b.h(2, "Erasure of provider copies")
    if not erasure:
        return _erasure_pending(b, acceptance, dates, today)
    record = dict(erasure)
    targets = record.pop("records", None)
    kept = record.pop("kept", None)
    remaining = _remaining(record.pop("remaining", None), targets)
    complete = record.pop("complete", None)
    open_points: list[Inline] = []
    if complete is False or remaining:
        where = ", ".join(remaining) or "locations not recorded"
        held = (
            f"in {count_text(len(remaining), 'location')}: {where}"
            if remaining
            else "in locations the record does not name"
        )
        b.p(
            [
                badge("incomplete", "failed"),
                f" The erasure is incomplete: data meant to be erased remains, or may remain, "
                f"{held}.",
            ],
            "warning",
        )
        open_points.append(f"Erasure incomplete: {where}")
    elif complete is True:
        b.p([badge("complete", "done"), " Every target was erased or found absent, and checked."])
    if isinstance(targets, list):
        b.h(3, "Erasure targets")
        _targets_table(b, targets)
    if isinstance(kept, list):
        b.h(3, "Kept (not erased), and why")
        _kept_table(b, kept)
    if record:
        b.h(3, "Erasure certificate")
        dict_fields(b, record)
    return open_points


def _erasure_pending(
    b: DocumentBuilder,
    acceptance: Mapping[str, Any] | None,
    dates: ExitDeadlines | None,
    today: date | None,
) -> list[Inline]:
    """No erasure yet: when it is due (it follows the client's acceptance), or overdue."""
    if acceptance and acceptance.get("accepted") is not False and dates is not None:
        if acceptance.get("early_erasure") is True:
            due = "now: the client's signed acceptance asks for early erasure"
        else:
            due = f"from {date_text(dates.erasure_earliest)}, the end of the retrieval period"
        b.p(
            "Provider copies have not been erased yet; the signed erasure certificate is "
            f"pending. The erasure is due {due}, and by {date_text(dates.erasure_by)} at the "
            "latest.",
            "warning",
        )
    else:
        b.p("Provider copies not erased yet; the signed erasure certificate is pending.", "warning")
    if dates is not None and today is not None and dates.erasure_overdue(today):
        return [f"Erasure of provider copies overdue: due by {date_text(dates.erasure_by)}."]
    return ["Erasure of provider copies pending."]


def _remaining(value: object, targets: object) -> list[str]:
    """The locations still holding data: as recorded, else the targets not erased nor absent."""
    if isinstance(value, list) and value:
        return [str(v) for v in value]
    if not isinstance(targets, list):
        return []
    return [
        str(t.get("location", "?"))
        for t in targets
        if isinstance(t, Mapping) and t.get("status") not in DONE
    ]


def _moment(value: object) -> str:
    """A recorded time (ISO 8601 text once dumped as JSON), as the documents write it."""
    if isinstance(value, str):
        try:
            return datetime_text(datetime.fromisoformat(value))
        except ValueError:
            return value
    return value_text(value)


def _targets_table(b: DocumentBuilder, targets: Sequence[Any]) -> None:
    rows: list[list[Inline]] = []
    for target in targets:
        t: Mapping[str, Any] = target if isinstance(target, Mapping) else {}
        status = str(t.get("status", "?"))
        rows.append(
            [
                str(t.get("description") or t.get("kind") or "—"),
                code(t.get("location", "?")),
                str(t.get("method") or "—"),
                badge(status, "done" if status in DONE else "failed"),
                value_text(t.get("objects", "—")),
                _moment(t.get("verified_at") or t.get("at")),
            ]
        )
    b.table(["What", "Where", "Method", "Status", "Objects", "When"], rows, "No target recorded.")


def _kept_table(b: DocumentBuilder, kept: Sequence[Any]) -> None:
    rows: list[list[Inline]] = []
    for record in kept:
        k: Mapping[str, Any] = record if isinstance(record, Mapping) else {}
        where = str(k.get("where") or "")
        basis = str(k.get("basis") or "")
        if not basis:
            basis = "—" if k.get("kind") == "evidence" else "none given"
        rows.append(
            [
                str(k.get("what") or "—"),
                code(where) if where else "not stated",
                str(k.get("reason") or "—"),
                basis,
            ]
        )
    b.table(["What", "Where", "Reason", "Legal basis"], rows, "Nothing kept.")


def _recorded_waits(summary: dict[str, Any]) -> dict[str, str] | None:
    """How the calendar's waits ended, taken out of the summary; None when not recorded.

    A value of another form stays among the bundle's fields, shown as it is.
    """
    value = summary.get("waits")
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        return None
    del summary["waits"]
    return dict(value)


def _recorded_calendar(summary: dict[str, Any]) -> ExitDeadlines | None:
    """The calendar under the summary's `deadlines` key, taken out of it; None if none valid."""
    value = summary.get("deadlines")
    if isinstance(value, ExitDeadlines):
        del summary["deadlines"]
        return value
    if not isinstance(value, Mapping):
        return None
    try:
        dates = ExitDeadlines.model_validate(dict(value))
    except ValidationError:
        return None  # a calendar of another form: shown as it is, among the bundle's fields
    del summary["deadlines"]
    return dates


def _calendar_and_transfer(
    b: DocumentBuilder,
    playbook: Playbook,
    dates: ExitDeadlines | None,
    acceptance: Mapping[str, Any] | None,
    checklists: Sequence[Checklist],
    waits: Mapping[str, str] | None,
    past: Sequence[str],
) -> None:
    """The recorded exit calendar and how its waits ended, then the knowledge-transfer items
    as the checklist has them."""
    if dates is None:
        b.h(2, "Exit calendar (calendrier de sortie)")
        b.p("No exit calendar recorded: the exit notice was not recorded.", "warning")
        if waits:  # without dates nothing is measured: the records as they are
            b.fields([(f"Wait for {key}", ended) for key, ended in waits.items()])
    else:
        early = bool(acceptance and acceptance.get("early_erasure") is True)
        calendar_section(b, dates, early_erasure=early, waits=waits, past=past)
    exit_items = _reversibility_items(checklists)
    if exit_items is not None:
        recorded_transfer_section(b, exit_items)
    else:
        switch_over = dates.switch_over if dates else None
        planned_transfer_section(b, phase_items(playbook, "reversibility"), switch_over)


def _reversibility_items(checklists: Sequence[Checklist]) -> list[ChecklistItem] | None:
    for checklist in checklists:
        if checklist.phase is Phase.REVERSIBILITY:
            return list(checklist.items)
    return None
