"""The incident model and the older incidents file the operations team kept by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from handover.errors import UsageError
from handover.operations.incidents import Incident, load_incidents


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


def test_an_incident_belongs_to_the_period_it_was_opened_in() -> None:
    opened = datetime(2026, 3, 31, 23, 30, tzinfo=UTC)
    incident = Incident(
        id="x",
        severity="P1",
        summary="s",
        opened_at=opened,
        resolved_at=opened + timedelta(hours=2),
    )
    march = (datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC))
    april = (datetime(2026, 4, 1, tzinfo=UTC), datetime(2026, 5, 1, tzinfo=UTC))
    assert incident.in_period(*march) and not incident.in_period(*april)
    assert incident.open_at(april[0])  # still open when April starts: carried over
    assert not incident.open_at(april[0] + timedelta(hours=2))  # resolved by then
    assert not incident.open_at(march[0])  # not opened yet
    assert incident.in_period(opened, opened + timedelta(seconds=1))  # start included
    assert not incident.in_period(opened - timedelta(hours=1), opened)  # end excluded
