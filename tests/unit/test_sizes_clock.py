"""The shared readings of sizes and times: one way in documents, checks and the CLI."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from handover.clock import as_utc
from handover.sizes import size_text


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (0, "0 bytes"),
        (1023, "1023 bytes"),
        (1024, "1.0 KiB"),
        (123456789, "117.7 MiB"),
        (20 * 1024**3, "20.0 GiB"),
        (3 * 1024**6, "3072.0 PiB"),
    ],
)
def test_size_text_uses_binary_units_with_one_decimal(n: int, text: str) -> None:
    assert size_text(n) == text


def test_as_utc_takes_naive_as_utc_and_converts_aware() -> None:
    naive = datetime(2026, 3, 1, 12, 0)
    assert as_utc(naive) == datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    paris = datetime(2026, 3, 1, 13, 0, tzinfo=timezone(timedelta(hours=1)))
    converted = as_utc(paris)
    assert converted.tzinfo is UTC and converted.hour == 12
