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
from handover.documents.formatting import value_text
from handover.documents.sections import (
    checklist_sections,
    dict_fields,
    dict_table,
    header_fields,
)
from handover.exit.erasure import DONE
from handover.i18n import Texts
from handover.i18n.words import erasure_status_text
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
    b = DocumentBuilder(Texts.for_contract(playbook.contract))
    t = b.t
    header_fields(b, playbook, generated_at)
    past = ([SWITCH_OVER] if deliveries else []) + ([ERASURE] if erasure else [])
    _calendar_and_transfer(b, playbook, dates, acceptance, checklists, waits, past)
    open_points = _bundle_section(b, summary)
    open_points += _deliveries_section(b, deliveries)
    _replaced_section(b, replaced)
    open_points += _acceptance_section(b, acceptance)
    open_points += _revocations_section(b, playbook, revocations)
    open_points += _erasure_section(b, erasure, acceptance, dates, today)
    b.h(2, t._("Checklists"))
    open_points += checklist_sections(b, checklists, level=3)
    if not checklists:
        b.p(t._("No checklist given."), "warning")
    b.h(2, t._("Open points"))
    b.bullets(open_points, empty=t._("None: the exit is complete."))
    # the verdict goes first: right after the header fields
    verdict_at = 1 if b.blocks and isinstance(b.blocks[0], Fields) else 0
    b.blocks.insert(verdict_at, _verdict(t, open_points))
    title = t._("Exit report: {title}", title=playbook.contract.title)
    return b.document("exit-report", title)


def _verdict(t: Texts, open_points: Sequence[Inline]) -> Para:
    if not open_points:
        return Para(
            [badge(t._("complete"), "done"), " " + t._("Every exit step is done and recorded.")]
        )
    return Para(
        [
            badge(t._("incomplete"), "failed"),
            " "
            + t.n_(
                "{n} open point (see the end of this report).",
                "{n} open points (see the end of this report).",
                len(open_points),
            ),
        ],
        "warning",
    )


def _bundle_section(b: DocumentBuilder, bundle_summary: Mapping[str, Any]) -> list[Inline]:
    t = b.t
    b.h(2, t._("Restitution bundle"))
    open_points: list[Inline] = []
    summary = dict(bundle_summary)
    volumes = summary.pop("volumes", None)
    if summary:
        dict_fields(b, summary)
    else:
        open_points.append(t._("No restitution bundle recorded."))
        b.p(t._("No bundle recorded."), "warning")
    if isinstance(volumes, list) and volumes:
        b.h(3, t._("Volumes"))
        dict_table(b, volumes)
    return open_points


def _deliveries_section(
    b: DocumentBuilder, deliveries: Sequence[Mapping[str, Any]]
) -> list[Inline]:
    t = b.t
    b.h(2, t._("Deliveries"))
    if deliveries:
        dict_table(b, list(deliveries))
        return []
    b.p(t._("No delivery recorded."), "warning")
    return [t._("The bundle was not delivered.")]


def _replaced_section(b: DocumentBuilder, replaced: Sequence[Mapping[str, Any]]) -> None:
    """Each delivery accepted with reservations, why, and what was corrected before the next."""
    if not replaced:
        return
    b.h(2, b.t._("Deliveries replaced after reservations"))
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
    t = b.t
    b.h(2, t._("Client verification and acceptance"))
    if not acceptance:
        b.p(t._("The client's acceptance has not been received."), "warning")
        return [t._("Client acceptance not received.")]
    dict_fields(b, acceptance)
    if acceptance.get("accepted") is False:
        return [t._("The client did not accept the bundle.")]
    return []


def _revocations_section(
    b: DocumentBuilder, playbook: Playbook, revocations: Sequence[Mapping[str, Any]]
) -> list[Inline]:
    """Each revocation recorded (a failed one is an open point), or why there is none."""
    t = b.t
    b.h(2, t._("Provider access revoked"))
    if revocations:
        dict_table(b, list(revocations))
        return [
            t._("Access revocation failed: {host}", host=value_text(r.get("host", "?"), "", t))
            for r in revocations
            if r.get("ok") is False or r.get("status") in ("failed", "error")
        ]
    if playbook.security.provider_access:
        b.p(t._("No revocation recorded."), "warning")
        return [t._("Provider access not revoked.")]
    b.p(t._("The playbook records no provider access to revoke."))
    return []


def _erasure_section(
    b: DocumentBuilder,
    erasure: Mapping[str, Any] | None,
    acceptance: Mapping[str, Any] | None,
    dates: ExitDeadlines | None,
    today: date | None,
) -> list[Inline]:
    """The erasure as its record has it: result, targets, what is kept, then the certificate."""
    t = b.t
    b.h(2, t._("Erasure of provider copies"))
    if not erasure:
        return _erasure_pending(b, acceptance, dates, today)
    record = dict(erasure)
    targets = record.pop("records", None)
    kept = record.pop("kept", None)
    remaining = _remaining(record.pop("remaining", None), targets)
    complete = record.pop("complete", None)
    open_points: list[Inline] = []
    if complete is False or remaining:
        where = ", ".join(remaining) or t._("locations not recorded")
        held = (
            t.n_(
                "in {n} location: {where}", "in {n} locations: {where}", len(remaining), where=where
            )
            if remaining
            else t._("in locations the record does not name")
        )
        b.p(
            [
                badge(t._("incomplete"), "failed"),
                " "
                + t._(
                    "The erasure is incomplete: data meant to be erased remains, or may "
                    "remain, {held}.",
                    held=held,
                ),
            ],
            "warning",
        )
        open_points.append(t._("Erasure incomplete: {where}", where=where))
    elif complete is True:
        b.p(
            [
                badge(t._("complete"), "done"),
                " " + t._("Every target was erased or found absent, and checked."),
            ]
        )
    if isinstance(targets, list):
        b.h(3, t._("Erasure targets"))
        _targets_table(b, targets)
    if isinstance(kept, list):
        b.h(3, t._("Kept (not erased), and why"))
        _kept_table(b, kept)
    if record:
        b.h(3, t._("Erasure certificate"))
        dict_fields(b, record)
    return open_points


def _erasure_pending(
    b: DocumentBuilder,
    acceptance: Mapping[str, Any] | None,
    dates: ExitDeadlines | None,
    today: date | None,
) -> list[Inline]:
    """No erasure yet: when it is due (it follows the client's acceptance), or overdue."""
    t = b.t
    if acceptance and acceptance.get("accepted") is not False and dates is not None:
        if acceptance.get("early_erasure") is True:
            due = t._("now: the client's signed acceptance asks for early erasure")
        else:
            due = t._(
                "from {day}, the end of the retrieval period", day=t.date(dates.erasure_earliest)
            )
        b.p(
            t._(
                "Provider copies have not been erased yet; the signed erasure certificate is "
                "pending. The erasure is due {due}, and by {end} at the latest.",
                due=due,
                end=t.date(dates.erasure_by),
            ),
            "warning",
        )
    else:
        b.p(
            t._("Provider copies not erased yet; the signed erasure certificate is pending."),
            "warning",
        )
    if dates is not None and today is not None and dates.erasure_overdue(today):
        return [
            t._("Erasure of provider copies overdue: due by {end}.", end=t.date(dates.erasure_by))
        ]
    return [t._("Erasure of provider copies pending.")]


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


def _moment(t: Texts, value: object) -> str:
    """A recorded time (ISO 8601 text once dumped as JSON), as the documents write it."""
    if isinstance(value, str):
        try:
            return t.datetime(datetime.fromisoformat(value))
        except ValueError:
            return value
    return value_text(value, "", t)


def _targets_table(b: DocumentBuilder, targets: Sequence[Any]) -> None:
    t = b.t
    rows: list[list[Inline]] = []
    for target in targets:
        r: Mapping[str, Any] = target if isinstance(target, Mapping) else {}
        status = str(r.get("status", "?"))
        rows.append(
            [
                str(r.get("description") or r.get("kind") or "—"),
                code(r.get("location", "?")),
                str(r.get("method") or "—"),
                badge(erasure_status_text(t, status), "done" if status in DONE else "failed"),
                value_text(r.get("objects", "—"), "", t),
                _moment(t, r.get("verified_at") or r.get("at")),
            ]
        )
    b.table(
        [t._("What"), t._("Where"), t._("Method"), t._("Status"), t._("Objects"), t._("When")],
        rows,
        t._("No target recorded."),
    )


def _kept_table(b: DocumentBuilder, kept: Sequence[Any]) -> None:
    t = b.t
    rows: list[list[Inline]] = []
    for record in kept:
        k: Mapping[str, Any] = record if isinstance(record, Mapping) else {}
        where = str(k.get("where") or "")
        basis = str(k.get("basis") or "")
        if not basis:
            basis = "—" if k.get("kind") == "evidence" else t._("none given")
        rows.append(
            [
                str(k.get("what") or "—"),
                code(where) if where else t._("not stated"),
                str(k.get("reason") or "—"),
                basis,
            ]
        )
    b.table(
        [t._("What"), t._("Where"), t._("Reason"), t._("Legal basis")], rows, t._("Nothing kept.")
    )


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
    t = b.t
    if dates is None:
        b.h(2, t._("Exit calendar"))
        b.p(t._("No exit calendar recorded: the exit notice was not recorded."), "warning")
        if waits:  # without dates nothing is measured: the records as they are
            b.fields([(t._("Wait for {key}", key=key), ended) for key, ended in waits.items()])
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
