"""The SLA report's availability per service, measured from the stored health samples.

When the report is given the period's service figures
(`handover.operations.availability`), they replace the per-host count of
reachability checks: the summary's figure is the weakest service's, the
verdict is "not measured" as soon as one service is, and each service shows
its samples against those expected, its longest gap and its planned
downtime, so the reader sees how much the percentage rests on.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from handover.documents.blocks import Inline, badge, code
from handover.documents.builder import DocumentBuilder
from handover.documents.formatting import minutes_text
from handover.operations.availability import MIN_COVERAGE, ServiceAvailability
from handover.operations.sla import NOT_SET, SlaFigures

__all__ = ["availability_section", "service_breaches", "with_services"]


def with_services(figures: SlaFigures, services: Sequence[ServiceAvailability]) -> SlaFigures:
    """The figures with the services' overall (the weakest, None if one is not measured)."""
    percents = [s.percent for s in services]
    overall = None
    if services and all(p is not None for p in percents):
        overall = min(p for p in percents if p is not None)
    return dataclasses.replace(figures, overall=overall, hosts=())


def availability_section(
    b: DocumentBuilder, services: Sequence[ServiceAvailability], target: float | None
) -> None:
    b.h(2, "Availability per service")
    b.table(
        [
            "Service",
            "Checks",
            "Samples (expected)",
            "Longest gap",
            "Planned downtime",
            "Availability",
            "Against target",
        ],
        [_row(s, target) for s in services],
        "No health check is defined: availability is not measured.",
    )
    b.p(
        "Measured from the health samples stored during the period (the health flow takes "
        "them every 5 minutes unless a check sets its own interval). Samples taken in the "
        "maintenance window are planned downtime and not counted. A service is not measured "
        f"when it has under {MIN_COVERAGE:.0%} of the expected samples or went more than one "
        "hour without one; a service with several checks has its weakest check's figure.",
        "note",
    )


def _row(service: ServiceAvailability, target: float | None) -> list[Inline]:
    seconds = service.longest_gap.total_seconds()
    planned = service.planned_downtime.total_seconds()
    head: list[Inline] = [
        code(service.service),
        ", ".join(service.checks),
        f"{service.samples} ({service.expected})",
        minutes_text(seconds / 60),
        minutes_text(planned / 60) if planned else "none",
    ]
    if service.percent is None:
        return [*head, "—", badge(f"not measured: {service.reason}", "unknown")]
    if target is None:
        return [*head, f"{service.percent:.2f}%", badge(f"no target: {NOT_SET}", "unknown")]
    state = "met" if service.percent >= target else "breach"
    return [*head, f"{service.percent:.2f}%", badge(state, state)]


def service_breaches(services: Sequence[ServiceAvailability], target: float | None) -> list[Inline]:
    """Services not measured or below the target (nothing when the contract sets no target)."""
    if target is None:
        return []
    out: list[Inline] = []
    for s in services:
        if s.percent is None:
            out.append([code(s.service), f": availability not measured ({s.reason})"])
        elif s.percent < target:
            out.append([code(s.service), f": availability {s.percent:.2f}% below {target:g}%"])
    return out
