"""One Prefect automation per contract: its `handover.*` alerts sent through the provider's block.

The tasks emit alerts as events (`tasks.alerts`: `handover.cert-expiring`,
`handover.sla-breach`, ... on the resource `handover.contract.<id>`). When
the playbook has `operations.notifications`, the contract gets an
automation on the server: trigger, any of the chosen kinds on that
resource; action, `send-notification` through the named block document
(a custom webhook, Slack, SendGrid e-mail: whatever notification block the
provider registered). The block holds the address and any token; the
automation holds the block's id and two templates filled from the event,
so no secret is in the playbook, the automation or the event.

The automation is created once, by name, and never overwritten: an
operator who edits it in the UI keeps their edit (as `flows.zombies`).
Two processes creating it at once may both succeed; each then deletes
every copy but the one with the smallest id, so one automation remains.
"""

from __future__ import annotations

import logging

from prefect.automations import Automation
from prefect.client.orchestration import get_client
from prefect.events.actions import SendNotification
from prefect.events.schemas.automations import EventTrigger, Posture
from prefect.events.schemas.events import ResourceSpecification
from prefect.exceptions import ObjectNotFound

from handover.contract.playbook import Playbook
from handover.errors import UsageError
from handover.operations.alerts import EVENT_PREFIX

__all__ = [
    "NotificationBlockMissing",
    "automation_name",
    "ensure_notification_automation",
    "ensure_notifications_quietly",
    "notification_automation",
]

_log = logging.getLogger(__name__)

SUBJECT = (
    "[handover] {{ event.payload.severity or 'alert' }} {{ event.event }}"
    " - contract {{ event.resource.name }}"
)
BODY = """{{ event.payload.message or event.event }}

contract: {{ event.resource.name }}
kind: {{ event.event }}
about: {{ event.payload.subject or '-' }}
severity: {{ event.payload.severity or '-' }}
at: {{ event.occurred }}
"""


class NotificationBlockMissing(UsageError):
    """The playbook names a notification block the server does not hold."""


def automation_name(contract: str) -> str:
    """The automation's name: one per contract, found again by it."""
    return f"handover: notify {contract}"


def notification_automation(playbook: Playbook, block_document_id: object) -> Automation:
    """The contract's automation as handover defines it (not yet saved)."""
    settings = playbook.operations.notifications
    if settings is None:
        raise UsageError("the playbook has no operations.notifications section")
    contract = playbook.contract_id
    return Automation(
        name=automation_name(contract),
        description=(
            f"Alerts of contract {contract} ({', '.join(settings.kinds)}) sent through "
            f"{settings.block}. Made by handover from the playbook; edits here are kept."
        ),
        trigger=EventTrigger(
            expect={EVENT_PREFIX + kind for kind in settings.kinds},
            match=ResourceSpecification({"prefect.resource.id": f"handover.contract.{contract}"}),
            posture=Posture.Reactive,
            threshold=1,
        ),
        actions=[
            SendNotification(
                block_document_id=block_document_id,  # type: ignore[arg-type]
                subject=SUBJECT,
                body=BODY,
            )
        ],
    )


def _block_document_id(reference: str) -> object:
    slug, _, name = reference.partition("/")
    with get_client(sync_client=True) as client:
        try:
            document = client.read_block_document_by_name(name, slug, include_secrets=False)
        except ObjectNotFound:
            raise NotificationBlockMissing(
                f"operations.notifications.block: no block {reference!r} on the Prefect server "
                f"(create a {slug!r} block named {name!r} in the UI or with its Python class)"
            ) from None
    return document.id


def ensure_notification_automation(playbook: Playbook) -> str:
    """Create the contract's automation unless it exists: 'created', 'exists' or 'not set'.

    Raises NotificationBlockMissing when the named block is not on the server.
    """
    settings = playbook.operations.notifications
    if settings is None:
        return "not set"
    name = automation_name(playbook.contract_id)
    with get_client(sync_client=True) as client:
        if client.read_automations_by_name(name):
            return "exists"
    block_id = _block_document_id(settings.block)
    created: object = notification_automation(playbook, block_id).create()
    del created
    with get_client(sync_client=True) as client:  # a concurrent creator: all keep the same one
        copies = sorted(client.read_automations_by_name(name), key=lambda a: str(a.id))
        for extra in copies[1:]:
            client.delete_automation(extra.id)
    _log.info("created the automation %r", name)
    return "created"


def ensure_notifications_quietly(playbook: Playbook) -> str:
    """`ensure_notification_automation` for a flow: a failure is a warning, never the run's."""
    try:
        return ensure_notification_automation(playbook)
    except Exception as exc:
        _log.warning("the notification automation could not be made: %s", exc)
        return f"failed: {exc}"
