"""The four phases of a managed-services contract: the one list every layer uses."""

from __future__ import annotations

import re
from enum import StrEnum

from handover.errors import UsageError


class Phase(StrEnum):
    """The phases of a contract, in lifecycle order (prise en charge to réversibilité)."""

    TAKEOVER = "takeover"
    IMPLEMENTATION = "implementation"
    OPERATIONAL = "operational"
    REVERSIBILITY = "reversibility"


PHASES: tuple[Phase, ...] = tuple(Phase)


def parse_phase(name: str) -> Phase:
    """The phase called `name`; UsageError listing the phases otherwise."""
    try:
        return Phase(name)
    except ValueError:
        raise UsageError(f"unknown phase {name!r}: must be one of {', '.join(PHASES)}") from None


#: A period of a phase run per period (the operational run): `2026-11` or `2026-q4`.
PERIOD_PATTERN = re.compile(r"^(\d{4})-(?:(0[1-9]|1[0-2])|q([1-4]))$")


def checklist_name(phase: Phase | str, period: str | None = None) -> str:
    """`<phase>`, or `<phase>-<period>` for a phase kept as one checklist per period."""
    return f"{Phase(phase).value}-{period}" if period else Phase(phase).value


def parse_checklist_name(name: str) -> tuple[Phase, str | None]:
    """The phase and period of a checklist name (`operational`, `operational-2026-11`, ...).

    Only the operational run is kept per period (a month, or a quarter for
    the drill and quarterly reports); UsageError names the accepted forms.
    """
    phase_name, _, period = str(name).partition("-")
    phase = parse_phase(phase_name if period else str(name))
    if not period:
        return phase, None
    if phase is not Phase.OPERATIONAL or not PERIOD_PATTERN.match(period):
        raise UsageError(
            f"unknown checklist {name!r}: a phase ({', '.join(PHASES)}) or "
            "operational-YYYY-MM / operational-YYYY-qN"
        )
    return phase, period
