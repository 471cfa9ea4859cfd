"""The incidents file the operations team keeps in the contract folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from handover.errors import UsageError
from handover.operations.incidents import load_incidents


def test_a_missing_file_means_no_incident(tmp_path: Path) -> None:
    assert load_incidents(tmp_path / "incidents.json") == []


def test_incidents_are_read_in_file_order(tmp_path: Path) -> None:
    path = tmp_path / "incidents.json"
    path.write_text(
        '[{"id": "b", "severity": "P2", "summary": "s", "opened_at": "2026-02-03T10:00:00Z"},'
        ' {"id": "a", "severity": "P1", "summary": "s", "opened_at": "2026-02-01T10:00:00Z",'
        '  "responded_at": "2026-02-01T10:20:00Z"}]'
    )
    first, second = load_incidents(path)
    assert (first.id, first.responded_at, second.id) == ("b", None, "a")
    assert second.responded_at is not None and second.responded_at.minute == 20


def test_a_malformed_file_is_a_usage_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "incidents.json"
    path.write_text('{"id": "not a list"}')
    with pytest.raises(UsageError, match=r"incidents\.json: not a list of incidents"):
        load_incidents(path)
