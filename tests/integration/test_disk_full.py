"""Writers on a real full file system: a 4 MiB tmpfs mounted for each test.

Each writer must fail with one DiskFull line naming the file, the file
system, the bytes written and the space left (and the space needed when it
knows it), and leave neither a temporary file nor a complete-looking one.
Mounting needs root (CAP_SYS_ADMIN); as elsewhere in the suite, a missing
capability fails the test with what it needs rather than skipping it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import pytest

from handover.bundle.age import X25519Identity
from handover.bundle.local import DirectoryTarget, LocalPathSource
from handover.bundle.sshsig import SigningKey
from handover.bundle.writer import BundleWriter
from handover.contract.loader import load_playbook
from handover.contract.playbook import Playbook
from handover.contract.reversibility import Delivery
from handover.errors import DiskFull
from handover.exit import delivery as delivery_module
from handover.exit.delivery import bundle_target, copy_to_delivery_folder
from handover.operations.backup import LocalBackupStore, run_backup
from handover.state.atomic import write_atomic
from tests.conftest import require_binary

pytestmark = pytest.mark.integration

SIZE_MIB = 4
PLAYBOOK = Path("playbooks/examples/acme.yaml")


@pytest.fixture
def tiny_fs(tmp_path: Path) -> Iterator[Path]:
    """A fresh 4 MiB tmpfs at `tmp_path/tiny`, unmounted after the test."""
    mount = require_binary("mount", "mount")
    point = tmp_path / "tiny"
    point.mkdir()
    done = subprocess.run(
        [mount, "-t", "tmpfs", "-o", f"size={SIZE_MIB}m,mode=0755", "tmpfs", str(point)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(
            "mounting a tmpfs needs root or CAP_SYS_ADMIN (run the integration tests as "
            f"root or in a privileged container): {done.stderr.strip()}"
        )
    try:
        yield point
    finally:
        subprocess.run(["umount", "-l", str(point)], check=False)


def random_tree(root: Path, mib: int) -> Path:
    """A folder holding `mib` MiB of random bytes (incompressible, like age output)."""
    data = root / "data"
    data.mkdir(parents=True)
    (data / "big.bin").write_bytes(os.urandom(mib << 20))
    return data


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def assert_one_line_naming(error: DiskFull, path: Path, mount: Path) -> None:
    message = str(error)
    assert "\n" not in message
    assert message.startswith(f"{path}: disk full on {mount} (tmpfs): ")
    assert "written" in message and "free" in message
    assert error.path == str(path)


def test_a_bundle_volume_on_a_full_disk_names_file_and_file_system(
    tmp_path: Path, tiny_fs: Path
) -> None:
    data = random_tree(tmp_path, 2 * SIZE_MIB)
    writer = BundleWriter(
        DirectoryTarget(tiny_fs / "bundle"),
        [X25519Identity.generate().recipient()],
        SigningKey.generate(),
    )
    with pytest.raises(DiskFull) as caught:
        writer.add_volume(LocalPathSource("web01-www", tmp_path, [data.name]))
    volume = tiny_fs / "bundle" / "volumes" / "0001-web01-www.tar.age"
    assert_one_line_naming(caught.value, volume, tiny_fs)
    # Most of the 4 MiB went in before the disk filled; the message says how much.
    assert (2 << 20) < caught.value.written <= SIZE_MIB << 20
    assert caught.value.free is not None and caught.value.free < (1 << 20)
    assert caught.value.needed is None  # an encrypted stream's size is not known ahead
    assert files_under(tiny_fs) == []  # no .tmp, no volume under its final name


def test_the_index_on_a_full_disk_leaves_no_index_and_no_signature(
    tmp_path: Path, tiny_fs: Path
) -> None:
    (tmp_path / "small").mkdir()
    (tmp_path / "small" / "a.txt").write_text("client data")
    writer = BundleWriter(
        DirectoryTarget(tiny_fs / "bundle"),
        [X25519Identity.generate().recipient()],
        SigningKey.generate(),
    )
    record = writer.add_volume(LocalPathSource("files", tmp_path, ["small"]))
    with pytest.raises(DiskFull) as caught:
        writer.finish({"audit/log.jsonl": os.urandom(2 * SIZE_MIB << 20)})
    assert_one_line_naming(caught.value, tiny_fs / "bundle" / "index.tar.age", tiny_fs)
    # The complete volume stays (a resumed seal adopts it); nothing says "finished".
    assert files_under(tiny_fs / "bundle") == [record.file]


def test_an_atomic_state_write_on_a_full_disk_keeps_the_old_file(tiny_fs: Path) -> None:
    state = tiny_fs / "contract" / "checklist.json"
    write_atomic(state, b'{"old": true}\n')
    with pytest.raises(DiskFull) as caught:
        write_atomic(state, os.urandom(2 * SIZE_MIB << 20))
    assert_one_line_naming(caught.value, state, tiny_fs)
    assert caught.value.needed == 2 * SIZE_MIB << 20
    assert str(caught.value).endswith(", 8.0 MiB needed")
    assert state.read_bytes() == b'{"old": true}\n'
    assert files_under(tiny_fs) == ["contract/checklist.json"]


def _delivered_to(folder: Path) -> Playbook:
    playbook = load_playbook(PLAYBOOK)
    delivery = Delivery(kind="local", path=str(folder))
    reversibility = playbook.reversibility.model_copy(update={"delivery": delivery})
    return playbook.model_copy(update={"reversibility": reversibility})


def _seal(playbook: Playbook, data: Path, name: str) -> Path:
    target = bundle_target(playbook, name)
    assert isinstance(target, DirectoryTarget)
    writer = BundleWriter(target, [X25519Identity.generate().recipient()], SigningKey.generate())
    writer.add_volume(LocalPathSource("web01-www", data.parent, [data.name]))
    writer.finish()
    return target.path


def test_a_delivery_too_big_for_its_folder_is_refused_before_copying(
    tmp_path: Path, tiny_fs: Path
) -> None:
    playbook = _delivered_to(tiny_fs / "deliveries")
    sealed = _seal(playbook, random_tree(tmp_path, 2 * SIZE_MIB), "bundle-1")
    size = sum(p.stat().st_size for p in sealed.rglob("*") if p.is_file())
    with pytest.raises(DiskFull) as caught:
        copy_to_delivery_folder(playbook, "bundle-1")
    message = str(caught.value)
    assert message.startswith(f"{tiny_fs / 'deliveries'}: disk full on {tiny_fs} (tmpfs): ")
    assert "nothing written" in message and caught.value.needed == size
    assert files_under(tiny_fs) == []


def test_a_delivery_copy_that_fills_the_disk_names_the_file_and_leaves_nothing(
    tmp_path: Path, tiny_fs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    playbook = _delivered_to(tiny_fs / "deliveries")
    sealed = _seal(playbook, random_tree(tmp_path, 2 * SIZE_MIB), "bundle-2")
    size = sum(p.stat().st_size for p in sealed.rglob("*") if p.is_file())
    # As if the space had been there at the check and gone since: the copy meets ENOSPC.
    monkeypatch.setattr(delivery_module, "require_space", lambda path, needed: None)
    with pytest.raises(DiskFull) as caught:
        copy_to_delivery_folder(playbook, "bundle-2")
    partial = tiny_fs / "deliveries" / ".bundle-2.partial"
    assert_one_line_naming(caught.value, partial / "volumes" / "0001-web01-www.tar.age", tiny_fs)
    assert caught.value.needed == size and 0 < caught.value.written < size
    assert str(caught.value).endswith(f"{caught.value.needed / (1 << 20):.1f} MiB needed")
    assert files_under(tiny_fs) == [] and not partial.exists()


def test_a_backup_on_a_full_disk_leaves_nothing_under_its_name(
    tmp_path: Path, tiny_fs: Path
) -> None:
    data = random_tree(tmp_path, 2 * SIZE_MIB)
    store = LocalBackupStore(tiny_fs / "backups")
    source = LocalPathSource("files01-docs", tmp_path, [data.name])
    recipients = [X25519Identity.generate().recipient()]
    with pytest.raises(DiskFull) as caught:
        run_backup(store, "acme-2026", "docs", source, recipients)
    assert caught.value.path.startswith(str(tiny_fs / "backups" / "acme-2026" / "docs"))
    assert caught.value.path.endswith(".tar.age")
    assert_one_line_naming(caught.value, Path(caught.value.path), tiny_fs)
    assert store.list("acme-2026/") == [] and files_under(tiny_fs / "backups") == []


class _FillBeforeRecords(LocalBackupStore):
    """A local store whose disk fills up between a backup's volume and its record."""

    @contextlib.contextmanager
    def put(self, name: str) -> Iterator[BinaryIO]:
        if name.endswith(".json"):
            _fill(self.folder / "filler")
        with super().put(name) as handle:
            yield handle


def _fill(path: Path) -> None:
    with open(path, "wb", buffering=0) as handle:
        try:
            while True:
                handle.write(b"\0" * 65536)
                handle.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC


def test_a_backup_whose_record_does_not_fit_loses_its_volume_too(
    tmp_path: Path, tiny_fs: Path
) -> None:
    (tmp_path / "small").mkdir()
    (tmp_path / "small" / "a.txt").write_text("client data")
    store = _FillBeforeRecords(tiny_fs / "backups")
    source = LocalPathSource("files01-docs", tmp_path, ["small"])
    with pytest.raises(DiskFull) as caught:
        run_backup(store, "acme-2026", "docs", source, [X25519Identity.generate().recipient()])
    assert caught.value.path.endswith(".json")
    assert store.list("acme-2026/") == []  # a volume without its record is gone too
    assert files_under(tiny_fs / "backups") == ["filler"]
