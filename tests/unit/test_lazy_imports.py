"""paramiko is imported when SSH is used, not with the flows and tasks (issue #16).

The exit flow derives credentials.kdbx's 64 MiB Argon2 key early, before any
SSH connection: whatever its process imported sits under that peak, and
paramiko alone is ~5.6 MiB of RSS. Each check runs in a fresh interpreter,
since this test process has paramiko loaded already.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _imports_paramiko(modules: str) -> bool:
    """Whether importing `modules` (comma-separated) in a fresh interpreter loads paramiko."""
    result = subprocess.run(
        [sys.executable, "-c", f"import {modules}, sys; print('paramiko' in sys.modules)"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return result.stdout.strip().splitlines()[-1] == "True"


@pytest.mark.parametrize(
    "modules",
    [
        "flows.reversibility, flows.lifecycle, tasks.bundle",  # the exit's process
        "flows.serving, tasks.host_keys",  # every deployment, first contact
    ],
)
def test_flows_and_tasks_do_not_import_paramiko(modules: str) -> None:
    assert not _imports_paramiko(modules)


def test_the_ssh_connector_still_imports_it() -> None:
    """The check above can fail: the connector, a paramiko user, loads it."""
    assert _imports_paramiko("handover.connectors.ssh.connector")
