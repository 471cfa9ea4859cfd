"""The hotline and on-site procedure (procédure de support et d'intervention), from the SLA.

What the client reads to get help: how to reach the hotline, the service
levels per severity, how a request is handled, whom to escalate to, and the
on-site and maintenance commitments.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from handover.documents.builder import DocumentBuilder
from handover.documents.document import Document
from handover.documents.formatting import hours_text
from handover.documents.sections import escalation_tables, header_fields, severity_table

if TYPE_CHECKING:
    from handover.contract.playbook import Playbook
    from handover.contract.services import Hotline


def hotline_procedure(playbook: Playbook) -> Document:
    """Hotline and on-site procedure (procédure de support et d'intervention), from the SLA."""
    b = DocumentBuilder()
    header_fields(b, playbook, None)
    _reaching_the_hotline(b, playbook.services.hotline)
    b.h(2, "Severities and service levels")
    severity_table(b, playbook)
    b.p(
        "Response time: from the request to the first answer by an engineer (délai "
        "d'intervention). Resolution time: from the request to the service restored "
        "(délai de rétablissement), workaround included. Times run during opening hours "
        "unless the contract says otherwise."
    )
    b.h(2, "How a request is handled")
    b.bullets(
        [
            "The client reports the problem through a channel above: who, which service or host, "
            "what happens since when, and the impact.",
            "The provider records a ticket and qualifies the severity with the client.",
            "An engineer answers within the response time of that severity.",
            "If the resolution time is at risk, the provider escalates along its escalation path "
            "and informs the client.",
            "The ticket is closed when the client confirms the service is restored; the incident "
            "counts in the periodic SLA report.",
        ],
        ordered=True,
    )
    b.h(2, "Escalation")
    escalation_tables(b, playbook, level=3)
    _onsite_and_maintenance(b, playbook)
    title = f"Hotline and on-site procedure (procédure de support): {playbook.contract.title}"
    return b.document("hotline-procedure", title)


def _reaching_the_hotline(b: DocumentBuilder, hotline: Hotline) -> None:
    b.h(2, "Reaching the hotline")
    mode = {
        "unlimited": "unlimited requests",
        "tickets": f"{hotline.quota} tickets per year",
        "hours": f"{hotline.quota} hours per year",
    }[hotline.mode]
    b.fields(
        [
            ("Mode", mode),
            ("Opening hours", hotline.hours or "not stated"),
            ("Channels", ", ".join(hotline.channels) or "not stated"),
            ("Phone", hotline.phone),
            ("E-mail", hotline.email),
        ]
    )


def _onsite_and_maintenance(b: DocumentBuilder, playbook: Playbook) -> None:
    services = playbook.services
    b.h(2, "On-site interventions and maintenance")
    b.fields(
        [
            (
                "On-site delay",
                f"a technician on site within {hours_text(services.onsite.delay_hours)}"
                if services.onsite
                else "no on-site intervention in the contract",
            ),
            ("Preventive maintenance visits", f"{services.maintenance.visits_per_year} per year"),
            ("Maintenance window", services.maintenance.window),
            (
                "Technology watch (veille technologique)",
                "yes" if services.technology_watch else "no",
            ),
            (
                "Availability target",
                f"{playbook.sla.availability_percent:g}%, reported {playbook.sla.reporting_period}",
            ),
        ]
    )
