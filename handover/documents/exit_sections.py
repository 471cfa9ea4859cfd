"""Sections the reversibility plan and the exit report share: the exit calendar and the
knowledge transfer (transfert de compétences).

The plan promises them at takeover and the report shows them as recorded;
writing each once keeps the two documents saying the same thing. The
calendar is drawn from `ExitDeadlines` alone (delays included), so the
report shows the calendar the exit recorded even if the playbook changed
since. Knowledge-transfer items are the checklist items whose id starts
with `knowledge-transfer`: read from the template (with the playbook's
overrides) or from the stored checklist, never listed here.

The plan states the calendar's rules (final export on the switch-over, not
before); the report states instead how each wait ended, as the flow
recorded it (`ExitState.waits`, worded by `flows/waits.py`): a date
reached, an operator going on early with a reason, or the client asking for
early erasure. A wait not recorded is still to come, and a wording this
module does not know is shown as recorded, never read as "on time".
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from datetime import date
from typing import Any

from handover.checklist.model import ChecklistItem, Status
from handover.contract.deadlines import ExitDeadlines
from handover.documents.blocks import Inline, Span, badge, code
from handover.documents.builder import DocumentBuilder
from handover.documents.formatting import count_text, date_text

KNOWLEDGE_TRANSFER = "knowledge-transfer"
"""Id (or id prefix, before a '-') of the knowledge-transfer items of the reversibility phase."""


def is_knowledge_transfer(item_id: str) -> bool:
    """Whether a reversibility item is part of the knowledge transfer, by its id."""
    return item_id == KNOWLEDGE_TRANSFER or item_id.startswith(KNOWLEDGE_TRANSFER + "-")


def _months_between(start: date, end: date) -> int:
    """Whole months from `start` to `end` as the calendar counts them (month ends clamped)."""
    return (end.year - start.year) * 12 + end.month - start.month


def calendar_section(
    b: DocumentBuilder,
    dates: ExitDeadlines,
    *,
    level: int = 2,
    example: bool = False,
    early_erasure: bool = False,
    waits: Mapping[str, str] | None = None,
    past: Collection[str] = (),
) -> None:
    """The exit calendar: each step with its delay and date, the transition's legal basis,
    and the erasure window (earlier only when the client's signed acceptance asks for it).

    `waits` is how the exit's waits ended, by wait (`switch-over`, `erasure`):
    given (even empty), the final export and the erasure say what happened
    instead of the rule; None (the plan) states the rule. `past` names the
    waits whose step is recorded as done (delivery, erasure): one of them
    without its record is said to be unrecorded, not still to come (an exit
    recorded before the waits were kept).
    """
    b.h(level, "Exit calendar (calendrier de sortie)")
    months = _months_between(dates.notice_date, dates.switching_starts)
    transition = (dates.switch_over - dates.switching_starts).days
    retrieval = (dates.erasure_earliest - dates.switch_over).days
    erasure = (dates.erasure_by - dates.erasure_earliest).days
    b.table(
        ["Step", "Delay", "Date" + (" (example)" if example else "")],
        [
            ["Exit notice received", "—", date_text(dates.notice_date)],
            [
                "End of notice, transition starts",
                count_text(months, "month"),
                date_text(dates.switching_starts),
            ],
            [
                "Switch-over: end of transition, final export and delivery",
                count_text(transition, "day"),
                date_text(dates.switch_over),
            ],
            [
                "End of retrieval period: erasure from",
                count_text(retrieval, "day"),
                date_text(dates.erasure_earliest),
            ],
            [
                "Provider copies erased, certificate issued, at the latest",
                count_text(erasure, "day"),
                date_text(dates.erasure_by),
            ],
        ],
    )
    window: Inline = (
        f"from {date_text(dates.erasure_earliest)} to {date_text(dates.erasure_by)}; earlier "
        "only if the client's signed acceptance asks for early erasure"
    )
    if early_erasure:
        window = [
            badge("early erasure requested", "done"),
            f" by the client's signed acceptance: from acceptance to {date_text(dates.erasure_by)}",
        ]
    rule: Inline = f"on the switch-over, {date_text(dates.switch_over)}, not before"
    b.fields(
        [
            ("Transition's legal basis", dates.transition_basis),
            ("Final export", rule if waits is None else None),
            ("Erasure window", window),
        ]
    )
    if waits is not None:
        b.p("How the waits ended, as the exit recorded them:")
        b.fields(
            [
                ("Final export", switch_over_outcome(dates, _ended(waits, past, SWITCH_OVER))),
                ("Erasure", erasure_outcome(dates, _ended(waits, past, ERASURE))),
            ]
        )
    if example:
        b.p(
            f"No exit notice yet: dates are an example for a notice given on "
            f"{date_text(dates.notice_date)}. The exit flow recomputes them from the actual "
            "notice.",
            "note",
        )


SWITCH_OVER = "switch-over"
ERASURE = "erasure"
"""The keys of the exit's waits (`ExitState.waits`): the final export's, the erasure's."""

_REACHED = re.compile(r": (\d{4}-\d{2}-\d{2}) reached$")
_EARLY = re.compile(r": continued early on (\d{4}-\d{2}-\d{2}): (.*)$", re.DOTALL)
_CLIENT_EARLY = re.compile(r"^early erasure asked by (.*)$", re.DOTALL)


_UNRECORDED = ""
"""How a wait ended when its step is done but the wait has no record."""


def _ended(waits: Mapping[str, str], past: Collection[str], key: str) -> str | None:
    """The record of wait `key`; None when it has not ended; `_UNRECORDED` when it must have."""
    ended = waits.get(key)
    if ended is None and key in past:
        return _UNRECORDED
    return ended


def _unrecorded(step: str) -> Inline:
    return [badge("not recorded", "unknown"), f": {step} is recorded, but not how its wait ended"]


def _day(text: str) -> date | None:
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def _reached(ended: str, due: date, what: str) -> list[str | Span] | None:
    """`…: YYYY-MM-DD reached`: on time only when that day is `due` or later; None if not
    that wording."""
    match = _REACHED.search(ended)
    day = _day(match.group(1)) if match else None
    if day is None:
        return None
    if day >= due:
        return [badge("waited", "done"), f" for {what}: {date_text(day)} reached"]
    return [
        badge("before its date", "failed"),
        f" recorded as reached on {date_text(day)}, before {what} on {date_text(due)}",
    ]


def _as_recorded(ended: str) -> Inline:
    """A wording this module does not read: shown as it is, claiming nothing."""
    return [badge("as recorded", "unknown"), f" {ended}"]


def switch_over_outcome(dates: ExitDeadlines, ended: str | None) -> Inline:
    """How the final export's wait for the switch-over ended, from its record (None: not yet)."""
    if ended is None:
        return [
            badge("still to come", "pending"),
            f": the final export waits for the switch-over, {date_text(dates.switch_over)}",
        ]
    if ended == _UNRECORDED:
        return _unrecorded("the delivery")
    reached = _reached(ended, dates.switch_over, "the switch-over")
    if reached is not None:
        return reached
    early = _EARLY.search(ended)
    if early is not None:
        return [
            badge("brought forward", "warning"),
            f" on {early.group(1)}, before the switch-over of {date_text(dates.switch_over)}; "
            f"reason recorded: {early.group(2).strip()}",
        ]
    return _as_recorded(ended)


def erasure_outcome(dates: ExitDeadlines, ended: str | None) -> Inline:
    """How the erasure's wait for the end of the retrieval period ended (None: not yet)."""
    if ended is None:
        return [
            badge("still to come", "pending"),
            f": the erasure waits for the end of the retrieval period, "
            f"{date_text(dates.erasure_earliest)} (earlier only at the client's signed request), "
            f"and is due by {date_text(dates.erasure_by)}",
        ]
    if ended == _UNRECORDED:
        return _unrecorded("the erasure")
    reached = _reached(ended, dates.erasure_earliest, "the end of the retrieval period")
    if reached is not None:
        return reached
    asked = _CLIENT_EARLY.search(ended)
    if asked is not None:
        return [
            badge("brought forward", "warning"),
            f" at the client's request, before the end of the retrieval period "
            f"({date_text(dates.erasure_earliest)}): {ended}",
        ]
    return _as_recorded(ended)


def _transfer_table(b: DocumentBuilder, rows: list[list[Inline]], headers: list[str]) -> None:
    b.table(headers, rows, "No knowledge-transfer item in the reversibility checklist.")


def planned_transfer_section(
    b: DocumentBuilder,
    items: Sequence[Mapping[str, Any]],
    switch_over: date | None,
    *,
    level: int = 2,
    example: bool = False,
) -> None:
    """The knowledge-transfer items of the phase's checklist (template plus overrides),
    to be done during the transition, before the switch-over (`switch_over`, when known)."""
    b.h(level, "Knowledge transfer (transfert de compétences)")
    when = ""
    if switch_over is not None:
        when = f" on {date_text(switch_over)}" + (" (example)" if example else "")
    b.p(
        f"During the transition, before the switch-over{when}, the provider hands its "
        "knowledge of the estate over to the client or the incoming provider:"
    )
    rows: list[list[Inline]] = []
    for item in items:
        if not is_knowledge_transfer(str(item.get("id", ""))):
            continue
        waived = item.get("waived_reason")
        title = str(item.get("title", ""))
        rows.append(
            [
                code(item["id"]),
                f"{title} (waived: {waived})" if waived else title,
                str(item.get("owner", "")),
                str(item.get("evidence_kind", "")),
                str(item.get("clause") or "—"),
            ]
        )
    _transfer_table(b, rows, ["Item", "What", "Owner", "Evidence", "Clause"])


def recorded_transfer_section(
    b: DocumentBuilder, items: Sequence[ChecklistItem], *, level: int = 2
) -> None:
    """The knowledge-transfer items of the exit's checklist, with their status and evidence."""
    b.h(level, "Knowledge transfer (transfert de compétences)")
    recorded = [i for i in items if is_knowledge_transfer(i.id)]
    if recorded:
        done = sum(1 for i in recorded if i.status in (Status.DONE, Status.WAIVED))
        b.p(f"{done} of {count_text(len(recorded), 'item')} done or waived.")
    _transfer_table(
        b,
        [
            [
                code(i.id),
                i.title,
                badge(i.status.value, i.status.value),
                ", ".join(e.short() for e in i.evidence) or "—",
                i.reason or "—",
            ]
            for i in recorded
        ],
        ["Item", "What", "Status", "Evidence", "Reason"],
    )
