"""`handover incident`: record incidents as they happen, or import them from the ticketing tool.

The SLA report measures what the incident journal holds, so the journal
must have a real input path: the person on duty opens, acknowledges and
resolves an incident here (now, or `--at` a time with its zone when writing
it down later), under the declared name (`--as`, else HANDOVER_ACTOR, else
the login); or the ticketing tool's export is imported (`import --format
csv|glpi|json`), again and again without duplicates. Each change also goes
to the contract's audit log. See docs/operations.md.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal

import typer

from handover.actor import actor as default_actor
from handover.checklist.store import ChecklistStore
from handover.cli import app, console, err_console, handles_errors
from handover.contract.playbook import Playbook
from handover.errors import UsageError
from handover.operations.incident_import import (
    import_settings,
    read_export,
    severity_scale,
)
from handover.operations.incident_journal import IncidentJournal, journal_path

incident_app = typer.Typer(
    help="Record incidents (open, ack, resolve), list them, import ticketing exports."
)
app.add_typer(incident_app, name="incident")

#: Problems of an import printed one by one; the rest are counted.
SHOWN_PROBLEMS = 50

Contract = Annotated[str, typer.Argument(help="The contract id.")]
IncidentId = Annotated[str, typer.Argument(help="The incident id (INC-1, GLPI-42, ...).")]
At = Annotated[
    str | None,
    typer.Option(
        "--at", help="When it happened, with its zone: 2026-03-02T09:15+01:00 (default: now)."
    ),
]
As = Annotated[
    str | None,
    typer.Option("--as", help="Who records it (default: HANDOVER_ACTOR, else user@host)."),
]
PlaybookOpt = Annotated[
    Path | None,
    typer.Option("--playbook", help="The contract's playbook (severity scale, time zone, CSV)."),
]


def _who(name: str | None) -> str:
    if name is not None and not name.strip():
        raise UsageError("--as: give a name")
    return name.strip() if name else default_actor()


def _moment(text: str | None) -> datetime:
    if text is None:
        return datetime.now(UTC)
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise UsageError(f"--at {text!r}: not a date and time (2026-03-02T09:15+01:00)") from exc
    if value.tzinfo is None:
        raise UsageError(f"--at {text!r}: give the time zone, e.g. 2026-03-02T09:15+01:00")
    return value


def _journal(contract: str) -> IncidentJournal:
    audit = ChecklistStore().audit_log(contract)  # checks the contract id
    return IncidentJournal(journal_path(audit.path.parent), audit)


def _playbook(path: Path | None, contract: str) -> Playbook | None:
    if path is None:
        return None
    from handover.contract.loader import load_playbook

    playbook = load_playbook(path)
    if playbook.contract_id != contract:
        raise UsageError(
            f"--playbook {path}: it is contract {playbook.contract_id!r}, not {contract!r}"
        )
    return playbook


@incident_app.command("open")
@handles_errors
def incident_open(
    contract: Contract,
    severity: Annotated[str, typer.Option("--severity", "-s", help="P1 (critical) .. P4.")],
    title: Annotated[str, typer.Option("--title", help="What happened, in a line.")],
    at: At = None,
    incident_id: Annotated[
        str | None, typer.Option("--id", help="The id (default INC-<next number>).")
    ] = None,
    playbook: PlaybookOpt = None,
    as_: As = None,
) -> None:
    """Open an incident: its severity, its title, when it started."""
    who = _who(as_)
    scale = severity_scale(_playbook(playbook, contract))
    level = severity.strip().upper()
    if level not in scale:
        raise UsageError(f"--severity {severity!r}: one of {', '.join(scale)}")
    record = _journal(contract).open(incident_id, level, title, _moment(at), who)
    console.print(
        f"{contract}: incident {record.id} ({level}) opened at {record.at.isoformat()} by {who}",
        markup=False,
        soft_wrap=True,
    )


@incident_app.command("ack")
@handles_errors
def incident_ack(contract: Contract, incident: IncidentId, at: At = None, as_: As = None) -> None:
    """Record the first response to an incident (taken into account)."""
    who = _who(as_)
    record = _journal(contract).acknowledge(incident, _moment(at), who)
    console.print(
        f"{contract}: incident {incident} acknowledged at {record.at.isoformat()} by {who}",
        markup=False,
        soft_wrap=True,
    )


@incident_app.command("resolve")
@handles_errors
def incident_resolve(
    contract: Contract, incident: IncidentId, at: At = None, as_: As = None
) -> None:
    """Record the resolution of an incident (and its response, if none was recorded)."""
    who = _who(as_)
    record = _journal(contract).resolve(incident, _moment(at), who)
    console.print(
        f"{contract}: incident {incident} resolved at {record.at.isoformat()} by {who}",
        markup=False,
        soft_wrap=True,
    )


@incident_app.command("list")
@handles_errors
def incident_list(contract: Contract) -> None:
    """The incidents of the journal: id, severity, opened, acknowledged, resolved, title."""
    journal = _journal(contract)
    if not journal.exists():
        raise UsageError(
            f"{contract}: no incident journal yet ({journal.path}); "
            "record one with `handover incident open` or `handover incident import`"
        )
    incidents = journal.incidents()
    for i in incidents:
        times = [t.isoformat() if t else "-" for t in (i.opened_at, i.responded_at, i.resolved_at)]
        fields = [i.id, i.severity, *times, i.source, i.summary]
        typer.echo("\t".join(" ".join(f.split()) for f in fields))  # TSV: one line each
    if not incidents:
        console.print(f"{contract}: no incident recorded in {journal.path.name}", markup=False)


@incident_app.command("import")
@handles_errors
def incident_import(
    contract: Contract,
    file: Annotated[Path, typer.Argument(help="The export of the ticketing tool.")],
    fmt: Annotated[
        Literal["csv", "glpi", "json"],
        typer.Option(
            "--format", help="csv (columns in the playbook), glpi, or json (incidents.json)."
        ),
    ],
    playbook: PlaybookOpt = None,
    as_: As = None,
) -> None:
    """Import a ticketing export; importing it again adds nothing (tickets keyed by their id)."""
    who = _who(as_)
    settings = import_settings(_playbook(playbook, contract))
    if fmt == "csv" and playbook is None:
        raise UsageError("--format csv: give --playbook (its operations.incidents.csv columns)")
    read = read_export(file, fmt, settings)
    if read.problems and not read.tickets:
        lines = [*read.problems, f"{file}: no valid ticket, nothing imported"]
        raise UsageError("\n".join(lines))
    journal = _journal(contract)
    summary = journal.import_tickets(read.tickets, fmt, file, len(read.problems), who)
    for problem in read.problems[:SHOWN_PROBLEMS]:
        err_console.print(f"skipped: {problem}", markup=False, soft_wrap=True)
    if len(read.problems) > SHOWN_PROBLEMS:
        err_console.print(f"... and {len(read.problems) - SHOWN_PROBLEMS} more rows skipped")
    console.print(
        f"{contract}: {file.name} imported into {journal.path.name}: {summary.added} added, "
        f"{summary.updated} updated, {summary.unchanged} unchanged, "
        f"{len(read.problems)} skipped",
        markup=False,
        soft_wrap=True,
    )
