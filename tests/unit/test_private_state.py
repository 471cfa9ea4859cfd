"""Private by default: `.handover/` and what handover writes in it, whatever the umask (#12).

The modes are read back with `stat` after the writes, with a permissive umask
(022, the usual default, and 000, the worst), so a writer that leaves its mode
to the umask shows here.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import paramiko
import pytest

from handover.checklist.store import ChecklistStore
from handover.connectors.ssh.known_hosts import record_host_key
from handover.errors import UsageError
from handover.phases import Phase
from handover.state.atomic import (
    SHARED_FILE_MODE,
    atomic_writer,
    ensure_private_dir,
    write_atomic,
)
from handover.state.home import contract_dir, handover_home
from handover.state.layout import ContractPaths

CONTRACT = "acme-2026"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(params=[0o022, 0o000], ids=["umask022", "umask000"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def test_home_and_contract_folders_are_0700(umask: int) -> None:
    folder = contract_dir(CONTRACT)
    assert mode(handover_home()) == 0o700
    assert mode(folder.parent) == 0o700  # contracts/
    assert mode(folder) == 0o700


def test_a_home_made_wide_by_hand_is_tightened(umask: int) -> None:
    home = Path(os.environ["HANDOVER_HOME"])
    home.mkdir(mode=0o755)
    os.chmod(home, 0o755)
    (home / "contracts").mkdir(mode=0o755)
    os.chmod(home / "contracts", 0o755)
    contract_dir(CONTRACT)
    assert mode(home) == 0o700
    assert mode(home / "contracts") == 0o700


def test_atomic_writes_are_0600_in_0700_folders(umask: int, tmp_path: Path) -> None:
    target = tmp_path / "state" / "deep" / "file.json"
    write_atomic(target, b"{}")
    assert target.read_bytes() == b"{}"
    assert mode(target) == 0o600
    assert mode(target.parent) == 0o700
    assert mode(target.parent.parent) == 0o700


def test_replacing_a_world_readable_file_makes_it_private(umask: int, tmp_path: Path) -> None:
    target = tmp_path / "old.json"
    target.write_bytes(b"old")
    os.chmod(target, 0o644)
    with atomic_writer(target) as handle:
        handle.write(b"new")
    assert target.read_bytes() == b"new"
    assert mode(target) == 0o600


def test_a_file_meant_for_others_keeps_its_explicit_mode(umask: int, tmp_path: Path) -> None:
    target = tmp_path / "delivery" / "acme.exit" / "exit-report.md"
    write_atomic(target, b"report", mode=SHARED_FILE_MODE)
    assert mode(target) == 0o644
    assert mode(target.parent) == 0o755  # reachable, or the shared file would not be


def test_no_temporary_file_is_left_and_none_was_readable(umask: int, tmp_path: Path) -> None:
    target = tmp_path / "f"
    seen: list[int] = []
    with atomic_writer(target) as handle:
        handle.write(b"x")
        temps = [p for p in tmp_path.iterdir() if p.name.startswith(".f.")]
        seen = [mode(p) for p in temps]
    assert seen == [0o600]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]


def test_ensure_private_dir_leaves_existing_parents_alone(umask: int, tmp_path: Path) -> None:
    os.chmod(tmp_path, 0o755)
    made = ensure_private_dir(tmp_path / "a" / "b")
    assert made.is_dir()
    assert mode(tmp_path) == 0o755
    assert mode(tmp_path / "a") == 0o700 and mode(made) == 0o700


def test_checklists_audit_log_and_checkpoints_are_private(umask: int) -> None:
    store = ChecklistStore()
    store.open(
        CONTRACT,
        Phase.TAKEOVER,
        [
            {
                "id": "inventory",
                "title": "Inventory",
                "clause": "1",
                "owner": "provider",
                "evidence_kind": "inventory",
            }
        ],
    )
    store.start(CONTRACT, Phase.TAKEOVER, "inventory", "tester")
    paths = ContractPaths(CONTRACT)
    written = [paths.checklist_file(Phase.TAKEOVER), paths.audit_log]
    for path in written:
        assert path.exists(), path
        assert mode(path) == 0o600, path
    assert mode(paths.checklists_dir) == 0o700
    # Everything under the contract folder: no file readable or writable by others.
    for path in paths.root.rglob("*"):
        assert mode(path) & 0o077 == 0, path


def test_a_new_known_hosts_is_private_an_existing_one_keeps_its_mode(
    umask: int, tmp_path: Path
) -> None:
    host_key = paramiko.ECDSAKey.generate()
    fresh = ContractPaths(CONTRACT).known_hosts
    record_host_key(fresh, "192.0.2.10", 22, host_key)
    assert mode(fresh) == 0o600
    own = tmp_path / "known_hosts"
    own.write_text("")
    os.chmod(own, 0o644)
    record_host_key(own, "192.0.2.10", 22, host_key)
    assert "192.0.2.10" in own.read_text()
    assert mode(own) == 0o644


def test_a_state_folder_that_cannot_be_made_private_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Someone else's folder as HANDOVER_HOME: a one-line usage error, not a wide-open state."""
    home = Path(os.environ["HANDOVER_HOME"])
    home.mkdir()
    os.chmod(home, 0o755)

    def refuse(path: object, mode: int) -> None:
        raise PermissionError(1, "Operation not permitted", str(path))

    monkeypatch.setattr("handover.state.home.os.chmod", refuse)
    with pytest.raises(UsageError) as caught:
        handover_home()
    message = str(caught.value)
    assert message.startswith(f"{home}: handover's state must be private (mode 0700)")
    assert "Operation not permitted" in message and "HANDOVER_HOME" in message
    assert caught.value.exit_code == 2


def test_an_empty_handover_home_is_refused_not_taken_for_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from handover.state.home import handover_home

    monkeypatch.chdir(tmp_path)
    before = tmp_path.stat().st_mode & 0o777
    monkeypatch.setenv("HANDOVER_HOME", " ")
    with pytest.raises(UsageError, match="HANDOVER_HOME is set but empty"):
        handover_home()
    assert tmp_path.stat().st_mode & 0o777 == before
