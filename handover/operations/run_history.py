"""A contract's run history: every flow run, its task runs, logs and checklist versions.

The history leaves with the client at exit (`run-history.json` in the
bundle) and `handover history` prints it, so it must be complete and hold
nothing secret. Complete: runs are selected by the tag `contract:<id>`,
which every flow run of the contract carries (`tasks.tags`), never by name,
where `acme` would also match `acme-2` and a run named otherwise would be
missed. Nothing secret: parameters are references, yet anything that is not
a short plain value is dropped (by name, so the reader knows); log messages
that look like a private key or a token are withheld, with the kind of
secret they looked like instead of the text.

This module is the vocabulary (tag names, models) and the pure rules; the
task layer reads the Prefect API into these models.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import TypeGuard

from pydantic import BaseModel, ConfigDict

from handover.clock import as_utc
from handover.contract.fields import literal_secret_kind

CONTRACT_TAG = "contract:"
PHASE_TAG = "phase:"
TRIGGER_TAG = "trigger:"
OWN_TAG_PREFIXES = (CONTRACT_TAG, PHASE_TAG, TRIGGER_TAG)
"""Tags whose value handover decides: a run has at most one of each."""

LOG_CAP = 2000
"""Log lines kept per run: a chatty run must not make the history unreadable."""
TASK_RUN_CAP = 5000
PARAMETER_MAX_CHARS = 256
IN_PROGRESS_THIS_EXIT = "in progress (this exit)"
IN_PROGRESS_PARENT = "in progress (runs this exit)"

ParameterValue = str | int | float | bool | None


def contract_tag(contract: str) -> str:
    return f"{CONTRACT_TAG}{contract}"


def run_tags(contract: str | None, phase: str, trigger: str | None = None) -> list[str]:
    """`contract:<id>`, `phase:<phase>` and, when known, `trigger:<kind>`.

    `contract` is None when the playbook names none (unreadable): the run is
    still tagged with its phase.
    """
    tags = [f"{PHASE_TAG}{phase}"]
    if contract:
        tags.insert(0, contract_tag(contract))
    if trigger:
        tags.append(f"{TRIGGER_TAG}{trigger}")
    return tags


def merged_tags(existing: Iterable[str], wanted: Iterable[str]) -> list[str]:
    """`existing` with `wanted` added; a wanted tag replaces an existing one of the same kind.

    A subflow inherits its caller's tags (a lifecycle run's `phase:lifecycle`),
    and a run knows its own contract and phase better than whoever created it:
    the kinds handover decides keep one value each. Other tags stay, in order.
    """
    wanted = list(dict.fromkeys(wanted))
    kinds = {prefix for prefix in OWN_TAG_PREFIXES for tag in wanted if tag.startswith(prefix)}
    kept = [
        tag
        for tag in dict.fromkeys(existing)
        if tag not in wanted and not any(tag.startswith(kind) for kind in kinds)
    ]
    return kept + wanted


def tag_value(tags: Iterable[str], prefix: str) -> str | None:
    """The value of the first tag with `prefix` (`phase:takeover` -> `takeover`), else None."""
    return next((tag.removeprefix(prefix) for tag in tags if tag.startswith(prefix)), None)


def safe_parameters(
    parameters: Mapping[str, object],
) -> tuple[dict[str, ParameterValue], list[str]]:
    """The parameters worth keeping, and the names of those dropped.

    Parameters are references (a playbook path, a date, booleans); anything
    else (a structure, a long text, a value shaped like a secret) is not
    copied into a file that leaves with the client.
    """
    kept: dict[str, ParameterValue] = {}
    dropped: list[str] = []
    for name, value in sorted(parameters.items()):
        if _plain(value):
            kept[name] = value
        else:
            dropped.append(name)
    return kept, dropped


def _plain(value: object) -> TypeGuard[ParameterValue]:
    if value is None or isinstance(value, bool | int | float):
        return True
    return (
        isinstance(value, str)
        and len(value) <= PARAMETER_MAX_CHARS
        and literal_secret_kind(value) is None
    )


def safe_message(message: str) -> str:
    """A log message as exported: withheld, naming what it looked like, when it looks secret."""
    kind = literal_secret_kind(message)
    if kind is None:
        return message
    return f"[withheld by handover: the message looked like {kind}]"


class TaskRunEntry(BaseModel):
    """One task run of a flow run."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    name: str
    state_type: str | None
    state_name: str | None
    start_time: datetime | None
    end_time: datetime | None


class LogEntry(BaseModel):
    """One log line of a flow run (of the flow itself or of one of its task runs)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    time: datetime
    level: str
    message: str
    task_run_id: str | None = None


class FlowRunEntry(BaseModel):
    """One flow run of the contract, with what it did and said."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    name: str
    flow_name: str | None
    tags: list[str]
    phase: str | None
    state_type: str | None
    state_name: str | None
    expected_start_time: datetime | None = None
    start_time: datetime | None
    end_time: datetime | None
    parent_flow_run_id: str | None = None
    parameters: dict[str, ParameterValue]
    parameters_dropped: list[str] = []
    task_runs: list[TaskRunEntry]
    task_runs_truncated: bool = False
    logs: list[LogEntry]
    logs_truncated: bool = False

    @property
    def failed_tasks(self) -> list[TaskRunEntry]:
        return [t for t in self.task_runs if t.state_type in ("FAILED", "CRASHED")]

    def duration(self) -> timedelta | None:
        """End minus start; None before the start or while running (no end yet)."""
        if self.start_time is None or self.end_time is None:
            return None
        return self.end_time - self.start_time


class ArtifactVersion(BaseModel):
    """One version of a checklist artifact (`<contract>-<phase>-checklist`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str
    phase: str
    created: datetime | None
    description: str | None
    flow_run_id: str | None


class RunHistory(BaseModel):
    """Everything the Prefect server holds about one contract's runs, oldest first."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    contract: str
    generated_at: datetime
    selected_by: str  # the tag every run listed carries
    log_cap: int = LOG_CAP
    logs_included: bool = True  # False: read without logs (the runs' table), not none said
    runs: list[FlowRunEntry]
    artifacts: list[ArtifactVersion]
    logs_truncated: bool = False  # some run said more than log_cap lines: see its logs_truncated
    task_runs_truncated: bool = False


def duration_text(delta: timedelta | None) -> str:
    """`1h 02m 03s`, `2m 05s`, `4.2s`; `-` when unknown."""
    if delta is None:
        return "-"
    seconds = delta.total_seconds()
    if seconds < 60:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h {minutes:02d}m {secs:02d}s" if hours else f"{minutes}m {secs:02d}s"


HISTORY_COLUMNS = ("run", "phase", "state", "start (UTC)", "duration", "task runs", "failed tasks")


def history_rows(history: RunHistory) -> list[tuple[str, ...]]:
    """One row of text per run, in the order of HISTORY_COLUMNS (what `handover history` shows)."""
    rows: list[tuple[str, ...]] = []
    for run in history.runs:
        failed = run.failed_tasks
        failed_text = ", ".join(t.name for t in failed[:3]) + (
            f" (+{len(failed) - 3})" if len(failed) > 3 else ""
        )
        rows.append(
            (
                run.name,
                run.phase or "-",
                run.state_name or run.state_type or "-",
                f"{as_utc(run.start_time):%Y-%m-%d %H:%M:%S}" if run.start_time else "-",
                duration_text(run.duration()),
                f"{len(run.task_runs)}{'+' if run.task_runs_truncated else ''}",
                failed_text or "-",
            )
        )
    return rows
