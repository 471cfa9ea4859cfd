"""Local seams: GNU tar as a volume source, bundle folders as target and source."""

from __future__ import annotations

import errno
import os
import threading
from pathlib import Path

import pytest

from handover.bundle import local
from handover.bundle.local import (
    EARLY_FSYNC_BYTES,
    DirectorySource,
    DirectoryTarget,
    LocalPathSource,
    local_path_source,
)
from handover.bundle.snapshot import snapshot_source
from handover.errors import BundleError, ConnectorError, DiskFull, UsageError
from tests.conftest import require_binary


def test_member_names_start_with_the_path_relative_to_root(tmp_path: Path) -> None:
    require_binary("tar", "tar")
    (tmp_path / "srv" / "www" / "sub").mkdir(parents=True)
    (tmp_path / "srv" / "www" / "sub" / "a").write_text("a")
    source = LocalPathSource("www", tmp_path, ["/srv/www"])  # absolute: taken under root
    assert source.paths == ["srv/www"]
    assert source.origin == f"local:{tmp_path}/srv/www"
    paths = [m.path for m in snapshot_source(source)]
    assert paths == ["srv/www", "srv/www/sub", "srv/www/sub/a"]


def test_dotdot_paths_are_refused(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"'\.\.' is not allowed"):
        LocalPathSource("x", tmp_path, ["www/../../etc"])


def test_missing_path_fails_with_tar_message(tmp_path: Path) -> None:
    require_binary("tar", "tar")
    with pytest.raises(ConnectorError, match=r"local: tar failed reading .*/gone"):
        snapshot_source(LocalPathSource("x", tmp_path, ["gone"]))
    with pytest.raises(UsageError, match="no such file or folder"):
        local_path_source("x", tmp_path / "gone")


def test_single_file_source(tmp_path: Path) -> None:
    require_binary("tar", "tar")
    (tmp_path / "dump.sql").write_text("select 1;")
    members = snapshot_source(local_path_source("db", tmp_path / "dump.sql"))
    assert [(m.path, m.size) for m in members] == [("dump.sql", 9)]


def test_hard_links_are_stored_as_files(tmp_path: Path) -> None:
    require_binary("tar", "tar")
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a").write_text("same")
    (tmp_path / "d" / "b").hardlink_to(tmp_path / "d" / "a")
    members = {m.path: m for m in snapshot_source(local_path_source("d", tmp_path / "d"))}
    assert members["d/b"].type == "file" and members["d/b"].sha256 == members["d/a"].sha256


def test_directory_target_renames_only_complete_files(tmp_path: Path) -> None:
    target = DirectoryTarget(tmp_path / "b")
    with pytest.raises(RuntimeError), target.open_write("volumes/0001-x.tar.age") as handle:
        handle.write(b"half")
        raise RuntimeError("crash")
    assert not target.exists("volumes/0001-x.tar.age")
    assert list((tmp_path / "b" / "volumes").iterdir()) == []
    with target.open_write("volumes/0001-x.tar.age") as handle:
        handle.write(b"whole")
    target.sync()
    assert (tmp_path / "b" / "volumes" / "0001-x.tar.age").read_bytes() == b"whole"
    (tmp_path / "b" / "volumes" / ".0002-y.tar.age.zz.tmp").write_bytes(b"")
    assert target.remove_partials() == ["volumes/.0002-y.tar.age.zz.tmp"]
    with pytest.raises(BundleError, match="not a relative path"):
        target.exists("../escape")


def _record_fsyncs(monkeypatch: pytest.MonkeyPatch, fail: str | None = None) -> list[str]:
    """Record the path of every fsync (through /proc); fail those of files named `fail`."""
    synced: list[str] = []
    lock = threading.Lock()

    def fsync(fd: int) -> None:
        path = os.readlink(f"/proc/self/fd/{fd}")
        if fail is not None and path.endswith(fail):
            raise OSError(errno.ENOSPC, "No space left on device")
        with lock:
            synced.append(path)

    monkeypatch.setattr(local.os, "fsync", fsync)
    return synced


def test_large_files_start_their_fsync_before_sync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced = _record_fsyncs(monkeypatch)
    target = DirectoryTarget(tmp_path / "b")
    with target.open_write("volumes/0001-big.tar.age") as handle:
        handle.write(b"v" * EARLY_FSYNC_BYTES)
    with target.open_write("README.txt") as handle:
        handle.write(b"small")
    big = str(tmp_path / "b" / "volumes" / "0001-big.tar.age")
    for _ in range(500):  # the early fsync runs on its own thread
        if big in synced:
            break
        threading.Event().wait(0.01)
    assert synced == [big]  # before sync(), and not the small file
    target.sync()
    assert sorted(synced) == sorted(
        [
            big,
            str(tmp_path / "b" / "README.txt"),
            str(tmp_path / "b"),
            str(tmp_path / "b" / "volumes"),
        ]
    )
    synced.clear()
    target.sync()  # nothing new written: nothing flushed twice
    assert synced == []


def test_an_early_fsync_failure_surfaces_at_sync_and_removes_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _record_fsyncs(monkeypatch, fail="0001-big.tar.age")
    target = DirectoryTarget(tmp_path / "b")
    with target.open_write("volumes/0001-big.tar.age") as handle:
        handle.write(b"v" * EARLY_FSYNC_BYTES)
    with pytest.raises(DiskFull, match=r"0001-big\.tar\.age"):
        target.sync()
    assert not target.exists("volumes/0001-big.tar.age")


def test_directory_source_lists_relative_paths(tmp_path: Path) -> None:
    (tmp_path / "volumes").mkdir()
    (tmp_path / "volumes" / "v").write_bytes(b"1")
    (tmp_path / "README.txt").write_bytes(b"2")
    source = DirectorySource(tmp_path)
    assert list(source.list_files()) == ["README.txt", "volumes/v"]
    with pytest.raises(BundleError, match="missing"), source.open_read("nope"):
        pass
    with pytest.raises(UsageError, match="not a bundle folder"):
        DirectorySource(tmp_path / "absent")
