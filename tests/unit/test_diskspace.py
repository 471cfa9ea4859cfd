"""The DiskFull message every writer shares: found behind other errors, said on one line.

A real ENOSPC comes from /dev/full (writes to it always fail that way, no
privilege needed); the writers on a full file system are in
tests/integration/test_disk_full.py.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from handover.errors import DiskFull, HandoverError
from handover.state.diskspace import (
    disk_full_cause,
    disk_full_error,
    disk_full_from,
    filesystem_of,
    require_space,
)


def enospc() -> OSError:
    """The OSError a write to a full device raises, for real."""
    with open("/dev/full", "wb", buffering=0) as full:
        try:
            full.write(b"x")
        except OSError as exc:
            return exc
    raise AssertionError("/dev/full accepted a write")


def test_the_cause_is_found_behind_an_error_raised_during_cleanup() -> None:
    cause = enospc()
    assert cause.errno == errno.ENOSPC
    try:
        try:
            raise cause
        except OSError:
            raise RuntimeError("bundle: aborted") from None
    except RuntimeError as hidden:
        assert hidden.__context__ is cause
        assert disk_full_cause(hidden) is cause
    assert disk_full_cause(OSError(errno.EACCES, "Permission denied")) is None


def test_the_message_names_file_file_system_written_free_and_needed(tmp_path: Path) -> None:
    target = tmp_path / "volumes" / "0001-www.tar.age"  # the folder need not exist
    error = disk_full_error(target, 3 << 20, 12 << 20, cause=enospc())
    assert isinstance(error, HandoverError) and error.exit_code == 1
    message = str(error)
    assert "\n" not in message
    assert message.startswith(f"{target}: disk full on {filesystem_of(tmp_path)}: ")
    assert ": 3.0 MiB written, " in message and message.endswith(" free, 12.0 MiB needed")
    assert (error.path, error.written, error.needed) == (str(target), 3 << 20, 12 << 20)
    assert error.free is not None and error.free > 0


def test_a_quota_says_quota_and_nothing_written_says_so(tmp_path: Path) -> None:
    quota = OSError(errno.EDQUOT, os.strerror(errno.EDQUOT))
    message = str(disk_full_error(tmp_path / "f", 0, cause=quota))
    assert ": disk quota exceeded on " in message and ": nothing written, " in message
    assert "needed" not in message


def test_the_file_system_is_the_mount_point_holding_the_path(tmp_path: Path) -> None:
    described = filesystem_of(tmp_path / "not" / "there")
    mount = described.split(" (")[0]
    assert os.path.ismount(mount) and str(tmp_path).startswith(mount)


def test_an_existing_disk_full_passes_through_untouched(tmp_path: Path) -> None:
    inner = disk_full_error(tmp_path / "inner", 10, cause=enospc())
    assert disk_full_from(inner, tmp_path / "outer", 20) is None
    outer = disk_full_from(enospc(), tmp_path / "outer", 20)
    assert outer is not None and outer.path == str(tmp_path / "outer")
    assert disk_full_from(ValueError("no"), tmp_path / "outer", 20) is None


def test_require_space_refuses_what_cannot_fit(tmp_path: Path) -> None:
    require_space(tmp_path, 1)
    with pytest.raises(DiskFull, match=r"nothing written, .* free, 1024\.0 PiB needed"):
        require_space(tmp_path, 1 << 60)
