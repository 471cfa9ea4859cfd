"""Words the SLA report's modules share: a target not set, and what times are counted on.

`handover.operations` states them in English for logs and records (`NOT_SET`,
the business calendar's description); the report reads those known
wordings back and writes them in its language, anything else as it is.
"""

from __future__ import annotations

import re

from handover.i18n import Texts


def not_set(t: Texts) -> str:
    """`not set in the contract` (handover.operations.sla.NOT_SET) in the reader's language."""
    return t._("not set in the contract")


_AROUND_THE_CLOCK = "around the clock (24/7)"
_HOTLINE_HOURS = re.compile(r"hotline hours (.*) \(([^()]*)\)(?:, (.*) public holidays excluded)?")
_BUSINESS_HOURS = re.compile(r"business hours \((.*)\)")


def calendar_text(t: Texts, described: str) -> str:
    """What times are counted on (`handover.operations.business_calendar`'s description),
    in the reader's language; a wording not known here is shown as it is."""
    if described == _AROUND_THE_CLOCK:
        return t._("around the clock (24/7)")
    if described == "wall-clock hours":
        return t._("wall-clock hours")
    if match := _BUSINESS_HOURS.fullmatch(described):
        return t._("business hours ({calendar})", calendar=calendar_text(t, match.group(1)))
    if match := _HOTLINE_HOURS.fullmatch(described):
        hours, zone, holidays = match.groups()
        if holidays:
            return t._(
                "hotline hours {hours} ({zone}), {holidays} public holidays excluded",
                hours=hours,
                zone=zone,
                holidays=holidays,
            )
        return t._("hotline hours {hours} ({zone})", hours=hours, zone=zone)
    return described
