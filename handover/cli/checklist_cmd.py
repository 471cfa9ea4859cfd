"""`handover checklist` and `handover audit`: what each phase requires, what was done, who did it.

Both commands only read: showing a phase that was never run prints its
template items as pending without creating any state.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from handover.checklist.audit import AuditLog
from handover.checklist.model import Checklist, Status
from handover.checklist.store import ChecklistStore
from handover.checklist.templates import draft_checklist
from handover.cli import app, console, handles_errors
from handover.errors import HandoverError, UsageError
from handover.phases import Phase, parse_phase

STATUS_STYLE: dict[Status, str] = {
    Status.PENDING: "dim",
    Status.RUNNING: "bold yellow",
    Status.DONE: "bold green",
    Status.FAILED: "bold red",
    Status.WAIVED: "cyan",
}


def _phases(phase: str | None) -> list[Phase]:
    if phase is None:
        return list(Phase)
    return [parse_phase(phase.lower())]


def checklist_table(checklist: Checklist, stored: bool) -> Table:
    """A rich table of one checklist: status coloured, evidence shortened, reasons shown."""
    state = f"version {checklist.version}" if stored else "not started: template items"
    table = Table(
        title=f"{checklist.contract} · {checklist.phase.value} ({state})",
        title_justify="left",
        show_lines=False,
        expand=False,
    )
    table.add_column("item", min_width=20, overflow="fold")
    table.add_column("status\nowner", no_wrap=True)
    table.add_column("evidence / reason", min_width=14, overflow="fold")
    table.add_column("updated\nby", min_width=16, overflow="fold")
    for item in checklist.items:
        label = Text(item.id, style="bold")
        label.append("\n" + item.title, style="")
        detail = Text(", ".join(e.short() for e in item.evidence))
        if item.reason:
            if detail:
                detail.append("\n")
            detail.append(item.reason, style=STATUS_STYLE.get(item.status, ""))
        updated = Text()
        if stored:
            updated.append(item.updated_at.strftime("%Y-%m-%d %H:%M"))
            updated.append("\n" + item.actor, style="dim")
        table.add_row(
            label,
            Text(item.status.value, style=STATUS_STYLE[item.status]) + Text("\n" + item.owner),
            detail,
            updated,
        )
    return table


def summary_line(checklist: Checklist) -> str:
    """`takeover: 5/8 done, 1 waived, 1 failed, 1 pending: incomplete` (plain text)."""
    counts = checklist.summary()
    parts = [f"{counts['done']}/{counts['total']} done"]
    parts += [
        f"{counts[s.value]} {s.value}"
        for s in (Status.WAIVED, Status.RUNNING, Status.FAILED, Status.PENDING)
        if counts[s.value]
    ]
    verdict = "complete" if checklist.is_complete else "incomplete"
    return f"{checklist.phase.value}: {', '.join(parts)}: {verdict}"


@app.command("checklist")
@handles_errors
def checklist_command(
    file: Annotated[Path, typer.Argument(help="The contract's playbook (YAML).")],
    phase: Annotated[
        str | None,
        typer.Option(
            "--phase", "-p", help="takeover, implementation, operational or reversibility."
        ),
    ] = None,
) -> None:
    """Print each phase's checklist: status, evidence, reasons, who and when."""
    from handover.contract.loader import load_playbook
    from handover.contract.playbook import phase_items

    phases = _phases(phase)
    playbook = load_playbook(file)
    contract = playbook.contract.id
    store = ChecklistStore()
    for index, current in enumerate(phases):
        stored = store.exists(contract, current)
        if stored:
            checklist = store.load(contract, current)
        else:
            checklist = draft_checklist(contract, current, phase_items(playbook, current.value))
        if index:
            console.print()
        console.print(checklist_table(checklist, stored))
        style = "green" if checklist.is_complete else ("red" if checklist.failed else "yellow")
        console.print(Text(summary_line(checklist), style=style))


def _data_summary(data: dict[str, Any]) -> str:
    """One line of an entry's data, the checklist keys first (contract is in the title)."""
    first = ("phase", "item", "from", "to", "reason")
    keys = [k for k in first if k in data] + sorted(k for k in data if k not in first)
    parts = []
    for key in keys:
        value = data[key]
        if key == "contract" or value is None:
            continue
        if isinstance(value, list):
            shown = ", ".join(_short_value(v) for v in value[:4])
            if len(value) > 4:
                shown += f", … (+{len(value) - 4})"
            parts.append(f"{key}=[{shown}]")
        else:
            parts.append(f"{key}={_short_value(value)}")
    return " ".join(parts)


def _short_value(value: Any) -> str:
    if isinstance(value, dict):
        name = value.get("path") or value.get("artifact") or value.get("kind") or ""
        digest = value.get("sha256")
        return f"{Path(str(name)).name}({str(digest)[:12]})" if digest else str(name)
    return str(value)


@app.command("audit")
@handles_errors
def audit_command(
    file: Annotated[
        Path,
        typer.Argument(help="A playbook (its contract's log) or an audit.log file itself."),
    ],
    verify: Annotated[
        bool, typer.Option("--verify", help="Check the hash chain; exit 1 if it is broken.")
    ] = False,
) -> None:
    """Print a contract's audit log and, with --verify, check its hash chain."""
    if file.suffix in (".log", ".jsonl"):
        if not file.is_file():
            raise UsageError(f"{file}: no such audit log")
        log = AuditLog(file)
    else:
        from handover.contract.loader import load_playbook

        playbook = load_playbook(file)
        log = ChecklistStore().audit_log(playbook.contract.id)
    if not log.path.exists():
        console.print(f"no audit log yet at {log.path}")
        return
    if verify:
        problems = log.verify()
        if problems:
            raise HandoverError("\n".join([*problems, f"{log.path}: audit chain NOT intact"]))
    entries = log.entries()
    table = Table(title=str(log.path), title_justify="left")
    table.add_column("seq", justify="right", no_wrap=True)
    table.add_column("at (UTC)", no_wrap=True)
    table.add_column("event\nactor", max_width=26, overflow="fold")
    table.add_column("data", ratio=1, min_width=16, overflow="fold")
    for entry in entries:
        data = entry.get("data") if isinstance(entry.get("data"), dict) else {}
        table.add_row(
            Text(str(entry.get("seq", "?"))),
            Text(str(entry.get("at", ""))[:19].replace("T", " ")),
            Text(str(entry.get("event", ""))) + Text("\n" + str(entry.get("actor", "")), "dim"),
            Text(_data_summary(data or {})),
        )
    console.print(table)
    if verify:
        console.print(
            Text(f"{len(entries)} entries, hash chain intact", style="green"), soft_wrap=True
        )
    else:
        console.print(f"{len(entries)} entries")
