"""Shared test configuration.

Fixtures for the real components live in tests/fixtures/ (one module each:
sshd, s3, prefect_server) and are loaded as plugins here. A test that needs
a missing binary fails with the command that installs it: nothing is skipped.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

# The CLI's rich consoles are made when handover.cli is first imported, and take
# their width from COLUMNS then (80 when output is not a terminal). Which test
# imports it first depends on the order and on the xdist worker, so the width
# is fixed here, before any import, wide enough that no asserted cell wraps.
os.environ["COLUMNS"] = "200"

pytest_plugins = [
    "tests.fixtures.sshd",
    "tests.fixtures.s3",
    "tests.fixtures.prefect_server",
    "tests.fixtures.postgres",
    "tests.state_stores",  # store_kind/location/state/workers: a test run on each state store
]

PROJECT_ROOT = Path(__file__).resolve().parent.parent
VECTORS_DIR = PROJECT_ROOT / "tests" / "data" / "age"  # C2SP CCTV, see its README.md


def require_binary(name: str, package: str) -> str:
    """Return the path of `name`, or fail the test saying how to install it."""
    path = shutil.which(name) or (
        f"/usr/sbin/{name}" if Path(f"/usr/sbin/{name}").exists() else None
    )
    if path is None:
        pytest.fail(f"{name} not found: install it with `apt-get install -y {package}`")
    return path


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Each test starts without the caller's AWS settings and with its own HANDOVER_HOME.

    PREFECT_* variables are kept: the prefect_server fixture sets them for the session.
    """
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HANDOVER_HOME", str(tmp_path / "handover-home"))
    yield
