"""The four phases of a managed-services contract: the one list every layer uses."""

from __future__ import annotations

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
