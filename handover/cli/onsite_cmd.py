"""`handover onsite`: on-site interventions, requested, dispatched, on site, closed.

The contract promises a technician on site within `services.onsite.delay_hours`
(business hours unless `services.onsite.clock: wall`); the SLA report can only
measure that if each step is written down when it happens, or later `--at` a
time with its zone, under the declared name (`--as`). Each change also goes
to the contract's audit log. See docs/operations.md.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from handover.checklist.store import ChecklistStore
from handover.cli import app, console, handles_errors
from handover.cli.incident_cmd import As, At, Contract, PlaybookOpt, _moment, _playbook, _who
from handover.errors import UsageError
from handover.operations.business_calendar import contract_calendar
from handover.operations.clauses import onsite_clock_text, onsite_delay_hours
from handover.operations.onsite_journal import OnsiteJournal, Step, journal_path

onsite_app = typer.Typer(
    help="On-site interventions: request, dispatch, arrive, close, list (against the delay)."
)
app.add_typer(onsite_app, name="onsite")

InterventionId = Annotated[str, typer.Argument(help="The intervention id (OS-1, ...).")]


def _journal(contract: str) -> OnsiteJournal:
    audit = ChecklistStore().audit_log(contract)  # checks the contract id
    return OnsiteJournal(journal_path(audit.path.parent), audit)


def _say(contract: str, text: str) -> None:
    console.print(f"{contract}: {text}", markup=False, soft_wrap=True)


@onsite_app.command("request")
@handles_errors
def onsite_request(
    contract: Contract,
    reason: Annotated[str, typer.Option("--reason", help="Why a technician is needed on site.")],
    host: Annotated[str | None, typer.Option("--host", help="The host concerned.")] = None,
    incident: Annotated[
        str | None, typer.Option("--incident", help="The incident it answers (INC-3).")
    ] = None,
    intervention_id: Annotated[
        str | None, typer.Option("--id", help="The id (default OS-<next number>).")
    ] = None,
    at: At = None,
    as_: As = None,
) -> None:
    """Record a request for a technician on site: the delay starts now (or --at)."""
    who = _who(as_)
    record = _journal(contract).request(intervention_id, reason, _moment(at), who, host, incident)
    _say(
        contract, f"on-site intervention {record.id} requested at {record.at.isoformat()} by {who}"
    )


def _step(
    contract: str, intervention: str, step: Step, at: str | None, who: str, tech: str = ""
) -> None:
    record = _journal(contract).step(intervention, step, _moment(at), who, tech)
    _say(
        contract, f"on-site intervention {intervention} {step} at {record.at.isoformat()} by {who}"
    )


@onsite_app.command("dispatch")
@handles_errors
def onsite_dispatch(
    contract: Contract,
    intervention: InterventionId,
    technician: Annotated[str, typer.Option("--technician", help="Who is sent on site.")],
    at: At = None,
    as_: As = None,
) -> None:
    """Record that a technician was sent."""
    _step(contract, intervention, "dispatched", at, _who(as_), technician)


@onsite_app.command("arrive")
@handles_errors
def onsite_arrive(
    contract: Contract, intervention: InterventionId, at: At = None, as_: As = None
) -> None:
    """Record the technician's arrival on site: the delay stops here."""
    _step(contract, intervention, "arrived", at, _who(as_))


@onsite_app.command("close")
@handles_errors
def onsite_close(
    contract: Contract, intervention: InterventionId, at: At = None, as_: As = None
) -> None:
    """Record the end of the intervention."""
    _step(contract, intervention, "closed", at, _who(as_))


@onsite_app.command("list")
@handles_errors
def onsite_list(contract: Contract, playbook: PlaybookOpt = None) -> None:
    """The interventions (TSV); with --playbook, each delay against services.onsite.delay_hours."""
    journal = _journal(contract)
    if not journal.exists():
        raise UsageError(
            f"{contract}: no on-site journal yet ({journal.path}); "
            "record one with `handover onsite request`"
        )
    book = _playbook(playbook, contract)
    now = datetime.now(UTC)
    breaches = 0
    for i in journal.interventions():
        times = [
            t.isoformat() if t else "-"
            for t in (i.requested_at, i.dispatched_at, i.arrived_at, i.closed_at)
        ]
        verdict: list[str] = []
        if book is not None:
            onsite = book.services.onsite
            clock = onsite.clock if onsite else "business"
            hours = onsite_delay_hours(i, now, clock, contract_calendar(book))
            late = onsite is not None and hours > onsite.delay_hours
            breaches += late
            if onsite is None:
                state = "no target"
            elif late:
                state = "breach"
            else:
                state = "met" if i.arrived_at else "waiting"
            verdict = [f"{hours:.1f} h", state]
        fields = [i.id, *times, i.technician or "-", i.host or "-", *verdict, i.reason]
        typer.echo("\t".join(" ".join(f.split()) for f in fields))
    if book is not None:
        onsite = book.services.onsite
        target = f"{onsite.delay_hours:g} h" if onsite else "no delay set in the contract"
        _say(
            contract,
            f"delay target {target}, counted in "
            f"{onsite_clock_text(book, contract_calendar(book))}; {breaches} breach(es)",
        )
