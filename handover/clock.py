"""Time as handover records and compares it: timezone-aware UTC.

Evidence, audit entries and reports are compared across hosts and years;
a naive datetime (no zone) reaching the core is taken to be UTC already,
and every comparison happens between aware UTC values.
"""

from __future__ import annotations

from datetime import UTC, datetime


def as_utc(value: datetime) -> datetime:
    """`value` in UTC; a naive datetime is taken to be UTC already."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
