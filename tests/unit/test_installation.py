"""The installation id: made once, private, the same for every caller."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from handover.state.installation import installation_id


def test_made_once_private_and_stable(tmp_path: Path) -> None:
    first = installation_id(tmp_path)
    assert uuid.UUID(first).version == 4
    assert installation_id(tmp_path) == first
    path = tmp_path / "installation-id"
    assert path.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["installation-id"]  # no temp left


def test_concurrent_first_use_agrees(tmp_path: Path) -> None:
    with ThreadPoolExecutor(8) as pool:
        ids = set(pool.map(lambda _: installation_id(tmp_path), range(32)))
    assert len(ids) == 1


def test_two_homes_differ(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    assert installation_id(tmp_path / "a") != installation_id(tmp_path / "b")


def test_workers_sharing_a_state_database_are_one_installation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    monkeypatch.setenv("HANDOVER_STATE_URL", "postgresql://ops:pw@db.example:5433/handover")
    first = installation_id(tmp_path / "a")
    assert first == installation_id(tmp_path / "b")
    assert not (tmp_path / "a" / "installation-id").exists()  # nothing per worker
    monkeypatch.setenv("HANDOVER_STATE_URL", "postgresql://ops:other@db.example:5433/handover")
    assert installation_id(tmp_path / "a") == first  # the password is not part of it
    monkeypatch.setenv("HANDOVER_STATE_URL", "postgresql://ops@db.example:5433/other")
    assert installation_id(tmp_path / "a") != first
