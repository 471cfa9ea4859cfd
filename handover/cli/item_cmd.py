"""`handover item`: tick, fail or waive an item a person did, with evidence and a name.

Some items are done by people, not by a flow: the meetings and checks a
playbook adds, the knowledge-transfer sessions, a document signed on paper.
Whoever did it records it here, with the file that proves it; the change is
checked by the checklist's state machine and written to the audit log under
the declared name (`--as`, else HANDOVER_ACTOR, else the login). A phase run
that reaches a ticked item skips it; a phase with an item still pending is
never Completed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from handover.actor import actor as default_actor
from handover.checklist.model import Status, evidence_for_file
from handover.checklist.store import ChecklistStore
from handover.cli import app, console, handles_errors
from handover.errors import UsageError
from handover.evidence import evidence_mirror
from handover.phases import Phase, checklist_name, parse_checklist_name
from handover.state.atomic import write_atomic
from handover.state.layout import ContractPaths

item_app = typer.Typer(help="Record the items people do: done with evidence, failed or waived.")
app.add_typer(item_app, name="item")

Contract = Annotated[str, typer.Argument(help="The contract id.")]
PhaseArg = Annotated[
    str,
    typer.Argument(
        help="takeover | implementation | operational | reversibility; operational is its "
        "newest period's checklist, or name one: operational-2026-11, operational-2026-q4"
    ),
]
ItemArg = Annotated[str, typer.Argument(help="The checklist item id.")]
As = Annotated[
    str | None,
    typer.Option("--as", help="Who did it (default: HANDOVER_ACTOR, else user@host)."),
]


def _checklist(store: ChecklistStore, contract: str, name: str) -> str:
    """The checklist `name` stands for: a phase's, a period's, or the newest operational one."""
    phase, period = parse_checklist_name(name)
    if period is None and phase is Phase.OPERATIONAL:
        return store.current(contract, phase) or phase.value
    return checklist_name(phase, period)


def _who(name: str | None) -> str:
    if name is not None and not name.strip():
        raise UsageError("--as: give a name")
    return name.strip() if name else default_actor()


@item_app.command("done")
@handles_errors
def item_done(
    contract: Contract,
    phase: PhaseArg,
    item: ItemArg,
    evidence: Annotated[
        list[Path],
        typer.Option("--evidence", help="A file that proves it (repeatable); its SHA-256 is kept."),
    ],
    note: Annotated[str | None, typer.Option(help="A short note kept with the evidence.")] = None,
    as_: As = None,
) -> None:
    """Mark an item done, with the files that prove it."""
    who = _who(as_)
    if not evidence:
        raise UsageError("--evidence: at least one file proving the item was done")
    store = ChecklistStore()
    which = _checklist(store, contract, phase)
    store.load(contract, which).item(item)  # the item exists before anything is copied
    proofs = [
        evidence_for_file(_keep(contract, which, item, path), "human", note=note)
        for path in evidence
    ]
    checklist = store.load(contract, which)
    if checklist.item(item).status is Status.PENDING:
        store.start(contract, which, item, who)
    store.complete(contract, which, item, who, proofs)
    console.print(f"{contract}/{which}: {item} done by {who} ({len(proofs)} evidence file(s))")


def _keep(contract: str, phase: str, item: str, path: Path) -> Path:
    """Copy the evidence into the contract's phase folder, so the bundle carries it.

    The exit seals every evidence file under the contract folder into the
    bundle; a file left where the person had it would be lost with their disk.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"--evidence {path}: cannot read it ({exc.strerror})") from exc
    folder = parse_checklist_name(phase)[0]  # a period's evidence in its phase's folder
    paths = ContractPaths(contract)
    kept = paths.phase_dir(folder) / "manual" / item / path.name
    write_atomic(kept, data)
    # With an S3 evidence store, the file is in it before the item is recorded done: the
    # workers that run the contract (and seal its bundle) read their evidence there.
    mirror = evidence_mirror(contract, paths.root)
    if mirror is not None:
        mirror.push(only=[kept.relative_to(paths.root).as_posix()])
    return kept


@item_app.command("fail")
@handles_errors
def item_fail(
    contract: Contract,
    phase: PhaseArg,
    item: ItemArg,
    reason: Annotated[str, typer.Option(help="What went wrong and where.")],
    as_: As = None,
) -> None:
    """Mark an item failed, with the reason (a rerun of the phase reopens it)."""
    who = _who(as_)
    store = ChecklistStore()
    which = _checklist(store, contract, phase)
    if store.load(contract, which).item(item).status is Status.PENDING:
        store.start(contract, which, item, who)
    store.fail(contract, which, item, who, reason)
    console.print(f"{contract}/{which}: {item} failed ({reason}), recorded for {who}")


@item_app.command("waive")
@handles_errors
def item_waive(
    contract: Contract,
    phase: PhaseArg,
    item: ItemArg,
    reason: Annotated[str, typer.Option(help="Why the item does not apply (recorded).")],
    as_: As = None,
) -> None:
    """Waive an item, with the reason it does not apply."""
    who = _who(as_)
    store = ChecklistStore()
    which = _checklist(store, contract, phase)
    store.waive(contract, which, item, who, reason)
    console.print(f"{contract}/{which}: {item} waived by {who} ({reason})")
