"""Fixtures that run a test once per contract-state store: the local folder, then PostgreSQL.

Loaded as a plugin by tests/conftest.py, used by the store tests (test_pg_store,
test_pg_blobs); a test module's own fixture of the same name wins. `state` is a
fresh store of the kind, `location` what a child process needs to open the
same one (a contracts folder or a database URL), `workers` the child
processes a test starts, killed at its end.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from handover.checklist.local_store import LocalStore
from handover.state.postgres import PostgresStore
from handover.state.store import ContractStore


@pytest.fixture(params=["local", "postgres"])
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def location(store_kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where the state lives: a contracts folder, or a fresh database's URL."""
    if store_kind == "postgres":
        return str(request.getfixturevalue("pg_url"))
    return str(tmp_path / "contracts")


@pytest.fixture
def state(store_kind: str, location: str) -> ContractStore:
    if store_kind == "postgres":
        return PostgresStore(location)
    return LocalStore(Path(location))


@pytest.fixture
def workers() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=60)
