"""Contract documents in Markdown and HTML: baseline report, reversibility plan, runbooks,
hotline procedure, SLA report, exit report.

Every document is built once as a list of blocks (headings, paragraphs,
tables, lists) and rendered twice from that structure, so the Markdown and
the HTML always say the same thing. The HTML is one standalone page (CSS
embedded, no script, no network asset) so it opens from a bundle on a
machine with no network; every piece of input is escaped, so a hostile host
name or cron line cannot inject markup.

The functions are pure: they take the playbook and facts already gathered
(inventories, snapshots, health checks) and return a `Document`. They never
receive secrets (the playbook only holds references); cron lines and
process names, which come from client hosts, are scrubbed of obvious
inline passwords and tokens all the same. Dates are ISO 8601 (`2026-02-01`,
`2026-02-01 09:00 UTC`), which French and English readers both read.
"""

from __future__ import annotations

import base64
import binascii
import calendar
import hashlib
import html
import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict

from handover.bundle.readme import NAMESPACE, SIGNER_IDENTITY
from handover.bundle.types import MemberRecord
from handover.checklist.store import Checklist, Status
from handover.estate.health import HealthCheckResult
from handover.state.atomic import write_atomic

if TYPE_CHECKING:
    from handover.contract.parties import Party
    from handover.contract.playbook import Playbook
    from handover.contract.reversibility import Deadlines
    from handover.estate.inventory import Inventory

__all__ = [
    "Document",
    "ExitDeadlines",
    "HealthCheckResult",
    "Incident",
    "baseline_report",
    "checklists_report",
    "exit_deadlines",
    "exit_report",
    "hotline_procedure",
    "reversibility_plan",
    "runbooks",
    "sla_report",
    "snapshot_digest",
]


# =========================================================================== public models


class Document(BaseModel):
    """A generated document: `name` is the file stem (`baseline-report`), same content twice."""

    model_config = ConfigDict(frozen=True)

    name: str
    title: str
    markdown: str
    html: str

    def write(self, folder: Path) -> list[Path]:
        """Write `<name>.md` and `<name>.html` atomically under `folder`; return both paths."""
        paths = [folder / f"{self.name}.md", folder / f"{self.name}.html"]
        write_atomic(paths[0], self.markdown.encode("utf-8"))
        write_atomic(paths[1], self.html.encode("utf-8"))
        return paths


class Incident(BaseModel):
    """An incident of the period, for the SLA report (times in UTC)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    severity: str  # P1..P9, as in sla.severities
    summary: str
    opened_at: datetime
    responded_at: datetime | None = None
    resolved_at: datetime | None = None


class ExitDeadlines(BaseModel):
    """The dates of an exit, computed from the notice date and the playbook's deadlines."""

    model_config = ConfigDict(frozen=True)

    notice_date: date
    switching_starts: date  # end of the notice period
    transition_ends: date
    retrieval_ends: date
    erasure_by: date


def exit_deadlines(deadlines: Deadlines, notice_date: date) -> ExitDeadlines:
    """Compute exit dates: notice → (+notice_months) switching → (+transition_days)
    transition end → (+retrieval_days) retrieval end → (+erasure_days) erasure.

    Month arithmetic keeps the day of the month, clamped to the month's last
    day (notice on 31 December + 2 months = 28 or 29 February).
    """
    switching = _add_months(notice_date, deadlines.notice_months)
    transition = switching + timedelta(days=deadlines.transition_days)
    retrieval = transition + timedelta(days=deadlines.retrieval_days)
    return ExitDeadlines(
        notice_date=notice_date,
        switching_starts=switching,
        transition_ends=transition,
        retrieval_ends=retrieval,
        erasure_by=retrieval + timedelta(days=deadlines.erasure_days),
    )


def snapshot_digest(members: Iterable[MemberRecord]) -> str:
    """SHA-256 of the dataset's `SHA256SUMS` as `sha256sum` would list it (files only, sorted).

    A volume sealed later from unchanged data carries a `SHA256SUMS` member
    with exactly these bytes, so `sha256sum SHA256SUMS` on the extracted
    volume prints this digest when nothing changed since the baseline.
    """
    from handover.bundle.tarstream import render_sums

    entries = {m.path: m.sha256 for m in members if m.type == "file" and m.sha256}
    return hashlib.sha256(render_sums(entries)).hexdigest()


# =========================================================================== document structure


@dataclass(frozen=True)
class Span:
    """A piece of inline text with a style: code, strong, em, or a status badge."""

    kind: Literal["code", "strong", "em", "status"]
    text: str
    status: str = ""  # for kind == "status": css suffix (done, failed, breach, ok, ...)


Inline = str | Span | Sequence["str | Span"]


@dataclass(frozen=True)
class Heading:
    level: int
    text: str


@dataclass(frozen=True)
class Para:
    content: Inline
    kind: Literal["normal", "note", "warning"] = "normal"


@dataclass(frozen=True)
class Bullets:
    items: Sequence[Inline]
    ordered: bool = False


@dataclass(frozen=True)
class Table:
    headers: Sequence[str]
    rows: Sequence[Sequence[Inline]]
    empty: str = "None."


@dataclass(frozen=True)
class Fields:
    """Label/value pairs: a definition table in HTML, a bullet list in Markdown."""

    pairs: Sequence[tuple[str, Inline]]


@dataclass(frozen=True)
class CodeBlock:
    text: str


Block = Heading | Para | Bullets | Table | Fields | CodeBlock


@dataclass
class _Builder:
    """Collects blocks; `h`, `p`, `table`... read like the document they write."""

    blocks: list[Block] = field(default_factory=list)

    def h(self, level: int, text: str) -> None:
        self.blocks.append(Heading(level, text))

    def p(self, content: Inline, kind: Literal["normal", "note", "warning"] = "normal") -> None:
        self.blocks.append(Para(content, kind))

    def bullets(self, items: Sequence[Inline], ordered: bool = False, empty: str = "") -> None:
        if items:
            self.blocks.append(Bullets(list(items), ordered))
        elif empty:
            self.blocks.append(Para(empty))

    def table(
        self, headers: Sequence[str], rows: Sequence[Sequence[Inline]], empty: str = "None."
    ) -> None:
        self.blocks.append(Table(list(headers), [list(r) for r in rows], empty))

    def fields(self, pairs: Sequence[tuple[str, Inline | None]]) -> None:
        kept = [(k, v) for k, v in pairs if v not in (None, "", [])]
        if kept:
            self.blocks.append(Fields(kept))  # type: ignore[arg-type]

    def code(self, text: str) -> None:
        self.blocks.append(CodeBlock(text))

    def document(self, name: str, title: str) -> Document:
        return Document(
            name=name,
            title=title,
            markdown=_render_markdown(title, self.blocks),
            html=_render_html(title, self.blocks),
        )


def code(text: object) -> Span:
    return Span("code", str(text))


def strong(text: object) -> Span:
    return Span("strong", str(text))


def badge(text: str, status: str) -> Span:
    return Span("status", text, status)


# --------------------------------------------------------------------------- Markdown

_MD_SPECIAL = re.compile(r"[\\`*\[\]<>|]|(?<!\w)_|_(?!\w)")
_MD_LINE_START = re.compile(r"^(\s*)(?:([#+\-=>])|(\d+)([.)]))")


def _md_text(text: str) -> str:
    """Escape Markdown punctuation inside a line (intra-word underscores stay as they are)."""
    return _MD_SPECIAL.sub(lambda m: "\\" + m.group(0), " ".join(text.splitlines()))


def _md_line_start(text: str) -> str:
    """Escape what would turn the start of a line into a heading, list or quote."""

    def fix(m: re.Match[str]) -> str:
        if m.group(2):
            return m.group(1) + "\\" + m.group(2)
        return m.group(1) + m.group(3) + "\\" + m.group(4)

    return _MD_LINE_START.sub(fix, text, count=1)


def _md_inline(content: Inline, in_table: bool = False) -> str:
    if isinstance(content, str):
        return _md_text(content)
    if isinstance(content, Span):
        text = " ".join(content.text.splitlines())
        if content.kind == "code":
            if in_table:
                text = text.replace("|", "\\|")
            fence = "``" if "`" in text else "`"
            pad = " " if "`" in text else ""
            return f"{fence}{pad}{text}{pad}{fence}" if text else ""
        if content.kind == "em":
            return f"*{_md_text(text)}*"
        return f"**{_md_text(text)}**" if text else ""
    return "".join(_md_inline(part, in_table) for part in content)


def _render_markdown(title: str, blocks: Sequence[Block]) -> str:
    out: list[str] = [f"# {_md_text(title)}", ""]
    for block in blocks:
        if isinstance(block, Heading):
            out += [f"{'#' * min(block.level, 6)} {_md_text(block.text)}", ""]
        elif isinstance(block, Para):
            prefix = {"normal": "", "note": "> ", "warning": "> **Warning:** "}[block.kind]
            out += [prefix + _md_line_start(_md_inline(block.content)), ""]
        elif isinstance(block, Bullets):
            for index, item in enumerate(block.items, start=1):
                marker = f"{index}." if block.ordered else "-"
                out.append(f"{marker} {_md_line_start(_md_inline(item))}")
            out.append("")
        elif isinstance(block, Fields):
            out += [f"- **{_md_text(k)}:** {_md_inline(v)}" for k, v in block.pairs]
            out.append("")
        elif isinstance(block, Table):
            if not block.rows:
                out += [f"*{_md_text(block.empty)}*", ""]
                continue
            out.append("| " + " | ".join(_md_text(h) for h in block.headers) + " |")
            out.append("|" + "|".join("---" for _ in block.headers) + "|")
            for row in block.rows:
                cells = [_md_inline(c, in_table=True) for c in row]
                out.append("| " + " | ".join(cells) + " |")
            out.append("")
        else:
            fence = "````" if "```" in block.text else "```"
            out += [fence, block.text.rstrip("\n"), fence, ""]
    return "\n".join(out).rstrip("\n") + "\n"


# --------------------------------------------------------------------------- HTML

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1d232a;
  max-width: 72rem; margin: 2rem auto; padding: 0 1.25rem; line-height: 1.45; }
h1 { font-size: 1.7rem; border-bottom: 3px solid #2f5d8a; padding-bottom: .3rem; }
h2 { font-size: 1.3rem; margin-top: 2rem; border-bottom: 1px solid #c8d3de; }
h3 { font-size: 1.1rem; margin-top: 1.5rem; }
h4 { font-size: 1rem; margin-top: 1.2rem; }
table { border-collapse: collapse; margin: .6rem 0 1rem; font-size: .92rem; }
th, td { border: 1px solid #c8d3de; padding: .3rem .55rem; text-align: left; vertical-align: top; }
th { background: #eef3f8; }
table.fields th { width: 14rem; }
code, pre { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, monospace; font-size: .88em;
  background: #f3f5f7; border-radius: 3px; }
code { padding: 0 .2rem; overflow-wrap: anywhere; }
pre { padding: .6rem; overflow-x: auto; }
.note { border-left: 4px solid #2f5d8a; background: #f3f7fb; padding: .4rem .8rem; }
.warning { border-left: 4px solid #b3261e; background: #fdf1f0; padding: .4rem .8rem; }
.empty { color: #5b6670; font-style: italic; }
.status { font-weight: 600; padding: 0 .35rem; border-radius: 3px; white-space: nowrap; }
.status-done, .status-ok, .status-met { background: #dff3e4; color: #14532d; }
.status-failed, .status-breach, .status-expired { background: #fde2e1; color: #8a1c14; }
.status-running, .status-warning, .status-soon { background: #fff1cc; color: #6b4e00; }
.status-waived { background: #e0f0f7; color: #0b4f6c; }
.status-pending, .status-unknown { background: #eceff1; color: #37474f; }
footer { margin-top: 3rem; color: #5b6670; font-size: .85rem; }
"""


def _h(text: str) -> str:
    return html.escape(text, quote=True)


def _html_inline(content: Inline) -> str:
    if isinstance(content, str):
        return _h(content)
    if isinstance(content, Span):
        if content.kind == "code":
            return f"<code>{_h(content.text)}</code>"
        if content.kind == "strong":
            return f"<strong>{_h(content.text)}</strong>"
        if content.kind == "em":
            return f"<em>{_h(content.text)}</em>"
        css = re.sub(r"[^a-z0-9-]", "", content.status.lower()) or "unknown"
        return f'<span class="status status-{css}">{_h(content.text)}</span>'
    return "".join(_html_inline(part) for part in content)


def _render_html(title: str, blocks: Sequence[Block]) -> str:
    body: list[str] = [f"<h1>{_h(title)}</h1>"]
    for block in blocks:
        if isinstance(block, Heading):
            level = min(max(block.level, 2), 6)
            body.append(f"<h{level}>{_h(block.text)}</h{level}>")
        elif isinstance(block, Para):
            css = "" if block.kind == "normal" else f' class="{block.kind}"'
            prefix = "<strong>Warning:</strong> " if block.kind == "warning" else ""
            body.append(f"<p{css}>{prefix}{_html_inline(block.content)}</p>")
        elif isinstance(block, Bullets):
            tag = "ol" if block.ordered else "ul"
            items = "".join(f"<li>{_html_inline(i)}</li>" for i in block.items)
            body.append(f"<{tag}>{items}</{tag}>")
        elif isinstance(block, Fields):
            rows = "".join(
                f"<tr><th>{_h(k)}</th><td>{_html_inline(v)}</td></tr>" for k, v in block.pairs
            )
            body.append(f'<table class="fields"><tbody>{rows}</tbody></table>')
        elif isinstance(block, Table):
            if not block.rows:
                body.append(f'<p class="empty">{_h(block.empty)}</p>')
                continue
            head = "".join(f"<th>{_h(h)}</th>" for h in block.headers)
            rows = "".join(
                "<tr>" + "".join(f"<td>{_html_inline(c)}</td>" for c in row) + "</tr>"
                for row in block.rows
            )
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        else:
            body.append(f"<pre><code>{_h(block.text)}</code></pre>")
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_h(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n<main>\n"
        + "\n".join(body)
        + "\n</main>\n<footer>Generated by handover.</footer>\n</body>\n</html>\n"
    )


# =========================================================================== formatting helpers


def _date(value: date | datetime | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, datetime):
        return _utc(value).date().isoformat()
    return value.isoformat()


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _dt(value: datetime | None) -> str:
    if value is None:
        return "—"
    return _utc(value).strftime("%Y-%m-%d %H:%M UTC")


def _size(n: int) -> str:
    units = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB"]
    value = float(n)
    for unit in units:
        if value < 1024 or unit == units[-1]:
            return f"{n} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} bytes"  # pragma: no cover


def _minutes(total: float) -> str:
    minutes = round(total)
    if minutes < 60:
        return f"{minutes} min"
    hours, rest = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h" + (f" {rest:02d} min" if rest else "")
    days, hours = divmod(hours, 24)
    return f"{days} d" + (f" {hours} h" if hours else "")


def _hours(value: float) -> str:
    return _minutes(value * 60)


def _add_months(day: date, months: int) -> date:
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _n(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")


def _shorten(text: str, limit: int = 72) -> str:
    if len(text) <= limit:
        return text
    keep = (limit - 1) // 2
    return text[:keep] + "…" + text[-keep:]


_SECRET_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(r"(?i)(--?(?:password|passwd|pass|pwd|token|secret|api[-_]?key)[= ])\S+"),
        r"\1***",
    ),
    (re.compile(r"(?i)\b(\w*(?:password|passwd|pwd|token|secret|api_?key)\w*=)\S+"), r"\1***"),
    (re.compile(r"(?<=\s)(-p)(?=\S)\S+"), r"\1***"),  # mysql -pSECRET
    (re.compile(r"(://[^/\s:@]+:)[^@\s/]+@"), r"\1***@"),  # scheme://user:pass@
    (re.compile(r"(?i)(authorization:\s*(?:bearer|basic)\s+)\S+"), r"\1***"),
)


def scrub(text: str) -> str:
    """Mask inline passwords and tokens in text read from client hosts (cron lines, commands).

    Best effort: `--password=x`, `PASSWORD=x`, `mysql -px`, `https://u:x@host`,
    `Authorization: Bearer x`. Reports must not spread a secret that a host
    happened to hold in clear.
    """
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


_PRESIGNED = re.compile(r"(?i)^https?://\S*\?\S*(x-amz-signature|signature=|sig=|x-amz-credential)")
_SECRET_KEYS = re.compile(r"(?i)(password|passwd|secret|token|private|identity|credential_value)")


def _value(value: Any, key: str = "") -> Inline:
    """A plain value from a caller's dict, as inline text (secret-looking keys masked)."""
    if key and _SECRET_KEYS.search(key):
        return "***"
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return _dt(value)
    if isinstance(value, date):
        return _date(value)
    if isinstance(value, (int, float)) and key.endswith(("bytes", "size")):
        return f"{_size(int(value))} ({value} bytes)"
    if isinstance(value, BaseModel):
        return _value(value.model_dump(mode="json"), key)
    if isinstance(value, str):
        if _PRESIGNED.search(value):
            return [code(value.split("?", 1)[0]), " (presigned link; signature left out)"]
        if re.fullmatch(r"[0-9a-f]{64}", value) or key.endswith(
            ("path", "sha256", "url", "id", "location", "file")
        ):
            return code(value)
        return value
    if isinstance(value, Mapping):
        return "; ".join(f"{k}: {_plain(v, str(k))}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(_plain(v, key) for v in value)
    return str(value)


def _plain(value: Any, key: str = "") -> str:
    inline = _value(value, key)
    if isinstance(inline, str):
        return inline
    if isinstance(inline, Span):
        return inline.text
    return "".join(p if isinstance(p, str) else p.text for p in inline)


def _ssh_fingerprint(line: str) -> str | None:
    """`SHA256:...` of an OpenSSH public key line, as `ssh-keygen -lf` prints it."""
    parts = line.split()
    if len(parts) < 2:
        return None
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except (binascii.Error, ValueError):
        return None
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def _key_label(line: str) -> Inline:
    """A public key shown by type, fingerprint and comment (the base64 blob is too long)."""
    parts = line.split(None, 2)
    fingerprint = _ssh_fingerprint(line)
    if not fingerprint:
        return code(_shorten(line))
    comment = f" ({parts[2]})" if len(parts) > 2 else ""
    return [code(parts[0]), " ", code(fingerprint), comment]


def _recipient_row(index: int, entry: str) -> list[Inline]:
    if entry.startswith("file:"):
        return [str(index), "recipients file (age -R)", code(entry)]
    if entry.startswith("age1"):
        return [str(index), "age X25519", code(entry)]
    kind = entry.split(None, 1)[0]
    return [str(index), f"SSH public key ({kind})", _key_label(entry)]


def _contact_rows(party: Party) -> list[list[Inline]]:
    return [[c.name, c.role or "—", c.email or "—", c.phone or "—"] for c in party.contacts]


def _escalation_rows(party: Party) -> list[list[Inline]]:
    rows: list[list[Inline]] = []
    for step in sorted(party.escalation, key=lambda s: s.level):
        after = _minutes(step.after_minutes) if step.after_minutes is not None else "first contact"
        rows.append([str(step.level), step.name, step.email or "—", step.phone or "—", after])
    return rows


def _header_fields(
    b: _Builder,
    playbook: Playbook,
    generated_at: datetime | None,
    extra: Sequence[tuple[str, Inline | None]] = (),
) -> None:
    contract = playbook.contract
    b.fields(
        [
            ("Contract", [contract.title, " (", code(contract.id), ")"]),
            ("Client", contract.parties.client.legal_name),
            ("Provider", contract.parties.provider.legal_name),
            ("Effective date", _date(contract.dates.effective)),
            ("Generated", _dt(generated_at) if generated_at else None),
            *extra,
        ]
    )


def _parties_section(b: _Builder, playbook: Playbook, level: int = 2) -> None:
    b.h(level, "Parties (parties au contrat)")
    for label, party in (
        ("Provider (prestataire)", playbook.contract.parties.provider),
        ("Client", playbook.contract.parties.client),
    ):
        b.h(level + 1, f"{label}: {party.legal_name}")
        b.fields([("Registration", party.registration), ("Address", party.address)])
        b.table(["Contact", "Role", "E-mail", "Phone"], _contact_rows(party), "No contact listed.")
        if party.escalation:
            b.p(strong("Escalation (escalade)"))
            b.table(["Level", "Who", "E-mail", "Phone", "Escalate after"], _escalation_rows(party))


def _host_access(host: Any) -> Inline:
    if host.transport == "local":
        return ["local, root ", code(host.root or "/")]
    user = f"{host.user}@" if host.user else ""
    return ["ssh ", code(f"{user}{host.address}:{host.port}")]


def _dataset_source(dataset: Any) -> Inline:
    if dataset.s3 is not None:
        return [
            "S3 ",
            code(f"s3://{dataset.s3.bucket}/{dataset.s3.prefix}"),
            f" ({dataset.s3.versions})",
        ]
    if dataset.dump is not None:
        return ["dump ", code(dataset.dump.command), " → ", code(dataset.dump.filename)]
    parts: list[str | Span] = ["files "]
    for index, path in enumerate(dataset.paths or []):
        if index:
            parts.append(", ")
        parts.append(code(path))
    return parts


def _perimeter_section(b: _Builder, playbook: Playbook, level: int = 2) -> None:
    perimeter = playbook.perimeter
    b.h(level, "Perimeter (périmètre)")
    b.h(level + 1, "Hosts")
    b.table(
        ["Host", "Access", "Host key", "Tags"],
        [
            [
                code(h.name),
                _host_access(h),
                code(h.host_key)
                if h.host_key
                else ("n/a" if h.transport == "local" else "known_hosts"),
                ", ".join(h.tags) or "—",
            ]
            for h in perimeter.hosts
        ],
        "No host in the perimeter.",
    )
    b.h(level + 1, "Datasets")
    b.table(
        ["Dataset", "Host", "Source"],
        [[code(d.name), d.host or "—", _dataset_source(d)] for d in perimeter.datasets],
        "No dataset in the perimeter.",
    )
    b.h(level + 1, "Software and services in scope")
    b.table(
        ["Name", "Kind", "Version", "Licence owner"],
        [[s.name, s.kind or "—", s.version or "—", s.owner] for s in perimeter.software],
        "No software listed.",
    )


# =========================================================================== baseline report


def baseline_report(
    playbook: Playbook,
    inventories: Sequence[Inventory],
    snapshots: Mapping[str, Sequence[MemberRecord]],
    generated_at: datetime,
) -> Document:
    """The baseline report (état des lieux) of the takeover.

    `snapshots` maps dataset names (or `<host>-<dataset>` labels) to the
    members recorded by the baseline snapshot. Hosts without an inventory
    and datasets without a snapshot are listed as not read, never omitted.
    """
    sla = playbook.sla
    warn_days = sla.cert_warning_days
    by_host = {inv.host: inv for inv in inventories}
    b = _Builder()
    _header_fields(b, playbook, generated_at)
    b.p(
        "This report records the state of the client's systems when the provider took them "
        "over: what exists, in which state, and what could not be read. It is the reference "
        "against which the exit inventory is compared.",
        "note",
    )

    # summary
    snap = {d.name: _find_snapshot(snapshots, d.name, d.host) for d in playbook.perimeter.datasets}
    expiring = [
        (inv.host, cert)
        for inv in inventories
        for cert in inv.certificates
        if cert.days_left < warn_days
    ]
    eol = [(inv.host, flag) for inv in inventories for flag in inv.eol_flags]
    unread = _unreadable(playbook, by_host, snap)
    files = sum(_file_count(m) for m in snap.values() if m is not None)
    volume = sum(_total_size(m) for m in snap.values() if m is not None)
    b.h(2, "Summary")
    inventoried = sum(1 for h in playbook.perimeter.hosts if h.name in by_host)
    snapshotted = sum(1 for m in snap.values() if m is not None)
    b.bullets(
        [
            f"{_n(len(playbook.perimeter.hosts), 'host')} in the perimeter, "
            f"{inventoried} inventoried.",
            f"{_n(len(snap), 'dataset')}, {snapshotted} snapshotted: "
            f"{_n(files, 'file')}, {_size(volume)}.",
            f"{_n(len(expiring), 'certificate')} expired or expiring within {warn_days} days.",
            f"{_n(len(eol), 'end-of-life finding')}.",
            f"{_n(len(unread), 'fact')} could not be read.",
        ]
    )

    _parties_section(b, playbook)
    _perimeter_section(b, playbook)

    b.h(2, f"Certificates expired or expiring within {warn_days} days")
    b.table(
        ["Host", "Certificate", "Subject", "Expires", "Days left", "State"],
        [
            [
                code(host),
                code(cert.path),
                cert.subject,
                _date(cert.not_after),
                str(cert.days_left),
                badge("expired", "expired")
                if cert.days_left < 0
                else badge("expires soon", "soon"),
            ]
            for host, cert in sorted(expiring, key=lambda hc: hc[1].days_left)
        ],
        "No certificate expires soon.",
    )

    b.h(2, "End-of-life software (fin de support)")
    b.table(
        ["Host", "Finding"], [[code(h), flag] for h, flag in eol], "No end-of-life software found."
    )

    b.h(2, "Hosts")
    for host in playbook.perimeter.hosts:
        inv = by_host.get(host.name)
        b.h(3, host.name)
        if inv is None:
            b.p(f"Host {host.name} was not inventoried: no facts are recorded for it.", "warning")
            continue
        _host_facts(b, inv, sla.disk_threshold_percent, warn_days)
    for inv in inventories:
        if inv.host not in {h.name for h in playbook.perimeter.hosts}:
            b.h(3, f"{inv.host} (not in the playbook's perimeter)")
            _host_facts(b, inv, sla.disk_threshold_percent, warn_days)

    b.h(2, "Datasets (baseline snapshot)")
    rows: list[list[Inline]] = []
    for dataset in playbook.perimeter.datasets:
        members = snap[dataset.name]
        if members is None:
            rows.append(
                [
                    code(dataset.name),
                    dataset.host or "S3",
                    "—",
                    "—",
                    "—",
                    badge("not read", "failed"),
                ]
            )
            continue
        dirs = sum(1 for m in members if m.type == "dir")
        rows.append(
            [
                code(dataset.name),
                dataset.host or "S3",
                str(_file_count(members)),
                str(dirs),
                _size(_total_size(members)),
                code(snapshot_digest(members)),
            ]
        )
    b.table(["Dataset", "Host", "Files", "Directories", "Size", "Snapshot digest (SHA-256)"], rows)
    b.p(
        [
            "The snapshot digest is the SHA-256 of the dataset's ",
            code("SHA256SUMS"),
            " (every file's SHA-256, sorted by path). After extracting the same dataset from a "
            "restitution bundle, ",
            code("sha256sum SHA256SUMS"),
            " prints the same digest if no file changed since this baseline.",
        ],
        "note",
    )

    b.h(2, "What could not be read")
    b.bullets(unread, empty="Everything listed in the perimeter was read.")
    title = f"Baseline report (état des lieux): {playbook.contract.title}"
    return b.document("baseline-report", title)


def _find_snapshot(
    snapshots: Mapping[str, Sequence[MemberRecord]], name: str, host: str | None
) -> Sequence[MemberRecord] | None:
    if name in snapshots:
        return snapshots[name]
    if host and f"{host}-{name}" in snapshots:
        return snapshots[f"{host}-{name}"]
    return None


def _file_count(members: Sequence[MemberRecord]) -> int:
    return sum(1 for m in members if m.type == "file")


def _total_size(members: Sequence[MemberRecord]) -> int:
    return sum(m.size for m in members if m.type == "file")


def _unreadable(
    playbook: Playbook,
    by_host: Mapping[str, Inventory],
    snap: Mapping[str, Sequence[MemberRecord] | None],
) -> list[Inline]:
    lines: list[Inline] = []
    for host in playbook.perimeter.hosts:
        inv = by_host.get(host.name)
        if inv is None:
            lines.append([code(host.name), ": no inventory (host not reached or not collected)"])
            continue
        lines += [[code(host.name), f": {scrub(item)}"] for item in inv.unreadable]
    for name, members in snap.items():
        if members is None:
            lines.append(["dataset ", code(name), ": no baseline snapshot"])
    return lines


def _host_facts(b: _Builder, inv: Inventory, disk_threshold: float, warn_days: int) -> None:
    b.fields(
        [
            ("Operating system", inv.os_name or "unknown"),
            ("Kernel", code(inv.kernel) if inv.kernel else None),
            ("Architecture", inv.arch or None),
            ("Host name", code(inv.hostname) if inv.hostname else None),
            ("Package manager", inv.package_manager or "none found"),
            ("Installed packages", str(len(inv.packages))),
            ("Collected", _dt(inv.collected_at)),
        ]
    )
    running = sorted(s.name for s in inv.services if s.state in ("running", "active"))
    other = [s for s in inv.services if s.state not in ("running", "active")]
    b.h(4, f"Services ({len(running)} running of {len(inv.services)})")
    if running:
        b.p(["Running: ", *_join_codes(running)])
    failed = [s for s in other if s.state in ("failed", "dead", "crashed", "error")]
    if failed:
        b.table(
            ["Service", "State"],
            [
                [code(s.name), badge(s.state, "failed")]
                for s in sorted(failed, key=lambda s: s.name)
            ],
        )
    b.h(4, "Listening ports")
    b.table(
        ["Protocol", "Address", "Port", "Process"],
        [
            [p.proto, code(p.address), str(p.port), scrub(p.process) if p.process else "—"]
            for p in sorted(inv.listening, key=lambda p: (p.proto, p.port, p.address))
        ],
        "No listening port seen.",
    )
    b.h(4, "Disks")
    b.table(
        ["Mount", "Filesystem", "Size", "Used", "Free", "Use"],
        [
            [
                code(d.mount),
                d.fstype,
                _size(d.size_bytes),
                _size(d.used_bytes),
                _size(d.avail_bytes),
                badge(f"{d.used_percent:.0f}%", "breach")
                if d.used_percent >= disk_threshold
                else f"{d.used_percent:.0f}%",
            ]
            for d in inv.disks
        ],
        "No disk seen.",
    )
    humans = [u for u in inv.users if u.is_human]
    b.h(4, f"Accounts ({_n(len(humans), 'login account')}, {len(inv.users) - len(humans)} system)")
    b.table(
        ["Account", "UID", "Home", "Shell"],
        [[code(u.name), str(u.uid), code(u.home), code(u.shell)] for u in humans],
        "No login account.",
    )
    b.h(4, "Scheduled tasks (cron)")
    b.table(
        ["Source", "Entry"],
        [[code(c.source), code(scrub(c.line))] for c in inv.cron],
        "No cron entry.",
    )
    b.h(4, "Certificates")
    b.table(
        ["Path", "Subject", "Issuer", "Expires", "Days left"],
        [
            [
                code(c.path),
                c.subject,
                c.issuer,
                _date(c.not_after),
                badge(str(c.days_left), "expired" if c.days_left < 0 else "soon")
                if c.days_left < warn_days
                else str(c.days_left),
            ]
            for c in sorted(inv.certificates, key=lambda c: c.days_left)
        ],
        "No certificate found under the configured paths.",
    )
    if inv.eol_flags:
        b.p(["End of life: ", "; ".join(inv.eol_flags)], "warning")
    if inv.unreadable:
        b.p(strong("Not readable on this host"))
        b.bullets([scrub(u) for u in inv.unreadable])


def _join_codes(names: Sequence[str]) -> list[str | Span]:
    parts: list[str | Span] = []
    for index, name in enumerate(names):
        if index:
            parts.append(", ")
        parts.append(code(name))
    return parts


# =========================================================================== reversibility plan


def reversibility_plan(
    playbook: Playbook,
    generated_at: datetime,
    notice_date: date | None = None,
    recipients: Sequence[str] | None = None,
) -> Document:
    """The reversibility plan (plan de réversibilité), drafted from day one.

    Dates are computed from `notice_date`; without one (at takeover) the
    plan shows the delays and an example schedule for a notice given on the
    day the plan was generated. `recipients` are the expanded recipients
    (`playbook.reversibility.load_recipients(base)`), shown instead of the
    `file:` references when given.
    """
    rev = playbook.reversibility
    b = _Builder()
    _header_fields(b, playbook, generated_at)
    b.p(
        [
            "At the end of the contract, whatever its cause, the provider returns every piece of "
            "the client's data, documentation and credentials in a restitution bundle that the "
            "client verifies and opens with standard tools only (",
            code("age"),
            ", ",
            code("tar"),
            ", ",
            code("sha256sum"),
            ", ",
            code("ssh-keygen"),
            "), then revokes its access and erases its copies.",
        ],
        "note",
    )

    b.h(2, "Recipients (destinataires)")
    b.p("Only these keys can decrypt the bundle; the provider keeps no key that opens it.")
    shown = list(recipients) if recipients else list(rev.recipients)
    b.table(
        ["#", "Kind", "Recipient"],
        [_recipient_row(i, r) for i, r in enumerate(shown, start=1)],
    )

    b.h(2, "Delivery (mise à disposition)")
    delivery = rev.delivery
    if delivery.kind == "local":
        b.fields([("Method", "folder handed over to the client"), ("Folder", code(delivery.path))])
    else:
        b.fields(
            [
                ("Method", "S3 bucket with presigned download links"),
                ("Location", code(f"s3://{delivery.bucket}/{delivery.prefix}")),
                ("Link lifetime", f"{delivery.link_expiry_days} days, re-issued on request"),
                (
                    "Copy to the client's bucket",
                    code(delivery.client_bucket) if delivery.client_bucket else None,
                ),
            ]
        )

    b.h(2, "Deadlines (délais)")
    deadlines = rev.deadlines
    example = notice_date is None
    dates = exit_deadlines(deadlines, notice_date or _utc(generated_at).date())
    b.table(
        ["Step", "Delay", "Date" + (" (example)" if example else "")],
        [
            ["Exit notice received", "—", _date(dates.notice_date)],
            [
                "End of notice, switching starts",
                f"{deadlines.notice_months} months",
                _date(dates.switching_starts),
            ],
            [
                "End of transition: bundle delivered",
                f"{deadlines.transition_days} days",
                _date(dates.transition_ends),
            ],
            [
                "End of retrieval period",
                f"{deadlines.retrieval_days} days",
                _date(dates.retrieval_ends),
            ],
            [
                "Provider copies erased, certificate issued",
                f"{deadlines.erasure_days} days",
                _date(dates.erasure_by),
            ],
        ],
    )
    if example:
        b.p(
            f"No exit notice yet: dates are an example for a notice given on "
            f"{_date(dates.notice_date)}. The exit flow recomputes them from the actual notice.",
            "note",
        )
    b.p(
        f"Contract termination notice (préavis de résiliation): "
        f"{playbook.contract.dates.notice_period_months} months. Switching deadlines follow the "
        "EU Data Act (Regulation 2023/2854, art. 25): notice at most 2 months, transition at "
        "most 30 days, retrieval at least 30 days."
    )

    b.h(2, "Data returned (données restituées)")
    b.table(
        ["Dataset", "Host", "Source"],
        [[code(d.name), d.host or "S3", _dataset_source(d)] for d in playbook.perimeter.datasets],
        "No dataset in the perimeter.",
    )
    b.p(
        [
            "Also returned: the inventory of every host, the documentation, the checklists, the "
            "audit log, and the credentials held for the client as a KeePass file (",
            code("credentials.kdbx"),
            ") inside the encrypted index.",
        ]
    )
    b.h(3, "Formats")
    b.table(["Data", "Format"], [[f.data, f.format] for f in rev.formats], "No format stated.")

    b.h(2, "Data not returned (données exclues)")
    b.table(
        ["Category", "Reason", "Legal basis"],
        [[e.category, e.reason, e.legal_basis or "—"] for e in rev.exempted],
        "No exemption: everything is returned.",
    )

    b.h(2, "Ownership of deliverables (propriété)")
    b.table(
        ["Deliverable", "Owner", "Notes"],
        [[o.item, o.owner, o.notes or "—"] for o in rev.software_ownership],
        "No deliverable listed.",
    )
    if playbook.perimeter.software:
        b.table(
            ["Software in scope", "Licence owner"],
            [[s.name, s.owner] for s in playbook.perimeter.software],
        )

    b.h(2, "Provider access revoked at exit")
    b.table(
        ["Host", "Account", "Key", "Purpose"],
        [
            [code(a.host), code(a.account), _key_label(key), a.purpose or "—"]
            for a in playbook.security.provider_access
            for key in a.public_keys
        ],
        "No provider access recorded.",
    )

    b.h(2, "Verification by the client")
    b.bullets(
        [
            ["Check the download: ", code("sha256sum -c SHA256SUMS")],
            [
                "Check the provider's signature, after comparing ",
                code("provider.pub"),
                " with the key the provider gave out of band: ",
                code(f'echo "{SIGNER_IDENTITY} $(cat provider.pub)" > allowed_signers'),
                " then ",
                code(
                    f"ssh-keygen -Y verify -f allowed_signers -I {SIGNER_IDENTITY} "
                    f"-n {NAMESPACE} -s SHA256SUMS.sig < SHA256SUMS"
                ),
            ],
            [
                "Decrypt and extract each volume: ",
                code("age -d -i key.txt volumes/NNNN-….tar.age | tar -x"),
            ],
            [
                "Check every file: ",
                code("sha256sum -c SHA256SUMS"),
                " inside each extracted volume",
            ],
            "Record acceptance (or the problems found) with the provider.",
        ],
        ordered=True,
    )

    b.h(2, "Contacts")
    _escalation_tables(b, playbook, level=3)
    title = f"Reversibility plan (plan de réversibilité): {playbook.contract.title}"
    return b.document("reversibility-plan", title)


def _escalation_tables(b: _Builder, playbook: Playbook, level: int) -> None:
    for label, party in (
        ("Provider", playbook.contract.parties.provider),
        ("Client", playbook.contract.parties.client),
    ):
        b.h(level, f"{label}: {party.legal_name}")
        if party.escalation:
            b.table(["Level", "Who", "E-mail", "Phone", "Escalate after"], _escalation_rows(party))
        else:
            b.table(
                ["Contact", "Role", "E-mail", "Phone"], _contact_rows(party), "No contact listed."
            )


# =========================================================================== runbooks


def runbooks(playbook: Playbook, inventories: Sequence[Inventory] = ()) -> Document:
    """Runbooks (procédures d'exploitation): per host, how to check, restart, restore, escalate.

    With inventories, each host lists its running services with their
    restart command; without, the generic commands are given.
    """
    by_host = {inv.host: inv for inv in inventories}
    sla = playbook.sla
    b = _Builder()
    _header_fields(b, playbook, None)

    b.h(2, "Escalation (common to every host)")
    _severity_table(b, playbook)
    _escalation_tables(b, playbook, level=3)

    backups = playbook.backups
    for host in playbook.perimeter.hosts:
        b.h(2, f"Host {host.name}")
        b.fields(
            [
                ("Access", _host_access(host)),
                ("Credential (reference)", code(host.credential) if host.credential else None),
                ("Pinned host key", code(host.host_key) if host.host_key else None),
                ("Tags", ", ".join(host.tags) or None),
            ]
        )
        prefix = (
            ""
            if host.transport == "local"
            else f"ssh -p {host.port} {host.user + '@' if host.user else ''}{host.address} "
        )
        b.h(3, "Check")
        checks: list[Inline] = [
            ["Reachable: ", code(f"{prefix}true")]
            if prefix
            else "Local host: the worker runs on it; run the commands below there.",
            ["Failed services: ", code(f"{prefix}systemctl --failed --no-pager")],
            ["Disk use (alert at ", f"{sla.disk_threshold_percent}%): ", code(f"{prefix}df -hP")],
            ["Listening ports: ", code(f"{prefix}ss -ltnup")],
        ]
        for path in host.cert_paths:
            checks.append(
                [
                    f"Certificates under {path} "
                    f"(warn {sla.cert_warning_days} days before expiry): ",
                    code(
                        f"{prefix}find {shlex.quote(path)} -name '*.pem' -exec "
                        "openssl x509 -noout -enddate -subject -in {} \\;"
                    ),
                ]
            )
        b.bullets(checks)
        b.h(3, "Restart")
        inv = by_host.get(host.name)
        if inv is not None:
            services = sorted(s.name for s in inv.services if s.state in ("running", "active"))
            b.table(
                ["Service", "Restart", "Status"],
                [
                    [
                        code(name),
                        code(f"{prefix}sudo systemctl restart {shlex.quote(name)}"),
                        code(f"{prefix}systemctl status --no-pager {shlex.quote(name)}"),
                    ]
                    for name in services
                ],
                "No running service recorded by the inventory.",
            )
        else:
            b.p(
                [
                    "No inventory given: restart a service with ",
                    code(f"{prefix}sudo systemctl restart NAME"),
                    " and check it with ",
                    code(f"{prefix}systemctl status NAME"),
                    ".",
                ]
            )
        b.p("Announce any restart outside the maintenance window to the client first.", "note")

        b.h(3, "Restore from backup")
        datasets = [d for d in playbook.perimeter.datasets if d.host == host.name]
        if not datasets:
            b.p("No dataset of this host is backed up.")
        elif backups is None:
            b.p("The playbook defines no backups: nothing to restore from.", "warning")
        else:
            identity = backups.identity or "the provider's backup identity"
            for dataset in datasets:
                volume = f"volumes/NNNN-{host.name}-{dataset.name}.tar.age"
                target = f"/tmp/restore-{dataset.name}"
                steps: list[Inline] = [
                    [
                        "Pick the latest backup under ",
                        code(backups.target),
                        f" (kept {backups.retention_days} days, last {backups.keep_last} always).",
                    ],
                    ["Check it: ", code("sha256sum -c SHA256SUMS"), " in the backup folder."],
                    [
                        "Decrypt and extract, KEY being the backup identity (",
                        code(identity),
                        "): ",
                        code(f"mkdir -p {target} && age -d -i KEY {volume} | tar -x -C {target}"),
                    ],
                    ["Check every file: ", code(f"cd {target} && sha256sum -c --quiet SHA256SUMS")],
                ]
                if dataset.dump is not None:
                    steps.append(
                        [
                            "Load the dump ",
                            code(dataset.dump.filename),
                            " with the database's restore tool (",
                            code(_restore_tool(dataset.dump.filename)),
                            "), on a scratch database first.",
                        ]
                    )
                else:
                    steps.append(
                        [
                            "Copy the needed files back to ",
                            *_join_codes(dataset.paths or []),
                            " (rsync -a --dry-run first), then check the service.",
                        ]
                    )
                b.p(["Dataset ", code(dataset.name), ":"])
                b.bullets(steps, ordered=True)

        b.h(3, "Escalate")
        onsite = playbook.services.onsite
        b.p(
            "Qualify the severity with the table above; if the response or resolution time is "
            "about to be exceeded, escalate to the next level of the provider's escalation path"
            + (
                f"; send a technician on site within {_hours(onsite.delay_hours)} "
                "when remote action is not enough."
                if onsite
                else "."
            )
        )
    title = f"Runbooks (procédures d'exploitation): {playbook.contract.title}"
    return b.document("runbooks", title)


def _restore_tool(filename: str) -> str:
    lower = filename.lower()
    if lower.endswith((".dump", ".pgdump", ".backup")):
        return "pg_restore"
    if lower.endswith(".sql") or lower.endswith(".sql.gz"):
        return "psql / mysql"
    return "the tool that produced it"


def _severity_table(b: _Builder, playbook: Playbook) -> None:
    b.table(
        ["Severity", "Description", "Response", "Resolution"],
        [
            [
                strong(s.level),
                s.description,
                _minutes(s.response_minutes),
                _hours(s.resolution_hours),
            ]
            for s in playbook.sla.severities
        ],
        "No severity levels defined in the SLA.",
    )


# =========================================================================== hotline procedure


def hotline_procedure(playbook: Playbook) -> Document:
    """Hotline and on-site procedure (procédure de support et d'intervention), from the SLA."""
    services = playbook.services
    hotline = services.hotline
    b = _Builder()
    _header_fields(b, playbook, None)

    b.h(2, "Reaching the hotline")
    mode = {
        "unlimited": "unlimited requests",
        "tickets": f"{hotline.quota} tickets per year",
        "hours": f"{hotline.quota} hours per year",
    }[hotline.mode]
    b.fields(
        [
            ("Mode", mode),
            ("Opening hours", hotline.hours or "not stated"),
            ("Channels", ", ".join(hotline.channels) or "not stated"),
            ("Phone", hotline.phone),
            ("E-mail", hotline.email),
        ]
    )

    b.h(2, "Severities and service levels")
    _severity_table(b, playbook)
    b.p(
        "Response time: from the request to the first answer by an engineer (délai "
        "d'intervention). Resolution time: from the request to the service restored "
        "(délai de rétablissement), workaround included. Times run during opening hours "
        "unless the contract says otherwise."
    )

    b.h(2, "How a request is handled")
    b.bullets(
        [
            "The client reports the problem through a channel above: who, which service or host, "
            "what happens since when, and the impact.",
            "The provider records a ticket and qualifies the severity with the client.",
            "An engineer answers within the response time of that severity.",
            "If the resolution time is at risk, the provider escalates along its escalation path "
            "and informs the client.",
            "The ticket is closed when the client confirms the service is restored; the incident "
            "counts in the periodic SLA report.",
        ],
        ordered=True,
    )

    b.h(2, "Escalation")
    _escalation_tables(b, playbook, level=3)

    b.h(2, "On-site interventions and maintenance")
    maintenance = services.maintenance
    b.fields(
        [
            (
                "On-site delay",
                f"a technician on site within {_hours(services.onsite.delay_hours)}"
                if services.onsite
                else "no on-site intervention in the contract",
            ),
            ("Preventive maintenance visits", f"{maintenance.visits_per_year} per year"),
            ("Maintenance window", maintenance.window),
            (
                "Technology watch (veille technologique)",
                "yes" if services.technology_watch else "no",
            ),
            (
                "Availability target",
                f"{playbook.sla.availability_percent:g}%, reported {playbook.sla.reporting_period}",
            ),
        ]
    )
    title = f"Hotline and on-site procedure (procédure de support): {playbook.contract.title}"
    return b.document("hotline-procedure", title)


# =========================================================================== SLA report


def _period_bound(value: date | datetime, end: bool) -> datetime:
    if isinstance(value, datetime):
        return _utc(value)
    moment = datetime.combine(value, time(0, 0), tzinfo=UTC)
    return moment + timedelta(days=1) if end else moment


def sla_report(
    playbook: Playbook,
    period_start: date | datetime,
    period_end: date | datetime,
    checks: Sequence[HealthCheckResult],
    incidents: Sequence[Incident] = (),
    generated_at: datetime | None = None,
) -> Document:
    """The periodic SLA report: availability against the target, findings, incidents, breaches.

    Availability is sampled: per host, the share of `reachable` checks that
    passed during the period (a full disk or an expiring certificate is a
    finding, not downtime). A date bound covers the whole day (`period_end`
    inclusive); a datetime bound is exact (end exclusive). Checks outside the
    period are ignored; a host with no check in the period is "not measured",
    which is itself reported, never counted as available.
    """
    start, end = _period_bound(period_start, False), _period_bound(period_end, True)
    if isinstance(period_end, datetime):
        end = _utc(period_end)
    in_period = [c for c in checks if start <= _utc(c.at) < end]
    target = playbook.sla.availability_percent
    b = _Builder()

    hosts = [h.name for h in playbook.perimeter.hosts]
    hosts += sorted({c.host for c in in_period} - set(hosts))
    breaches: list[Inline] = []
    rows: list[list[Inline]] = []
    total_ok = total = 0
    for host in hosts:
        reach = [c for c in in_period if c.host == host and c.check == "reachable"]
        ok = sum(1 for c in reach if c.ok)
        total_ok, total = total_ok + ok, total + len(reach)
        if not reach:
            rows.append([code(host), "0", "—", "—", badge("not measured", "unknown")])
            breaches.append(
                [code(host), ": availability not measured (no reachability check in the period)"]
            )
            continue
        value = 100.0 * ok / len(reach)
        met = value >= target
        rows.append(
            [
                code(host),
                str(len(reach)),
                str(ok),
                f"{value:.2f}%",
                badge("met" if met else "breach", "met" if met else "breach"),
            ]
        )
        if not met:
            breaches.append(
                [code(host), f": availability {value:.2f}% below the {target:g}% target"]
            )
    overall = 100.0 * total_ok / total if total else None

    verdict: Inline
    if overall is None:
        verdict = badge("not measured", "unknown")
    elif overall >= target and not breaches:
        verdict = badge("met", "met")
    else:
        verdict = badge("breached", "breach")
    _header_fields(
        b,
        playbook,
        generated_at,
        [
            ("Period", f"{_dt(start)} to {_dt(end)} (end excluded)"),
            ("Availability target", f"{target:g}%"),
            ("Measured availability", f"{overall:.2f}%" if overall is not None else "not measured"),
            ("Verdict", verdict),
            ("Checks in the period", str(len(in_period))),
        ],
    )

    b.h(2, "Availability per host")
    b.table(["Host", "Reachability checks", "Passed", "Availability", "Against target"], rows)
    b.p(
        "Availability is the share of reachability checks that passed in the period; each "
        "scheduled health-check run takes one sample per host.",
        "note",
    )

    b.h(2, "Findings (disk, certificates, other checks)")
    findings = [c for c in in_period if c.check != "reachable" and not c.ok]
    b.table(
        ["When", "Host", "Check", "Detail"],
        [
            [_dt(c.at), code(c.host), code(c.check), scrub(c.detail)]
            for c in sorted(findings, key=lambda c: c.at)
        ],
        "No failed check in the period.",
    )

    b.h(2, "Incidents")
    levels = {s.level: s for s in playbook.sla.severities}
    incident_rows: list[list[Inline]] = []
    for incident in sorted(incidents, key=lambda i: i.opened_at):
        sev = levels.get(incident.severity)
        response = _elapsed(incident.opened_at, incident.responded_at)
        resolution = _elapsed(incident.opened_at, incident.resolved_at)
        late: list[str] = []
        if sev is not None:
            if response is None or response > sev.response_minutes:
                late.append("response")
            if resolution is None or resolution > sev.resolution_hours * 60:
                late.append("resolution" if incident.resolved_at else "unresolved")
        state = badge("breach: " + ", ".join(late), "breach") if late else badge("met", "met")
        if sev is None:
            state = badge(f"unknown severity {incident.severity}", "unknown")
        if late:
            breaches.append(
                [
                    f"incident {incident.id} ({incident.severity}): ",
                    ", ".join(late),
                    " beyond the SLA",
                ]
            )
        incident_rows.append(
            [
                code(incident.id),
                incident.severity,
                incident.summary,
                _dt(incident.opened_at),
                _vs(response, sev.response_minutes if sev else None),
                _vs(resolution, sev.resolution_hours * 60 if sev else None),
                state,
            ]
        )
    b.table(
        ["Incident", "Severity", "Summary", "Opened", "Response", "Resolution", "SLA"],
        incident_rows,
        "No incident in the period.",
    )

    b.h(2, "Breaches")
    b.bullets(breaches, empty="No breach of the service levels in the period.")
    title = (
        f"SLA report (rapport de niveau de service) {_date(start)} to "
        f"{_date(end - timedelta(microseconds=1))}: {playbook.contract.title}"
    )
    return b.document("sla-report", title)


def _elapsed(start: datetime, end: datetime | None) -> float | None:
    if end is None:
        return None
    return (_utc(end) - _utc(start)).total_seconds() / 60


def _vs(actual: float | None, target: float | None) -> str:
    shown = _minutes(actual) if actual is not None else "open"
    return f"{shown} (target {_minutes(target)})" if target is not None else shown


# =========================================================================== exit report


def exit_report(
    playbook: Playbook,
    bundle_summary: Mapping[str, Any],
    deliveries: Sequence[Mapping[str, Any]],
    acceptance: Mapping[str, Any] | None,
    revocations: Sequence[Mapping[str, Any]],
    erasure: Mapping[str, Any] | None,
    checklists: Sequence[Checklist],
    generated_at: datetime | None = None,
) -> Document:
    """The final exit report (rapport de fin de contrat / de réversibilité).

    Inputs are plain facts gathered by the reversibility flow: the bundle
    summary (location, volumes, hashes), deliveries, the client's acceptance
    (None while not received), access revocations, the erasure record (None
    while pending) and the checklists of every phase. Anything missing or
    failed is listed under "Open points", so the report never reads as
    complete when it is not. Values under keys that look secret (password,
    token, private...) are masked.
    """
    b = _Builder()
    _header_fields(b, playbook, generated_at)
    open_points: list[Inline] = []

    b.h(2, "Restitution bundle")
    summary = dict(bundle_summary)
    volumes = summary.pop("volumes", None)
    if summary:
        _dict_fields(b, summary)
    else:
        open_points.append("No restitution bundle recorded.")
        b.p("No bundle recorded.", "warning")
    if isinstance(volumes, list) and volumes:
        b.h(3, "Volumes")
        _dict_table(b, volumes)

    b.h(2, "Deliveries")
    if deliveries:
        _dict_table(b, list(deliveries))
    else:
        b.p("No delivery recorded.", "warning")
        open_points.append("The bundle was not delivered.")

    b.h(2, "Client verification and acceptance")
    if acceptance:
        _dict_fields(b, acceptance)
        accepted = acceptance.get("accepted")
        if accepted is False:
            open_points.append("The client did not accept the bundle.")
    else:
        b.p("The client's acceptance has not been received.", "warning")
        open_points.append("Client acceptance not received.")

    b.h(2, "Provider access revoked")
    if revocations:
        _dict_table(b, list(revocations))
        for r in revocations:
            if r.get("ok") is False or r.get("status") in ("failed", "error"):
                open_points.append(f"Access revocation failed: {_plain(r.get('host', '?'))}")
    elif playbook.security.provider_access:
        b.p("No revocation recorded.", "warning")
        open_points.append("Provider access not revoked.")
    else:
        b.p("The playbook records no provider access to revoke.")

    b.h(2, "Erasure of provider copies")
    if erasure:
        _dict_fields(b, erasure)
    else:
        b.p("Provider copies not erased yet; the signed erasure certificate is pending.", "warning")
        open_points.append("Erasure of provider copies pending.")

    b.h(2, "Checklists")
    open_points += _checklist_sections(b, checklists, level=3)
    if not checklists:
        b.p("No checklist given.", "warning")

    b.h(2, "Open points")
    b.bullets(open_points, empty="None: the exit is complete.")
    title = f"Exit report (rapport de fin de contrat): {playbook.contract.title}"
    # put the verdict first: rebuild with a verdict paragraph after the header fields
    verdict = (
        Para([badge("complete", "done"), " Every exit step is done and recorded."])
        if not open_points
        else Para(
            [
                badge("incomplete", "failed"),
                f" {len(open_points)} open points (see the end of this report).",
            ],
            "warning",
        )
    )
    b.blocks.insert(1 if b.blocks and isinstance(b.blocks[0], Fields) else 0, verdict)
    return b.document("exit-report", title)


def _dict_fields(b: _Builder, data: Mapping[str, Any]) -> None:
    """Label/value fields from a dict; multi-line text (a certificate) follows as a code block."""
    long_texts: list[tuple[str, str]] = []
    pairs: list[tuple[str, Inline | None]] = []
    for key, value in data.items():
        label = str(key).replace("_", " ").capitalize()
        if isinstance(value, str) and "\n" in value.strip() and not _SECRET_KEYS.search(str(key)):
            long_texts.append((label, value))
        else:
            pairs.append((label, _value(value, str(key))))
    b.fields(pairs)
    for label, text in long_texts:
        b.p(strong(label))
        b.code(scrub(text))


def _dict_table(b: _Builder, rows: Sequence[Mapping[str, Any]]) -> None:
    """A table from dicts: columns are the union of keys in first-seen order."""
    keys: list[str] = []
    for row in rows:
        for key in row:
            if key not in keys:
                keys.append(str(key))
    b.table(
        [k.replace("_", " ").capitalize() for k in keys],
        [[_value(row.get(k), k) for k in keys] for row in rows],
    )


def _checklist_sections(b: _Builder, checklists: Sequence[Checklist], level: int) -> list[Inline]:
    """One section per checklist (summary and items); returns the items still open."""
    open_points: list[Inline] = []
    for checklist in checklists:
        counts = checklist.summary()
        state = (
            badge("complete", "done") if checklist.is_complete else badge("incomplete", "failed")
        )
        b.h(level, f"{checklist.phase.value.capitalize()}")
        b.p(
            [
                state,
                f" {counts['done']} done, {counts['waived']} waived, {counts['failed']} failed, "
                f"{counts['running']} running, {counts['pending']} pending "
                f"(version {checklist.version}).",
            ]
        )
        b.table(
            ["Item", "Title", "Status", "Evidence", "Reason", "By"],
            [
                [
                    code(item.id),
                    item.title,
                    badge(item.status.value, item.status.value),
                    ", ".join(e.short() for e in item.evidence) or "—",
                    item.reason or "—",
                    item.actor,
                ]
                for item in checklist.items
            ],
        )
        for item in checklist.items:
            if item.id == "exit-report" and item.status is not Status.FAILED:
                continue  # the exit report itself: it is being produced
            if item.status in (Status.FAILED, Status.RUNNING, Status.PENDING):
                why = f": {item.reason}" if item.reason and item.status is Status.FAILED else ""
                open_points.append(
                    [f"{checklist.phase.value}: ", code(item.id), f" is {item.status.value}{why}"]
                )
    return open_points


def checklists_report(
    playbook: Playbook, checklists: Sequence[Checklist], generated_at: datetime | None = None
) -> Document:
    """The checklists of the contract as one document (exported into the bundle at exit)."""
    b = _Builder()
    _header_fields(b, playbook, generated_at)
    open_points = _checklist_sections(b, checklists, level=2)
    b.h(2, "Open items")
    b.bullets(open_points, empty="None: every item is done or waived.")
    return b.document(
        "checklists", f"Checklists (suivi des obligations): {playbook.contract.title}"
    )
