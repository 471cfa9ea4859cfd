"""Read ticketing exports into tickets for the incident journal: CSV, GLPI, older incidents.json.

Each reader returns the tickets it could read and one located line per row it
could not (`file:line: what is wrong`), so one bad row never hides the others
and the person importing knows which line of the export to fix. Times without
an offset are read in the contract's time zone (the ticketing tool shows
local times); a severity must be one of the contract's scale (the SLA's
levels, else P1..P4).

- `csv`: the columns are declared in the playbook (`operations.incidents.csv`:
  the header of the id, opened, acknowledged, resolved, severity and title
  columns, the delimiter, a strptime `datetime_format` (default ISO 8601) and
  a map of the tool's priorities to severities). The incident id is the
  ticket number as exported.
- `glpi`: the JSON list the GLPI REST API returns for `GET apirest.php/Ticket`
  (or a JSON export of it). GLPI's ticket fields, as in glpi-project/glpi
  (`Ticket`/`CommonITILObject`, table `glpi_tickets`): `id`, `name`, `date`
  (opening, "YYYY-MM-DD HH:MM:SS" in the server's local time),
  `takeintoaccountdate` (set when a technician takes the ticket into
  account, GLPI 10), `takeintoaccount_delay_stat` (seconds from opening to
  that moment: used when the date is missing, as opening + delay; GLPI counts
  it on the entity's calendar when it has one, so the date is preferred),
  `solvedate` (null until solved), `priority` (1 very low .. 5 very high,
  6 major; `urgency` when there is no priority) and `is_deleted` (deleted
  tickets are skipped). Priorities map to severities with
  `operations.incidents.glpi_priorities` (default 6, 5 -> P1; 4 -> P2;
  3 -> P3; 2, 1 -> P4). The incident id is `GLPI-<id>`.
- `json`: the older hand-written `incidents.json` (a list of {id, severity,
  summary, opened_at, responded_at, resolved_at}).

The export is read whole (ticketing exports are lists of tickets, not
client data); the journal records its SHA-256.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from zoneinfo import ZoneInfo

from handover.contract.operations import DEFAULT_GLPI_PRIORITIES, IncidentCsv
from handover.errors import UsageError
from handover.operations.business_calendar import DEFAULT_TIMEZONE, contract_zone
from handover.operations.incident_journal import Ticket

if TYPE_CHECKING:
    from handover.contract.playbook import Playbook

ExportFormat = Literal["csv", "glpi", "json"]
DEFAULT_LEVELS = ("P1", "P2", "P3", "P4")
_NO_DATE = ("", "0000-00-00 00:00:00", "0000-00-00")


@dataclass(frozen=True)
class ImportSettings:
    """What reading an export needs from the playbook."""

    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo(DEFAULT_TIMEZONE))
    levels: tuple[str, ...] = DEFAULT_LEVELS
    csv: IncidentCsv | None = None
    glpi_priorities: Mapping[int, str] = field(default_factory=lambda: DEFAULT_GLPI_PRIORITIES)


@dataclass(frozen=True)
class ExportRead:
    """The tickets read from an export, and one `file:line: problem` per row that was not."""

    tickets: list[Ticket]
    problems: list[str]


def severity_scale(playbook: Playbook | None) -> tuple[str, ...]:
    """The contract's severities: the SLA's levels, else P1..P4."""
    if playbook is None or not playbook.sla.severities:
        return DEFAULT_LEVELS
    return tuple(s.level for s in playbook.sla.severities)


def import_settings(playbook: Playbook | None) -> ImportSettings:
    """The zone, scale and export settings of `playbook` (defaults without one)."""
    if playbook is None:
        return ImportSettings()
    sources = playbook.operations.incidents
    return ImportSettings(
        zone=contract_zone(playbook),
        levels=severity_scale(playbook),
        csv=sources.csv,
        glpi_priorities=sources.glpi_priorities,
    )


def read_export(path: Path, fmt: ExportFormat, settings: ImportSettings) -> ExportRead:
    """The tickets of the export at `path`; UsageError when the file as a whole cannot be read."""
    readers: dict[str, Callable[[Path, ImportSettings], ExportRead]] = {
        "csv": read_csv,
        "glpi": read_glpi,
        "json": read_legacy_json,
    }
    try:
        return readers[fmt](path, settings)
    except OSError as exc:
        raise UsageError(f"{path}: cannot read it ({exc.strerror})") from exc
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: not UTF-8 text (byte {exc.start})") from exc


class _Row:
    """Collects the problems of one row; each parse returns None after a problem."""

    def __init__(self, where: str, settings: ImportSettings) -> None:
        self.where = where
        self.settings = settings
        self.problems: list[str] = []

    def problem(self, text: str) -> None:
        self.problems.append(f"{self.where}: {text}")

    def moment(self, what: str, raw: Any, fmt: str | None = None) -> datetime | None:
        text = "" if raw is None else str(raw).strip()
        if text in _NO_DATE:
            return None
        try:
            value = datetime.strptime(text, fmt) if fmt else datetime.fromisoformat(text)
        except ValueError:
            self.problem(f"{what} {text!r} is not a date ({fmt or 'ISO 8601'})")
            return None
        return value if value.tzinfo else value.replace(tzinfo=self.settings.zone)

    def severity(self, raw: str, mapped: str, how: str) -> str | None:
        if mapped in self.settings.levels:
            return mapped
        self.problem(f"severity {raw!r} is not one of {', '.join(self.settings.levels)} ({how})")
        return None

    def ticket(
        self,
        ids: tuple[str, str],
        severity: str | None,
        title: str,
        times: tuple[datetime | None, datetime | None, datetime | None],
    ) -> Ticket | None:
        opened, acknowledged, resolved = times
        if opened is None:
            if not any("opened" in p or "date" in p for p in self.problems):
                self.problem("no opening date")
            return None
        for when, what in ((acknowledged, "acknowledged"), (resolved, "resolved")):
            if when is not None and when < opened:
                self.problem(f"{what} at {when.isoformat()}, before it was opened")
        if self.problems or severity is None:
            return None
        return Ticket(
            id=ids[0],
            source_id=ids[1],
            severity=severity,
            title=title.strip() or "(no title)",
            opened_at=opened,
            acknowledged_at=acknowledged,
            resolved_at=resolved,
        )


def read_csv(path: Path, settings: ImportSettings) -> ExportRead:
    """A CSV export read with the playbook's `operations.incidents.csv` columns."""
    spec = settings.csv
    if spec is None:
        raise UsageError(
            "--format csv: the playbook declares no operations.incidents.csv columns "
            "(id, opened, acknowledged, resolved, severity, title): see docs/operations.md"
        )
    cols = spec.columns
    tickets: list[Ticket] = []
    problems: list[str] = []
    seen: dict[str, int] = {}
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle, delimiter=spec.delimiter)
        header = reader.fieldnames or []
        wanted = [c for c in cols.model_dump().values() if c is not None]
        missing = [c for c in wanted if c not in header]
        if missing:
            raise UsageError(
                f"{path}:1: no column {', '.join(repr(c) for c in missing)} "
                f"(columns: {', '.join(header) or 'none'}; delimiter {spec.delimiter!r})"
            )
        for values in reader:
            row = _Row(f"{path}:{reader.line_num}", settings)
            number = (values.get(cols.id) or "").strip()
            if not number:
                row.problem(f"no ticket id in column {cols.id!r}")
            elif number in seen:
                row.problem(f"ticket {number} already on line {seen[number]}")
            raw = (values.get(cols.severity) or "").strip()
            severity = row.severity(
                raw, spec.severities.get(raw, raw), "map it in operations.incidents.csv.severities"
            )
            times = (
                row.moment(
                    f"opened ({cols.opened})", values.get(cols.opened), spec.datetime_format
                ),
                _optional(row, cols.acknowledged, values, spec.datetime_format),
                _optional(row, cols.resolved, values, spec.datetime_format),
            )
            ticket = row.ticket((number, number), severity, values.get(cols.title) or "", times)
            if ticket is not None:
                seen[number] = reader.line_num
                tickets.append(ticket)
            problems.extend(row.problems)
    return ExportRead(tickets, problems)


def _optional(
    row: _Row, column: str | None, values: Mapping[str, str | None], fmt: str | None
) -> datetime | None:
    if column is None:
        return None
    return row.moment(f"{column!r}", values.get(column), fmt)


def read_glpi(path: Path, settings: ImportSettings) -> ExportRead:
    """The tickets of GLPI's REST API answer (`GET apirest.php/Ticket`), a JSON list."""
    tickets: list[Ticket] = []
    problems: list[str] = []
    for line, value in json_list(path):
        row = _Row(f"{path}:{line}", settings)
        if not isinstance(value, dict):
            row.problem("not a ticket (a JSON object)")
            problems.extend(row.problems)
            continue
        if value.get("is_deleted") in (1, True, "1"):
            continue
        number = value.get("id")
        if isinstance(number, str) and number.strip().isdigit():  # some exports quote numbers
            number = int(number)
        if not isinstance(number, int) or isinstance(number, bool):
            row.problem("no ticket id (id)")
        opened = row.moment("opened (date)", value.get("date"))
        acknowledged = row.moment("takeintoaccountdate", value.get("takeintoaccountdate"))
        delay = value.get("takeintoaccount_delay_stat")
        if acknowledged is None and opened is not None and isinstance(delay, int) and delay > 0:
            acknowledged = opened + timedelta(seconds=delay)
        resolved = row.moment("solvedate", value.get("solvedate"))
        priority = value.get("priority", value.get("urgency"))
        mapped = settings.glpi_priorities.get(priority) if isinstance(priority, int) else None
        how = "map it in operations.incidents.glpi_priorities"
        severity = row.severity(str(priority), mapped or str(priority), how)
        name = value.get("name")
        ticket = row.ticket(
            (f"GLPI-{number}", str(number)),
            severity,
            name if isinstance(name, str) else "",
            (opened, acknowledged, resolved),
        )
        if ticket is not None:
            tickets.append(ticket)
        problems.extend(row.problems)
    return ExportRead(tickets, problems)


def read_legacy_json(path: Path, settings: ImportSettings) -> ExportRead:
    """The older `incidents.json`: a list of {id, severity, summary, opened_at, ...}."""
    tickets: list[Ticket] = []
    problems: list[str] = []
    for line, value in json_list(path):
        row = _Row(f"{path}:{line}", settings)
        if not isinstance(value, dict) or not str(value.get("id") or "").strip():
            row.problem("not an incident with an id")
            problems.extend(row.problems)
            continue
        number = str(value["id"]).strip()
        raw = str(value.get("severity"))
        severity = row.severity(raw, raw, "the contract's scale")
        ticket = row.ticket(
            (number, number),
            severity,
            str(value.get("summary") or ""),
            (
                row.moment("opened_at", value.get("opened_at")),
                row.moment("responded_at", value.get("responded_at")),
                row.moment("resolved_at", value.get("resolved_at")),
            ),
        )
        if ticket is not None:
            tickets.append(ticket)
        problems.extend(row.problems)
    return ExportRead(tickets, problems)


def json_list(path: Path) -> Iterator[tuple[int, Any]]:
    """The elements of the JSON list in `path`, each with the line it starts on.

    UsageError (located) when the file is not a JSON list.
    """
    text = path.read_text(encoding="utf-8-sig")
    decoder = json.JSONDecoder()
    lines = _LineCounter(text)
    index = _skip(text, 0)
    if index >= len(text) or text[index] != "[":
        raise UsageError(
            f"{path}:{lines.at(index)}: expected a JSON list of tickets "
            "(the answer of GET apirest.php/Ticket)"
        )
    index = _skip(text, index + 1)
    if index < len(text) and text[index] == "]":
        return
    while True:
        try:
            value, end = decoder.raw_decode(text, index)
        except json.JSONDecodeError as exc:
            raise UsageError(f"{path}:{exc.lineno}: not JSON ({exc.msg})") from exc
        yield lines.at(index), value
        index = _skip(text, end)
        if index < len(text) and text[index] == ",":
            index = _skip(text, index + 1)
            continue
        if index < len(text) and text[index] == "]":
            return
        raise UsageError(f"{path}:{lines.at(index)}: expected ',' or ']' in the list")


def _skip(text: str, index: int) -> int:
    while index < len(text) and text[index] in " \t\r\n":
        index += 1
    return index


class _LineCounter:
    """Line numbers of increasing offsets, counted once through the text."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.offset = 0
        self.line = 1

    def at(self, index: int) -> int:
        self.line += self.text.count("\n", self.offset, index)
        self.offset = index
        return self.line
