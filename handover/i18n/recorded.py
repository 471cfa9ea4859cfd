"""Findings the core words in English for logs and records, read back in a document's language.

`handover.operations.availability` says why a service was not measured
(`12 of 8640 expected samples (under 90%)`) and `handover.estate.eol` words
each end-of-life finding (`os: Debian GNU/Linux 9: end of life since
2022-06-30`). Those strings are stored as they are (in the inventory, in
the operational evidence), so what was recorded never changes; a document
recognises the known wordings and writes them in its language, with its
dates. A wording not known here is shown as recorded, and a test renders
each known one in French so a changed wording in the core is noticed.
"""

from __future__ import annotations

import re
from datetime import date

from handover.i18n import Texts

_NO_OPEN_TIME = "the period holds no time outside the maintenance window"
_COVERAGE = re.compile(r"(\d+) of (\d+) expected samples \(under (\d+)%\)")
_GAP = re.compile(r"no sample for (.+) \(over (.+)\)")
_DURATION = re.compile(r"(?:(\d+) d )?(?:(\d+) h )?(\d+) min")
_CHECK = re.compile(r"([^:]+): (.+)")


def duration_text(t: Texts, recorded: str) -> str:
    """`2 d 3 h 05 min` (availability's wording) in the reader's units, to the minute."""
    match = _DURATION.fullmatch(recorded)
    if match is None:
        return recorded
    days, hours, minutes = (int(g) if g else 0 for g in match.groups())
    if days:
        text = t._("{days} d {hours} h", days=days, hours=hours)
        return f"{text} {t._('{minutes} min', minutes=minutes)}" if minutes else text
    return t.minutes(hours * 60 + minutes)


def _measure_reason(t: Texts, recorded: str) -> str | None:
    if recorded == _NO_OPEN_TIME:
        return t._("the period holds no time outside the maintenance window")
    if recorded == "no sample":
        return t._("no sample")
    if match := _COVERAGE.fullmatch(recorded):
        counted, expected, share = (int(g) for g in match.groups())
        return t._(
            "{counted} of {expected} expected samples (under {share})",
            counted=counted,
            expected=expected,
            share=t.percent(share, 0),
        )
    if match := _GAP.fullmatch(recorded):
        return t._(
            "no sample for {gap} (over {limit})",
            gap=duration_text(t, match.group(1)),
            limit=duration_text(t, match.group(2)),
        )
    return None


def unmeasured_reason_text(t: Texts, recorded: str | None) -> str:
    """Why a service was not measured, in the reader's language (`check: reason` too)."""
    if not recorded:
        return t._("no sample")
    known = _measure_reason(t, recorded)
    if known is not None:
        return known
    if match := _CHECK.fullmatch(recorded):
        inner = _measure_reason(t, match.group(2))
        if inner is not None:
            return f"{match.group(1)}: {inner}"
    return recorded


_OS_SINCE = re.compile(r"os: (.+): end of life since (\d{4}-\d{2}-\d{2})")
_OS_OLDER = re.compile(r"os: (.+): end of life \(older than (.+)\)")
_PACKAGE = re.compile(
    r"package: (.+?) \(end of life(?: (\d{4}-\d{2}-\d{2}))?\): (.+?)(?: \(\+(\d+) more\))?"
)


def eol_flag_text(t: Texts, recorded: str) -> str:
    """An end-of-life finding of the inventory (`handover.estate.eol`) in the reader's language."""
    if match := _OS_SINCE.fullmatch(recorded):
        since = t.date(date.fromisoformat(match.group(2)))
        return t._(
            "operating system {name}: end of life since {date}", name=match.group(1), date=since
        )
    if match := _OS_OLDER.fullmatch(recorded):
        return t._(
            "operating system {name}: end of life (older than {release})",
            name=match.group(1),
            release=match.group(2),
        )
    if match := _PACKAGE.fullmatch(recorded):
        product, end, names, more = match.groups()
        if end:
            text = t._(
                "packages of {product} (end of life {date}): {names}",
                product=product,
                date=t.date(date.fromisoformat(end)),
                names=names,
            )
        else:
            text = t._("packages of {product} (end of life): {names}", product=product, names=names)
        if more:
            text += " " + t.n_("(+{n} more)", "(+{n} more)", int(more))
        return text
    return recorded
