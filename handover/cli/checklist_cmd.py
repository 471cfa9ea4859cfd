"""`handover checklist` and `handover audit`: what each phase requires, what was done, who did it.

Both commands only read: showing a phase that was never run prints its
template items as pending without creating any state.
"""

from __future__ import annotations

import hashlib
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
from handover.errors import AuditTrailBroken, HandoverError, UsageError
from handover.phases import Phase, parse_phase
from handover.sshkeys import parse_public_key
from handover.state.home import CONTRACT_ID_PATTERN

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


def checklist_table(checklist: Checklist, stored: bool, language: str | None = None) -> Table:
    """A rich table of one checklist: status coloured, evidence shortened, reasons shown.

    `language`: the contract's; a template item's title stored in another
    language (a checklist opened before titles came per language) is shown in it.
    """
    from handover.contract.checklists import item_title

    state = f"version {checklist.version}" if stored else "not started: template items"
    table = Table(
        title=f"{checklist.contract} · {checklist.name} ({state})",
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
        title = (
            item_title(checklist.phase.value, item.id, item.title, language)
            if language
            else item.title
        )
        label.append("\n" + title, style="")
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
    return f"{checklist.name}: {', '.join(parts)}: {verdict}"


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
        name = store.current(contract, current)  # operational: its newest period's
        stored = name is not None
        if name is not None:
            checklist = store.load(contract, name)
        else:
            checklist = draft_checklist(contract, current, phase_items(playbook, current.value))
        if index:
            console.print()
        console.print(checklist_table(checklist, stored, playbook.contract.language))
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
        if key == "signature":  # an armored block: its hash is enough to tell it
            digest = hashlib.sha256(str(value).encode("utf-8")).hexdigest()
            parts.append(f"signature=sha256:{digest[:12]}…")
        elif key.endswith("sha256") and isinstance(value, str) and len(value) > 16:
            parts.append(f"{key}={value[:12]}…")
        elif isinstance(value, list):
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
        bool,
        typer.Option(
            "--verify",
            help="Check the hash chain, the signed checkpoints and the checklists; "
            "exit 1 on any problem.",
        ),
    ] = False,
    repair: Annotated[
        bool,
        typer.Option(
            "--repair",
            help="Move a torn last line aside (kept as audit.log.torn-<time>), truncate to "
            "the last whole line and record it in the log.",
        ),
    ] = False,
    signer: Annotated[
        Path | None,
        typer.Option("--signer", help="The provider's signing public key (.pub) to trust."),
    ] = None,
    playbook_file: Annotated[
        Path | None,
        typer.Option(
            "--playbook", help="The contract's playbook: its signing key is the one to trust."
        ),
    ] = None,
) -> None:
    """Print a contract's audit log; --verify checks it whole, --repair mends a torn tail."""
    store, contract = _audit_target(file)
    log = store.audit_log(contract)
    if not log.exists():
        console.print(f"no audit log yet at {log.where}")
        return
    if repair:
        _repair(log)
    if verify:
        _verify(store, contract, file, signer, playbook_file)
    torn = log.torn_tail()
    entries = log.readable_entries()
    table = Table(title=log.where, title_justify="left")
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
    if torn is not None:
        console.print(
            Text(
                f"{log.path}:{torn.line}: torn last line ({len(torn.data)} bytes); "
                "`handover audit --repair` moves it aside",
                style="red",
            ),
            soft_wrap=True,
        )
    if verify:
        console.print(
            Text(f"{len(entries)} entries, hash chain intact", style="green"), soft_wrap=True
        )
    else:
        console.print(f"{len(entries)} entries")


def _audit_target(file: Path) -> tuple[ChecklistStore, str]:
    """The store and contract whose log `file` names (a playbook, or the log file itself)."""
    if file.suffix in (".log", ".jsonl"):
        if not file.is_file():
            raise UsageError(f"{file}: no such audit log")
        folder = file.resolve().parent
        if file.name != "audit.log" or not CONTRACT_ID_PATTERN.match(folder.name):
            raise UsageError(
                f"{file}: not a contract's audit.log (expected .handover/contracts/<id>/audit.log)"
            )
        return ChecklistStore(folder.parent), folder.name
    from handover.contract.loader import load_playbook

    return ChecklistStore(), load_playbook(file).contract.id


def _repair(log: AuditLog) -> None:
    from handover.actor import actor

    done = log.repair(actor())
    if done is None:
        console.print(Text(f"{log.path}: no torn line, nothing to repair", style="green"))
        return
    console.print(
        Text(
            f"{log.path}:{done.torn.line}: moved {len(done.torn.data)} torn bytes "
            f"(SHA-256 {done.torn.sha256}) to {done.moved_to}; "
            f"recorded as entry {done.entry['seq']} ({done.entry['event']})",
            style="yellow",
        ),
        soft_wrap=True,
    )


def _verify(
    store: ChecklistStore,
    contract: str,
    file: Path,
    signer: Path | None,
    playbook_file: Path | None,
) -> None:
    """Check chain, checkpoints and checklists; print the checkpoint checked against; raise."""
    from handover.checklist.trail import verify_trail

    public_line, source = _trusted_key(file, signer, playbook_file)
    report = verify_trail(store, contract, public_line, source)
    latest = report.checkpoint_check.latest
    if latest is not None:
        console.print(
            Text(
                f"checked against the {latest.label()}: seq {latest.seq}, "
                f"hash {latest.hash[:16]}…, signed by {latest.signer}",
                style="green",
            ),
            soft_wrap=True,
        )
        if report.checkpoint_check.unsigned_after:
            console.print(
                f"{report.checkpoint_check.unsigned_after} entries after it are not signed yet",
                soft_wrap=True,
            )
    console.print(Text(f"signer key: {report.key_source}", style="dim"), soft_wrap=True)
    if report.problems:
        verdict = "audit chain NOT intact" if report.chain_problems else "audit trail NOT intact"
        raise AuditTrailBroken(str(report.log.path), report.problems, verdict)
    console.print(Text("checklists agree with the audit log", style="green"), soft_wrap=True)


def _trusted_key(
    file: Path, signer: Path | None, playbook_file: Path | None
) -> tuple[str | None, str]:
    """The public key to check checkpoints with, and where it came from (None: self-asserted)."""
    if signer is not None:
        try:
            text = signer.read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"--signer {signer}: {exc.strerror}") from exc
        for line in text.splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                return parse_public_key(line, f"--signer {signer}").line(), f"--signer {signer}"
        raise UsageError(f"--signer {signer}: no public key in the file")
    playbook_path = playbook_file or (None if file.suffix in (".log", ".jsonl") else file)
    if playbook_path is None:
        return None, ""
    from handover.contract.keys import signing_key
    from handover.contract.loader import load_playbook

    playbook = load_playbook(playbook_path)
    try:
        key = signing_key(playbook)
    except HandoverError as exc:
        console.print(
            Text(f"the playbook's signing key cannot be read ({exc})", style="yellow"),
            soft_wrap=True,
        )
        return None, ""
    return key.public_line(), f"the playbook's signing key ({playbook.reversibility.signing_key})"
