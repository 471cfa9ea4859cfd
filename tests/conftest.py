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


#: The test files that take minutes, longest first (summed test times of a full run, 2 workers,
#: 2026-12-04). `make test` runs `pytest -n auto --dist loadfile --no-loadscope-reorder`: each
#: file runs whole on one worker, and the files are handed out in collection order. Without
#: `--no-loadscope-reorder`, pytest-xdist hands them out by number of tests, most first, so the
#: one-test files that take minutes (test_two_workers.py) started last and ran alone at the end.
SLOW_FILES = (
    "tests/integration/test_lifecycle_remote.py",
    "tests/integration/test_exit_kill.py",
    "tests/integration/test_s3_large.py",
    "tests/integration/test_two_workers.py",
    "tests/integration/test_deployments_readme.py",
    "tests/integration/test_exit_safety.py",
    "tests/integration/test_bundle_tools.py",
    "tests/integration/test_auditor_ui.py",
    "tests/integration/test_signed_acceptance.py",
    "tests/integration/test_flows_local.py",
    "tests/integration/test_redis_replicas.py",
    "tests/integration/test_patching.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Slow files first, in SLOW_FILES order; each file's tests and the other files as collected."""
    rank = {path: place for place, path in enumerate(SLOW_FILES)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(SLOW_FILES)))
