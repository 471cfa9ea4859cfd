"""The hotline and on-site procedure (procédure de support et d'intervention), from the SLA.

What the client reads to get help: how to reach the hotline, the service
levels per severity, how a request is handled, whom to escalate to, and the
on-site and maintenance commitments.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from handover.documents.builder import DocumentBuilder
from handover.documents.document import Document
from handover.documents.sections import escalation_tables, header_fields, severity_table
from handover.i18n import Texts

if TYPE_CHECKING:
    from handover.contract.playbook import Playbook
    from handover.contract.services import Hotline


def hotline_procedure(playbook: Playbook) -> Document:
    """Hotline and on-site procedure (procédure de support et d'intervention), from the SLA."""
    b = DocumentBuilder(Texts.for_contract(playbook.contract))
    t = b.t
    header_fields(b, playbook, None)
    _reaching_the_hotline(b, playbook.services.hotline)
    b.h(2, t._("Severities and service levels"))
    severity_table(b, playbook)
    b.p(
        t._(
            "Response time: from the request to the first answer by an engineer. Resolution "
            "time: from the request to the service restored, workaround included. Times run "
            "during opening hours unless the contract says otherwise."
        )
    )
    b.h(2, t._("How a request is handled"))
    b.bullets(
        [
            t._(
                "The client reports the problem through a channel above: who, which service "
                "or host, what happens since when, and the impact."
            ),
            t._("The provider records a ticket and qualifies the severity with the client."),
            t._("An engineer answers within the response time of that severity."),
            t._(
                "If the resolution time is at risk, the provider escalates along its "
                "escalation path and informs the client."
            ),
            t._(
                "The ticket is closed when the client confirms the service is restored; the "
                "incident counts in the periodic SLA report."
            ),
        ],
        ordered=True,
    )
    b.h(2, t._("Escalation"))
    escalation_tables(b, playbook, level=3)
    _onsite_and_maintenance(b, playbook)
    title = t._("Hotline and on-site procedure: {title}", title=playbook.contract.title)
    return b.document("hotline-procedure", title)


def _reaching_the_hotline(b: DocumentBuilder, hotline: Hotline) -> None:
    t = b.t
    b.h(2, t._("Reaching the hotline"))
    if hotline.mode == "unlimited":
        mode = t._("unlimited requests")
    elif hotline.mode == "tickets":
        mode = t._("{quota} tickets per year", quota=hotline.quota)
    else:
        mode = t._("{quota} hours per year", quota=hotline.quota)
    channels = {
        "phone": t._("phone"),
        "email": t._("email"),
        "portal": t._("portal"),
        "chat": t._("chat"),
    }
    b.fields(
        [
            (t._("Mode"), mode),
            (t._("Opening hours"), hotline.hours or t._("not stated")),
            (
                t._("Channels"),
                ", ".join(channels.get(c, c) for c in hotline.channels) or t._("not stated"),
            ),
            (t._("Phone"), hotline.phone),
            (t._("E-mail"), hotline.email),
        ]
    )


def _onsite_and_maintenance(b: DocumentBuilder, playbook: Playbook) -> None:
    services = playbook.services
    sla = playbook.sla
    t = b.t
    periods = {"monthly": t._("monthly"), "quarterly": t._("quarterly")}
    b.h(2, t._("On-site interventions and maintenance"))
    b.fields(
        [
            (
                t._("On-site delay"),
                t._(
                    "a technician on site within {delay}",
                    delay=t.hours(services.onsite.delay_hours),
                )
                if services.onsite
                else t._("no on-site intervention in the contract"),
            ),
            (
                t._("Preventive maintenance visits"),
                t._("{count} per year", count=services.maintenance.visits_per_year),
            ),
            (t._("Maintenance window"), services.maintenance.window),
            (t._("Technology watch"), t.yes_no(services.technology_watch)),
            (
                t._("Availability target"),
                t._(
                    "{percent}%, reported {period}",
                    percent=t.number(sla.availability_percent),
                    period=periods.get(sla.reporting_period, sla.reporting_period),
                ),
            ),
        ]
    )
