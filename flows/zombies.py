"""Runs whose process died are marked Crashed by Prefect's own mechanism.

A flow run killed with -9 (or on a machine that lost power) never reports
its end and would show Running forever. Every handover process runs its
flows with heartbeats (`PREFECT_FLOWS_HEARTBEAT_FREQUENCY`, every 30 s, in
`flows.server.client_environment`; a paused run's process keeps beating),
and the server holds one automation, made when handover starts or meets
the server: a run that sent a heartbeat and then neither beats again nor
ends within `SILENCE_S` is set Crashed, with a message saying why. The rerun
then reopens the item the dead run left running (`prepare_rerun`), and the
phase lease it held is released (`flows.writer_lease`).

The automation is created once, by name, and never overwritten: an
operator who tunes its window in the UI keeps their setting.
"""

from __future__ import annotations

import logging
import os
from datetime import timedelta

from prefect.automations import Automation
from prefect.client.schemas.objects import StateType
from prefect.events.actions import ChangeFlowRunState
from prefect.events.schemas.automations import EventTrigger, Posture
from prefect.events.schemas.events import ResourceSpecification

HEARTBEAT_S = 30  # the shortest interval Prefect accepts
SILENCE_S = 120  # four missed heartbeats
AUTOMATION_NAME = "handover: crash runs whose process died (no heartbeat)"
_log = logging.getLogger(__name__)


def silence_seconds() -> int:
    """The silence that marks a run Crashed (HANDOVER_ZOMBIE_SILENCE_SECONDS, at least 45)."""
    try:
        return max(45, int(os.environ.get("HANDOVER_ZOMBIE_SILENCE_SECONDS", SILENCE_S)))
    except ValueError:
        return SILENCE_S


def heartbeat_environment() -> dict[str, str]:
    """What every handover process needs in its environment for its runs to beat."""
    return {"PREFECT_FLOWS_HEARTBEAT_FREQUENCY": str(HEARTBEAT_S)}


def zombie_automation(silence_s: int | None = None) -> Automation:
    """The automation as handover defines it (not yet saved)."""
    silence_s = silence_s or silence_seconds()
    return Automation(
        name=AUTOMATION_NAME,
        description=(
            "A flow run that stopped sending heartbeats without ending has lost its process "
            "(killed, machine down): mark it Crashed. Made by handover; edit the window here."
        ),
        trigger=EventTrigger(
            after={"prefect.flow-run.heartbeat"},
            expect={
                "prefect.flow-run.heartbeat",
                "prefect.flow-run.Completed",
                "prefect.flow-run.Failed",
                "prefect.flow-run.Cancelled",
                "prefect.flow-run.Crashed",
            },
            match=ResourceSpecification({"prefect.resource.id": ["prefect.flow-run.*"]}),
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=timedelta(seconds=silence_s),
        ),
        actions=[
            ChangeFlowRunState(
                name="Crashed",
                state=StateType.CRASHED,
                force=True,
                message=(
                    f"No heartbeat for {silence_s} s: the process running this flow died. "
                    "Run the phase again: it goes on from its checklist."
                ),
            )
        ],
    )


def ensure_zombie_automation(silence_s: int | None = None) -> bool:
    """Create the automation unless one of that name exists; True when created now."""
    try:
        existing: object = Automation.read(name=AUTOMATION_NAME)
        del existing
        return False
    except ValueError:  # Prefect's "not found" for automations read by name
        pass
    # Called outside any flow, where Prefect's async_dispatch runs the synchronous
    # implementation; its typing still offers a coroutine.
    created: object = zombie_automation(silence_s).create()
    del created
    _log.info("created the automation %r", AUTOMATION_NAME)
    return True
