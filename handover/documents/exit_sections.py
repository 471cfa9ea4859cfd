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
from handover.contract.checklists import item_title
from handover.contract.deadlines import ExitDeadlines
from handover.documents.blocks import Inline, Span, badge, code
from handover.documents.builder import DocumentBuilder
from handover.i18n import Texts
from handover.i18n.words import evidence_kind_text, owner_text, status_text

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
    t = b.t
    b.h(level, t._("Exit calendar"))
    months = _months_between(dates.notice_date, dates.switching_starts)
    transition = (dates.switch_over - dates.switching_starts).days
    retrieval = (dates.erasure_earliest - dates.switch_over).days
    erasure = (dates.erasure_by - dates.erasure_earliest).days
    b.table(
        [t._("Step"), t._("Delay"), t._("Date (example)") if example else t._("Date")],
        [
            [t._("Exit notice received"), "—", t.date(dates.notice_date)],
            [
                t._("End of notice, transition starts"),
                t.n_("{n} month", "{n} months", months),
                t.date(dates.switching_starts),
            ],
            [
                t._("Switch-over: end of transition, final export and delivery"),
                _days(t, transition),
                t.date(dates.switch_over),
            ],
            [
                t._("End of retrieval period: erasure from"),
                _days(t, retrieval),
                t.date(dates.erasure_earliest),
            ],
            [
                t._("Provider copies erased, certificate issued, at the latest"),
                _days(t, erasure),
                t.date(dates.erasure_by),
            ],
        ],
    )
    window: Inline = t._(
        "from {start} to {end}; earlier only if the client's signed acceptance asks for "
        "early erasure",
        start=t.date(dates.erasure_earliest),
        end=t.date(dates.erasure_by),
    )
    if early_erasure:
        window = [
            badge(t._("early erasure requested"), "done"),
            " "
            + t._(
                "by the client's signed acceptance: from acceptance to {end}",
                end=t.date(dates.erasure_by),
            ),
        ]
    rule: Inline = t._("on the switch-over, {day}, not before", day=t.date(dates.switch_over))
    b.fields(
        [
            (t._("Transition's legal basis"), basis_text(t, dates.transition_basis)),
            (t._("Final export"), rule if waits is None else None),
            (t._("Erasure window"), window),
        ]
    )
    if waits is not None:
        b.p(t._("How the waits ended, as the exit recorded them:"))
        b.fields(
            [
                (
                    t._("Final export"),
                    switch_over_outcome(t, dates, _ended(waits, past, SWITCH_OVER)),
                ),
                (t._("Erasure"), erasure_outcome(t, dates, _ended(waits, past, ERASURE))),
            ]
        )
    if example:
        b.p(
            t._(
                "No exit notice yet: dates are an example for a notice given on {day}. The "
                "exit flow recomputes them from the actual notice.",
                day=t.date(dates.notice_date),
            ),
            "note",
        )


def _days(t: Texts, count: int) -> str:
    return t.n_("{n} day", "{n} days", count)


_BASIS_25_2 = re.compile(
    r"Data Act art\. 25\(2\): transitional period of (\d+) days \(30 days at most\)"
)
_BASIS_25_4 = re.compile(
    r"Data Act art\. 25\(4\): alternative transitional period of (\d+) days \(at most "
    r"7 months\), the 30 days being technically unfeasible, notified to the client within 14 "
    r"working days of the switching request: (.*)",
    re.DOTALL,
)
_BASIS_CONTRACT = re.compile(
    r"Contractual reversibility phase with overlap \(tuilage\), (.*?): (\d+) days \(at most "
    r"180 days, handover's bound\): (.*)",
    re.DOTALL,
)
_BASIS_LEGACY = "not recorded (calendar recorded before its legal basis was kept)"


def basis_text(t: Texts, recorded: str) -> str:
    """The transition's legal basis, recorded in English words by the calendar, in `t`'s
    language; a wording not known here is shown as recorded."""
    if recorded == _BASIS_LEGACY:
        return t._("not recorded (calendar recorded before its legal basis was kept)")
    if match := _BASIS_25_2.fullmatch(recorded):
        return t._(
            "Data Act art. 25(2): transitional period of {days} (30 days at most)",
            days=_days(t, int(match.group(1))),
        )
    if match := _BASIS_25_4.fullmatch(recorded):
        return t._(
            "Data Act art. 25(4): alternative transitional period of {days} (at most 7 "
            "months), the 30 days being technically unfeasible, notified to the client within "
            "14 working days of the switching request: {why}",
            days=_days(t, int(match.group(1))),
            why=match.group(2),
        )
    if match := _BASIS_CONTRACT.fullmatch(recorded):
        return t._(
            "Contractual reversibility phase with overlap (tuilage), {clause}: {days} (at most 180 "
            "days, handover's bound): {why}",
            clause=match.group(1),
            days=_days(t, int(match.group(2))),
            why=match.group(3),
        )
    return recorded


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


def _unrecorded(t: Texts, step: str) -> Inline:
    return [
        badge(t._("not recorded"), "unknown"),
        ": " + t._("{step} is recorded, but not how its wait ended", step=step),
    ]


def _day(text: str) -> date | None:
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def _reached(t: Texts, ended: str, due: date, what: str) -> list[str | Span] | None:
    """`…: YYYY-MM-DD reached`: on time only when that day is `due` or later; None if not
    that wording."""
    match = _REACHED.search(ended)
    day = _day(match.group(1)) if match else None
    if day is None:
        return None
    if day >= due:
        return [
            badge(t._("waited"), "done"),
            " " + t._("for {what}: {day} reached", what=what, day=t.date(day)),
        ]
    return [
        badge(t._("before its date"), "failed"),
        " "
        + t._(
            "recorded as reached on {day}, before {what} on {due}",
            day=t.date(day),
            what=what,
            due=t.date(due),
        ),
    ]


def _as_recorded(t: Texts, ended: str) -> Inline:
    """A wording this module does not read: shown as it is, claiming nothing."""
    return [badge(t._("as recorded"), "unknown"), f" {ended}"]


def switch_over_outcome(t: Texts, dates: ExitDeadlines, ended: str | None) -> Inline:
    """How the final export's wait for the switch-over ended, from its record (None: not yet)."""
    if ended is None:
        return [
            badge(t._("still to come"), "pending"),
            ": "
            + t._(
                "the final export waits for the switch-over, {day}",
                day=t.date(dates.switch_over),
            ),
        ]
    if ended == _UNRECORDED:
        return _unrecorded(t, t._("the delivery"))
    reached = _reached(t, ended, dates.switch_over, t._("the switch-over"))
    if reached is not None:
        return reached
    early = _EARLY.search(ended)
    if early is not None:
        day = _day(early.group(1))
        return [
            badge(t._("brought forward"), "warning"),
            " "
            + t._(
                "on {day}, before the switch-over of {due}; reason recorded: {reason}",
                day=t.date(day) if day else early.group(1),
                due=t.date(dates.switch_over),
                reason=early.group(2).strip(),
            ),
        ]
    return _as_recorded(t, ended)


def erasure_outcome(t: Texts, dates: ExitDeadlines, ended: str | None) -> Inline:
    """How the erasure's wait for the end of the retrieval period ended (None: not yet)."""
    if ended is None:
        return [
            badge(t._("still to come"), "pending"),
            ": "
            + t._(
                "the erasure waits for the end of the retrieval period, {start} (earlier "
                "only at the client's signed request), and is due by {end}",
                start=t.date(dates.erasure_earliest),
                end=t.date(dates.erasure_by),
            ),
        ]
    if ended == _UNRECORDED:
        return _unrecorded(t, t._("the erasure"))
    reached = _reached(t, ended, dates.erasure_earliest, t._("the end of the retrieval period"))
    if reached is not None:
        return reached
    asked = _CLIENT_EARLY.search(ended)
    if asked is not None:
        return [
            badge(t._("brought forward"), "warning"),
            " "
            + t._(
                "at the client's request, before the end of the retrieval period ({start}): "
                "{recorded}",
                start=t.date(dates.erasure_earliest),
                recorded=ended,
            ),
        ]
    return _as_recorded(t, ended)


def _transfer_table(b: DocumentBuilder, rows: list[list[Inline]], headers: list[str]) -> None:
    b.table(headers, rows, b.t._("No knowledge-transfer item in the reversibility checklist."))


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
    t = b.t
    b.h(level, t._("Knowledge transfer"))
    if switch_over is None:
        before = t._("before the switch-over")
    elif example:
        before = t._("before the switch-over on {day} (example)", day=t.date(switch_over))
    else:
        before = t._("before the switch-over on {day}", day=t.date(switch_over))
    b.p(
        t._(
            "During the transition, {before}, the provider hands its knowledge of the "
            "estate over to the client or the incoming provider:",
            before=before,
        )
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
                t._("{title} (waived: {reason})", title=title, reason=waived) if waived else title,
                owner_text(t, str(item.get("owner", ""))),
                evidence_kind_text(t, str(item.get("evidence_kind", ""))),
                str(item.get("clause") or "—"),
            ]
        )
    _transfer_table(
        b, rows, [t._("Item"), t._("What"), t._("Owner"), t._("Evidence"), t._("Clause")]
    )


def recorded_transfer_section(
    b: DocumentBuilder, items: Sequence[ChecklistItem], *, level: int = 2
) -> None:
    """The knowledge-transfer items of the exit's checklist, with their status and evidence."""
    t = b.t
    b.h(level, t._("Knowledge transfer"))
    recorded = [i for i in items if is_knowledge_transfer(i.id)]
    if recorded:
        done = sum(1 for i in recorded if i.status in (Status.DONE, Status.WAIVED))
        b.p(
            t.n_(
                "{done} of {n} item done or waived.",
                "{done} of {n} items done or waived.",
                len(recorded),
                done=done,
            )
        )
    _transfer_table(
        b,
        [
            [
                code(i.id),
                item_title("reversibility", i.id, i.title, t.language),
                badge(status_text(t, i.status.value), i.status.value),
                ", ".join(e.short() for e in i.evidence) or "—",
                i.reason or "—",
            ]
            for i in recorded
        ],
        [t._("Item"), t._("What"), t._("Status"), t._("Evidence"), t._("Reason")],
    )
