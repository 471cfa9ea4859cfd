"""`handover visit`: log the preventive maintenance visits the contract sells, and list them.

Each visit is a day, a technician and the work done; they count against
`services.maintenance.visits_per_year` for the contract year (`list
--playbook` says how many are due by now, pro rata). Logged under the
declared name (`--as`) and in the contract's audit log. See docs/operations.md.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated

import typer

from handover.checklist.store import ChecklistStore
from handover.cli import app, console, handles_errors
from handover.cli.incident_cmd import As, Contract, PlaybookOpt, _playbook, _who
from handover.errors import UsageError
from handover.operations.business_calendar import contract_zone
from handover.operations.clauses import visit_count
from handover.operations.visit_journal import VisitJournal, journal_path

visit_app = typer.Typer(help="Maintenance visits: log them, list them against visits_per_year.")
app.add_typer(visit_app, name="visit")


def _journal(contract: str) -> VisitJournal:
    audit = ChecklistStore().audit_log(contract)  # checks the contract id
    return VisitJournal(journal_path(audit.path.parent), audit)


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError as exc:
        raise UsageError(f"--date {text!r}: not a date (2026-03-10)") from exc


@visit_app.command("log")
@handles_errors
def visit_log(
    contract: Contract,
    on: Annotated[str, typer.Option("--date", help="The day of the visit: 2026-03-10.")],
    technician: Annotated[str, typer.Option("--technician", help="Who made the visit.")],
    work: Annotated[str, typer.Option("--work", help="What was done, in a line.")],
    visit_id: Annotated[
        str | None, typer.Option("--id", help="The id (default V-<next number>).")
    ] = None,
    as_: As = None,
) -> None:
    """Log a maintenance visit: its day, the technician, the work done."""
    who = _who(as_)
    today = datetime.now(UTC).date()
    record = _journal(contract).log(_day(on), technician, work, who, today, visit_id)
    console.print(
        f"{contract}: visit {record.id} of {record.on.isoformat()} logged by {who}",
        markup=False,
        soft_wrap=True,
    )


@visit_app.command("list")
@handles_errors
def visit_list(contract: Contract, playbook: PlaybookOpt = None) -> None:
    """The visits (TSV); with --playbook, the count of the contract year against visits_per_year."""
    journal = _journal(contract)
    if not journal.exists():
        raise UsageError(
            f"{contract}: no visit journal yet ({journal.path}); log one with `handover visit log`"
        )
    visits = journal.visits()
    for v in visits:
        typer.echo(
            "\t".join(" ".join(f.split()) for f in (v.id, v.on.isoformat(), v.technician, v.work))
        )
    book = _playbook(playbook, contract)
    if book is not None:
        now = datetime.now(UTC)
        count = visit_count(book, visits, now, now, contract_zone(book))
        behind = f", {count.due_to_date - count.in_year} behind" if count.behind else ""
        console.print(
            f"{contract}: {count.in_year} of {count.per_year} visit(s) in the contract year "
            f"{count.year_start.isoformat()} to {count.year_end.isoformat()} "
            f"({count.due_to_date} due by now{behind})",
            markup=False,
            soft_wrap=True,
        )
