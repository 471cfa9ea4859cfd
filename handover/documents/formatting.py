"""How values read in a document: dates, sizes, durations, counts, and secrets kept out.

The documents write dates through their `Texts` (handover.i18n): in the
contract's language and time zone, with the offset shown. `date_text` and
`datetime_text` are the ISO 8601 forms kept for text that is not a
document's prose (logs, identifiers). The documents never receive secrets (the
playbook only holds references), but text read from client hosts (cron
lines, process names) and the facts a flow gathers can hold one all the
same: `scrub` masks inline passwords and tokens, and values under keys that
look secret are shown as `***`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel

from handover.clock import as_utc
from handover.documents.blocks import Inline, Span, code
from handover.i18n import Texts
from handover.sizes import size_text


def date_text(value: date | datetime | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, datetime):
        return as_utc(value).date().isoformat()
    return value.isoformat()


def datetime_text(value: datetime | None) -> str:
    if value is None:
        return "—"
    return as_utc(value).strftime("%Y-%m-%d %H:%M UTC")


def minutes_text(total: float) -> str:
    """A duration as a reader says it: `45 min`, `1 h 20 min` up to two days, then `3 d 4 h`."""
    minutes = round(total)
    if minutes < 60:
        return f"{minutes} min"
    hours, rest = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h" + (f" {rest:02d} min" if rest else "")
    days, hours = divmod(hours, 24)
    return f"{days} d" + (f" {hours} h" if hours else "")


def hours_text(value: float) -> str:
    return minutes_text(value * 60)


def count_text(count: int, word: str) -> str:
    """`1 host`, `3 hosts`."""
    return f"{count} {word}" + ("" if count == 1 else "s")


def shorten(text: str, limit: int = 72) -> str:
    """Keep the start and the end of a long text, with an ellipsis in the middle."""
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


def is_secret_key(key: str) -> bool:
    """Whether a value stored under `key` must not be shown (password, token, private...)."""
    return bool(_SECRET_KEYS.search(key))


def value_inline(value: Any, key: str = "", texts: Texts | None = None) -> Inline:
    """A plain value from a caller's dict, as inline text (secret-looking keys masked).

    Dates, moments, yes/no and sizes in `texts`' language and zone (English
    and UTC when not given); a recorded ISO 8601 moment reads as a moment.
    """
    t = texts or Texts.of()
    if key and is_secret_key(key):
        return "***"
    if value is None:
        return "—"
    if isinstance(value, bool):
        return t.yes_no(value)
    if isinstance(value, datetime):
        return t.datetime(value)
    if isinstance(value, date):
        return t.date(value)
    if isinstance(value, (int, float)) and key.endswith(("bytes", "size")):
        return t._("{size} ({count} bytes)", size=size_text(int(value)), count=value)
    if isinstance(value, BaseModel):
        return value_inline(value.model_dump(mode="json"), key, t)
    if isinstance(value, str):
        return _string_inline(value, key, t)
    if isinstance(value, Mapping):
        return "; ".join(f"{k}: {value_text(v, str(k), t)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(value_text(v, key, t) for v in value)
    return str(value)


_ISO_MOMENT = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})")


def _string_inline(value: str, key: str, t: Texts) -> Inline:
    """A presigned link loses its signature; digests, paths, ids and links read as code."""
    if _PRESIGNED.search(value):
        return [code(value.split("?", 1)[0]), " " + t._("(presigned link; signature left out)")]
    if _ISO_MOMENT.fullmatch(value):
        return t.datetime(datetime.fromisoformat(value.replace("Z", "+00:00")))
    if re.fullmatch(r"[0-9a-f]{64}", value) or key.endswith(
        ("path", "sha256", "url", "id", "location", "file")
    ):
        return code(value)
    return value


def value_text(value: Any, key: str = "", texts: Texts | None = None) -> str:
    """`value_inline` without styles, for a value nested in a sentence or a list."""
    inline = value_inline(value, key, texts)
    if isinstance(inline, str):
        return inline
    if isinstance(inline, Span):
        return inline.text
    return "".join(p if isinstance(p, str) else p.text for p in inline)
