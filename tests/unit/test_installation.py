"""The installation id: made once, private, the same for every caller."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

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
