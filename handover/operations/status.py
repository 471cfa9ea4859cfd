"""Where a contract stands, on one screen: its phase, its checklists, its next dates, its runs.

`handover status` gathers it here without Prefect: the checklists from the
store, the dates from the playbook (term, renewal notice) and from the exit
calendar the reversibility flow recorded, and shapes everything as rows. The
last runs come from the Prefect server when it answers (`tasks.status`);
they are passed in, so a server that is down costs one line, not the screen.

Read only: nothing here opens a checklist or creates a contract's folder.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable
from datetime import date, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from handover.checklist.model import Checklist, Status
from handover.checklist.store import ChecklistStore, store_for_folder
from handover.contract.deadlines import ExitDeadlines
from handover.contract.playbook import Playbook
from handover.evidence import refresh_for_reading
from handover.phases import PHASES, Phase
from handover.state.home import CONTRACT_ID_PATTERN
from handover.state.layout import ContractPaths

EXIT_NOTICE_FILE = "exit-notice.json"  # written by the reversibility flow's exit-notice item
NOT_STARTED = "not started"
LISTED_PENDING = 3  # pending items named per phase on the screen (all of them in --json)


class PhaseProgress(BaseModel):
    """The counts of one phase's checklist; `opened` False when no run opened it yet."""

    model_config = ConfigDict(frozen=True)

    phase: Phase
    opened: bool
    done: int = 0
    waived: int = 0
    pending: int = 0
    running: int = 0
    failed: int = 0
    total: int = 0
    failed_items: list[str] = Field(default_factory=list)
    pending_items: list[str] = Field(default_factory=list)

    @property
    def complete(self) -> bool:
        """Opened, and every item done or waived."""
        return self.opened and self.done + self.waived == self.total


class Deadline(BaseModel):
    """A date the contract or its exit sets, and what falls due on it."""

    model_config = ConfigDict(frozen=True)

    what: str
    due: date
    days_left: int = Field(description="Negative once passed.")
    source: str = Field(description="playbook or exit calendar.")


class RunLine(BaseModel):
    """One flow run as the status lists it (the history has the rest)."""

    model_config = ConfigDict(frozen=True)

    name: str
    phase: str | None = None
    state: str | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None


class ContractStatus(BaseModel):
    """Everything `handover status CONTRACT` shows, and its `--json`."""

    contract: str
    title: str | None = None
    playbook: str | None = None
    phase: str = Field(description="The latest phase opened, with its state in words.")
    phases: list[PhaseProgress]
    deadlines: list[Deadline] = Field(default_factory=list)
    runs: list[RunLine] | None = Field(
        default=None, description="The last runs, newest first; None when not read."
    )
    runs_note: str | None = Field(default=None, description="Why the runs are not shown.")
    playbook_note: str | None = Field(
        default=None, description="Why the playbook's dates are not shown."
    )
    generated_at: datetime


def phase_progress(phase: Phase, checklist: Checklist | None) -> PhaseProgress:
    """The counts of `checklist` (None: the phase was never opened)."""
    if checklist is None:
        return PhaseProgress(phase=phase, opened=False)
    counts = checklist.summary()
    return PhaseProgress(
        phase=phase,
        opened=True,
        done=counts[Status.DONE.value],
        waived=counts[Status.WAIVED.value],
        pending=counts[Status.PENDING.value],
        running=counts[Status.RUNNING.value],
        failed=counts[Status.FAILED.value],
        total=counts["total"],
        failed_items=[i.id for i in checklist.items if i.status is Status.FAILED],
        pending_items=[i.id for i in checklist.items if i.status is Status.PENDING],
    )


def current_phase(progress: Iterable[PhaseProgress]) -> str:
    """The latest phase opened, and where it stands: `takeover (2 pending, 1 failed)`."""
    opened = [p for p in progress if p.opened]
    if not opened:
        return NOT_STARTED
    last = opened[-1]
    if last.complete:
        return f"{last.phase.value} (complete)"
    parts = [
        f"{count} {label}"
        for count, label in ((last.failed, "failed"), (last.running, "running"))
        if count
    ]
    parts.insert(0, f"{last.pending} pending")
    return f"{last.phase.value} ({', '.join(parts)})"


def _months_after(day: date, months: int) -> date:
    """`day` plus `months`, the day clamped to the month's end (as the exit calendar counts)."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def contract_deadlines(
    playbook: Playbook | None, exit_dates: ExitDeadlines | None, today: date
) -> list[Deadline]:
    """The dates still ahead (and an erasure date passed), soonest first.

    From the playbook: the start of services, the end of the initial term
    and the last day to give notice before it (renewal). From the exit
    calendar, once the reversibility flow recorded a notice: the start of
    switching, the switch-over (final export), the end of retrieval and the
    erasure deadline, which stays listed once passed, since erasure late is
    a breach.
    """
    found: list[tuple[str, date, str]] = []
    if playbook is not None:
        dates = playbook.contract.dates
        term_end = _months_after(dates.effective, dates.initial_term_months)
        found.append(("services start", dates.effective, "playbook"))
        found.append(("initial term ends", term_end, "playbook"))
        if dates.renewal != "none" and dates.notice_period_months:
            notice_by = _months_after(term_end, -dates.notice_period_months)
            found.append(("notice to end at the term, at the latest", notice_by, "playbook"))
    if exit_dates is not None:
        found.extend(
            [
                ("switching starts (end of notice)", exit_dates.switching_starts, "exit calendar"),
                ("switch-over: final export", exit_dates.switch_over, "exit calendar"),
                ("retrieval period ends", exit_dates.erasure_earliest, "exit calendar"),
                ("provider copies erased by", exit_dates.erasure_by, "exit calendar"),
            ]
        )
    keep = [
        Deadline(what=what, due=due, days_left=(due - today).days, source=source)
        for what, due, source in found
        if due >= today or what == "provider copies erased by"
    ]
    return sorted(keep, key=lambda d: (d.due, d.what))


def read_exit_dates(phase_folder: Path) -> ExitDeadlines | None:
    """The exit calendar the reversibility flow recorded in `phase_folder`, None if none (yet).

    An unreadable record is None too: the status shows what it can; the
    exit itself reads its calendar from its own state and says what is wrong.
    """
    try:
        return ExitDeadlines.model_validate_json((phase_folder / EXIT_NOTICE_FILE).read_bytes())
    except (OSError, ValidationError, ValueError):
        return None


def contract_ids(contracts_root: Path) -> list[str]:
    """The contracts of the installation: the folders of its state and its state store's."""
    folders = (
        [
            p.name
            for p in contracts_root.iterdir()
            if p.is_dir() and CONTRACT_ID_PATTERN.match(p.name)
        ]
        if contracts_root.is_dir()
        else []
    )
    return sorted({*folders, *store_for_folder(contracts_root).state.contracts()})


def gather_status(
    contract: str,
    checklists: dict[Phase, Checklist | None],
    *,
    playbook: Playbook | None,
    exit_dates: ExitDeadlines | None,
    today: date,
    now: datetime,
    runs: list[RunLine] | None = None,
    runs_note: str | None = None,
) -> ContractStatus:
    """One contract's status from what was read (checklists per phase, None when not opened)."""
    progress = [phase_progress(phase, checklists.get(phase)) for phase in PHASES]
    return ContractStatus(
        contract=contract,
        title=playbook.contract.title if playbook is not None else None,
        playbook=str(playbook.source) if playbook is not None and playbook.source else None,
        phase=current_phase(progress),
        phases=progress,
        deadlines=contract_deadlines(playbook, exit_dates, today),
        runs=runs,
        runs_note=runs_note,
        generated_at=now,
    )


# --------------------------------------------------------------------------- rows


PHASE_COLUMNS = ("phase", "done", "waived", "pending", "running", "failed", "items to look at")
DEADLINE_COLUMNS = ("due", "in", "what", "from")
RUN_COLUMNS = ("run", "phase", "state", "start (UTC)", "end (UTC)")
OVERVIEW_COLUMNS = ("contract", "phase", "failed", "pending", "next date")


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value is not None else "—"


def days_text(days: int) -> str:
    """`today`, `in 3 d`, `3 d ago`."""
    if days == 0:
        return "today"
    return f"in {days} d" if days > 0 else f"{-days} d ago"


def phase_rows(status: ContractStatus) -> list[tuple[str, ...]]:
    """One row per phase; a phase never opened says so."""
    rows: list[tuple[str, ...]] = []
    for p in status.phases:
        if not p.opened:
            rows.append((p.phase.value, "—", "—", "—", "—", "—", NOT_STARTED))
            continue
        pending = p.pending_items[:LISTED_PENDING]
        more = len(p.pending_items) - len(pending)
        look = [f"{i} (failed)" for i in p.failed_items] + pending + ([f"+{more}"] if more else [])
        rows.append(
            (
                p.phase.value,
                str(p.done),
                str(p.waived),
                str(p.pending),
                str(p.running),
                str(p.failed),
                ", ".join(look) or "—",
            )
        )
    return rows


def deadline_rows(status: ContractStatus) -> list[tuple[str, ...]]:
    return [(d.due.isoformat(), days_text(d.days_left), d.what, d.source) for d in status.deadlines]


def run_rows(status: ContractStatus) -> list[tuple[str, ...]]:
    return [
        (r.name, r.phase or "—", r.state or "—", _when(r.start_time), _when(r.end_time))
        for r in status.runs or []
    ]


def overview_row(status: ContractStatus) -> tuple[str, ...]:
    """One contract in the installation's table."""
    failed = sum(p.failed for p in status.phases)
    pending = sum(p.pending for p in status.phases)
    upcoming = next((d for d in status.deadlines if d.days_left >= 0), None)
    next_date = f"{upcoming.due.isoformat()} {upcoming.what}" if upcoming is not None else "—"
    return (status.contract, status.phase, str(failed), str(pending), next_date)


def find_playbooks(folder: Path) -> dict[str, Path]:
    """contract id -> its playbook, for the YAML files under `folder` (first found wins).

    The state folder does not record which file a contract came from; the
    playbooks usually live under `playbooks/`. Files that are not playbooks
    are skipped (`read_contract_id` never raises).
    """
    from handover.contract.loader import read_contract_id

    found: dict[str, Path] = {}
    if not folder.is_dir():
        return found
    for path in sorted([*folder.rglob("*.yaml"), *folder.rglob("*.yml")]):
        contract = read_contract_id(path)
        if contract is not None:
            found.setdefault(contract, path)
    return found


def read_checklists(store: ChecklistStore, contract: str) -> dict[Phase, Checklist | None]:
    """Each phase's stored checklist, None for a phase no run opened yet.

    The operational run keeps one checklist per period: its newest stands for the phase.
    """
    current = {phase: store.current(contract, phase) for phase in PHASES}
    return {phase: store.load(contract, name) if name else None for phase, name in current.items()}


def read_status(
    contract: str,
    contracts_root: Path,
    playbook: Playbook | None,
    *,
    today: date,
    now: datetime,
    runs: list[RunLine] | None = None,
    runs_note: str | None = None,
) -> ContractStatus:
    """Gather the status of a contract whose folder is under `contracts_root`."""
    paths = ContractPaths(contract, contracts_root)
    refresh_for_reading(contract, paths.root, [Phase.REVERSIBILITY.value])  # its exit dates
    return gather_status(
        contract,
        read_checklists(store_for_folder(contracts_root), contract),
        playbook=playbook,
        exit_dates=read_exit_dates(paths.phase_dir(Phase.REVERSIBILITY)),
        today=today,
        now=now,
        runs=runs,
        runs_note=runs_note,
    )


def _table(title: str, columns: Iterable[str], rows: list[tuple[str, ...]], empty: str) -> Table:
    table = Table(title=title, title_justify="left", caption=None if rows else empty)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*row)
    return table


def status_view(status: ContractStatus) -> RenderableType:
    """The one screen of `handover status CONTRACT`."""
    head = Text(f"{status.contract}", style="bold")
    if status.title:
        head.append(f"  {status.title}", style="")
    parts: list[RenderableType] = [
        head,
        Text(f"phase: {status.phase}"),
        _table("checklists", PHASE_COLUMNS, phase_rows(status), "no phase opened yet"),
        _table(
            "next dates",
            DEADLINE_COLUMNS,
            deadline_rows(status),
            "no date ahead" if status.playbook else "no date from a playbook",
        ),
    ]
    if status.playbook_note:
        parts.append(Text(status.playbook_note, style="yellow"))
    if status.runs is not None:
        parts.append(_table("last runs", RUN_COLUMNS, run_rows(status), "no run yet"))
    if status.runs_note:
        parts.append(Text(status.runs_note, style="yellow"))
    return Group(*parts)


def overview_view(statuses: list[ContractStatus], note: str | None) -> RenderableType:
    """The table of every contract of the installation (`handover status` alone)."""
    rows = []
    for status in statuses:
        last = status.runs[0] if status.runs else None
        last_run = f"{last.state or '—'} {_when(last.start_time)}" if last is not None else "—"
        rows.append((*overview_row(status), last_run if status.runs is not None else "—"))
    table = _table(
        f"{len(statuses)} contract(s)",
        (*OVERVIEW_COLUMNS, "last run"),
        rows,
        "no contract yet: start one with `handover init`",
    )
    return Group(table, Text(note, style="yellow")) if note else table
