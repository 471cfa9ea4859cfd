"""Datasets pulled from real sshd hosts into bundle volumes and backups, failures included."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from handover.bundle.age import X25519Identity
from handover.bundle.snapshot import snapshot_source
from handover.bundle.sshsig import SigningKey
from handover.bundle.writer import BundleWriter
from handover.connectors.ssh.connector import SSHConnector
from handover.connectors.ssh.url import ssh_source_from_url
from handover.contract.perimeter import Host
from handover.errors import ConnectorError, PermanentConnectorError, TransientConnectorError
from handover.operations.backup import LocalBackupStore, run_backup
from handover.operations.restore_check import restore_check
from tests.conftest import require_binary
from tests.fixtures.sshd import SshdFactory, SshdHost

pytestmark = pytest.mark.integration

CONTRACT = "acme-test"
ODD_NAMES = [
    "with space.txt",
    "it's quoted.txt",
    'double "quote".txt',
    "$HOME and `cmd` ;rm -rf x",
    "ünïcødé — €.txt",
    "-starts-with-dash",
    "*glob?[x]",
    "back\\slash",
]


def connect(host: SshdHost, **options: object) -> SSHConnector:
    options.setdefault("retry_delay_s", 0.05)
    return SSHConnector.from_host(
        Host.model_validate(host.host_dict()),
        CONTRACT,
        **options,  # type: ignore[arg-type]
    )


def make_tree(root: Path, owner: SshdHost | None = None, *, big_bytes: int = 3_000_000) -> Path:
    """A small tree with odd names, nested folders, an empty file, a symlink and a larger file."""
    if root.exists():
        shutil.rmtree(root)
    (root / "nested" / "deeper dir").mkdir(parents=True)
    for index, name in enumerate(ODD_NAMES):
        (root / name).write_bytes(f"{index}:{name}\n".encode() * (index + 1))
    (root / "nested" / "deeper dir" / "empty").write_bytes(b"")
    (root / "nested" / ("long-" + "n" * 150 + ".bin")).write_bytes(os.urandom(1000))
    (root / "nested" / "big.bin").write_bytes(os.urandom(big_bytes))
    (root / "link").symlink_to("nested/big.bin")
    if owner is not None:
        subprocess.run(["chown", "-R", f"{owner.user}:", str(root)], check=True)
    return root


def make_large_files(
    root: Path, count: int, owner: SshdHost | None = None, *, mib: int = 64
) -> Path:
    """`count` files of `mib` MiB under `root` (a random MiB repeated): transfers cut midway."""
    root.mkdir()
    block = os.urandom(1 << 20)
    for index in range(count):
        with open(root / f"part-{index}.bin", "wb") as handle:
            for _ in range(mib):
                handle.write(block)
    if owner is not None:
        subprocess.run(["chown", "-R", f"{owner.user}:", str(root)], check=True)
    return root


def expected_hashes(root: Path) -> dict[str, str]:
    """member path (relative to /) -> sha256, for every regular file under `root`."""
    out: dict[str, str] = {}
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            out[str(path).lstrip("/")] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def file_hashes(members: list) -> dict[str, str]:  # type: ignore[type-arg]
    return {m.path: m.sha256 for m in members if m.type == "file"}


def keys(tmp_path: Path) -> tuple[X25519Identity, SigningKey, Path]:
    identity = X25519Identity.generate()
    key_file = tmp_path / "client.key"
    key_file.write_text(str(identity) + "\n")
    return identity, SigningKey.generate(), key_file


def open_volume_with_age(volume: Path, key_file: Path, into: Path) -> None:
    """What a client does: `age -d -i KEY VOLUME | tar -x`, then `sha256sum -c SHA256SUMS`."""
    require_binary("age", "age")
    into.mkdir()
    age = subprocess.Popen(["age", "-d", "-i", str(key_file), str(volume)], stdout=subprocess.PIPE)
    subprocess.run(["tar", "-xf", "-", "-C", str(into)], stdin=age.stdout, check=True)
    assert age.wait() == 0
    check = subprocess.run(
        ["sha256sum", "-c", "--strict", "SHA256SUMS"], cwd=into, capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr


def test_export_to_bundle_opens_with_age_and_sha256sum(
    sshd_nosudo: SshdHost, tmp_path: Path
) -> None:
    tree = make_tree(sshd_nosudo.data_root / f"export-{time.time_ns()}", sshd_nosudo)
    identity, signer, key_file = keys(tmp_path)
    writer = BundleWriter(tmp_path / "bundle", [identity.recipient()], signer)
    with connect(sshd_nosudo) as conn:
        record = writer.add_volume(conn.tree_source("nosudo-www", [str(tree)]))
    assert file_hashes(record.members) == expected_hashes(tree)
    assert record.origin == f"ssh://handover-nosudo@127.0.0.1:{sshd_nosudo.port}{tree}"
    writer.finish()
    volume = tmp_path / "bundle" / record.file
    open_volume_with_age(volume, key_file, tmp_path / "opened")
    opened = tmp_path / "opened" / str(tree).lstrip("/")
    for name in ODD_NAMES:
        assert (opened / name).read_bytes() == (tree / name).read_bytes()
    assert os.readlink(opened / "link") == "nested/big.bin"


def test_sftp_only_fallback_gives_the_same_members_as_tar(
    sshd_sftponly: SshdHost, sshd_shell: SshdHost
) -> None:
    tree = make_tree(sshd_sftponly.data_root / f"sftp-{time.time_ns()}", sshd_sftponly)
    with connect(sshd_sftponly) as conn:
        assert not conn.has_shell()
        by_sftp = snapshot_source(conn.tree_source("sftp", [str(tree)]))
    with connect(sshd_shell) as conn:  # root may read the same folder with a real tar
        by_tar = snapshot_source(conn.tree_source("tar", [str(tree)]))

    def facts(members: list) -> list[tuple[str, str, int, str | None]]:  # type: ignore[type-arg]
        return sorted((m.path, m.type, m.size, m.sha256) for m in members)

    assert facts(by_sftp) == facts(by_tar)
    assert file_hashes(by_sftp) == expected_hashes(tree)


def test_sftp_only_missing_path_fails_clearly(sshd_sftponly: SshdHost) -> None:
    with connect(sshd_sftponly) as conn, pytest.raises(ConnectorError, match="no-such"):
        snapshot_source(conn.tree_source("x", [str(sshd_sftponly.data_root / "no-such")]))


def test_remote_tar_failure_names_host_and_reason(sshd_nosudo: SshdHost) -> None:
    with connect(sshd_nosudo) as conn:
        with pytest.raises(ConnectorError) as caught:
            snapshot_source(conn.tree_source("x", ["/root"]))  # not readable by this user
        assert caught.value.host == "nosudo"
        assert "exit status 2" in str(caught.value) and "Permission denied" in str(caught.value)
        # The connection is still usable after a failed stream.
        assert conn.run("true").exit_status == 0


def test_dump_source_streams_one_member_and_cleans_up(
    sshd_nosudo: SshdHost, tmp_path: Path
) -> None:
    marker = sshd_nosudo.data_root / f"dump-target-{time.time_ns()}"
    command = (
        f'p=$(readlink /proc/$$/fd/1); echo "$p" > {marker}; '
        "printf 'CREATE TABLE t;\\n%.0s' $(seq 1000)"
    )
    with connect(sshd_nosudo) as conn:
        members = snapshot_source(conn.dump_source("db", command, "acme.sql"))
        assert [(m.path, m.size) for m in members] == [("acme.sql", 16 * 1000)]
        assert members[0].sha256 == hashlib.sha256(b"CREATE TABLE t;\n" * 1000).hexdigest()
        temp_file = Path(marker.read_text().strip())
        assert temp_file.name == "acme.sql" and not temp_file.parent.exists()
        with pytest.raises(ConnectorError, match="dump command exited with status 7"):
            snapshot_source(conn.dump_source("db", "echo partial; exit 7", "acme.sql"))


def test_dump_refused_on_sftp_only_account(sshd_sftponly: SshdHost) -> None:
    with connect(sshd_sftponly) as conn, pytest.raises(PermanentConnectorError, match="SFTP"):
        snapshot_source(conn.dump_source("db", "true", "x.sql"))


def test_backup_over_ssh_restores(sshd_shell: SshdHost, tmp_path: Path) -> None:
    tree = make_tree(sshd_shell.data_root / f"backup-{time.time_ns()}")
    identity = X25519Identity.generate()
    store = LocalBackupStore(tmp_path / "backups")
    with connect(sshd_shell) as conn:
        record = run_backup(
            store,
            CONTRACT,
            "www",
            conn.tree_source("shell-www", [str(tree)]),
            [identity.recipient()],
        )
    assert record.file_count == len(expected_hashes(tree))
    result = restore_check(store, record, [identity])
    assert result.ok, result.problems


def test_url_source_for_seal(sshd_shell: SshdHost, tmp_path: Path) -> None:
    tree = make_tree(sshd_shell.data_root / f"url dir-{time.time_ns()}")
    known = sshd_shell.write_known_hosts(tmp_path / "known_hosts")
    url = f"ssh://root@127.0.0.1:{sshd_shell.port}{str(tree).replace(' ', '%20')}"
    source = ssh_source_from_url(url, known, sshd_shell.key_path, "shell-url")
    assert source.label == "shell-url" and source.origin.endswith(str(tree))
    assert file_hashes(snapshot_source(source)) == expected_hashes(tree)
    stranger = ssh_source_from_url(url, tmp_path / "empty_known_hosts", sshd_shell.key_path, "x")
    with pytest.raises(PermanentConnectorError, match="not pinned"):
        snapshot_source(stranger)


def test_sshd_killed_mid_transfer_leaves_no_complete_volume_and_rerun_succeeds(
    sshd_factory: SshdFactory, tmp_path: Path
) -> None:
    host = sshd_factory.start("crashy")
    tree = make_large_files(host.data_root / "large", 4)
    identity, signer, _ = keys(tmp_path)
    seen = 0
    killed = threading.Event()

    def kill_after_some_data(count: int) -> None:
        nonlocal seen
        seen += count
        if seen > 32 * 1024 * 1024 and not killed.is_set():
            killed.set()
            host.kill()

    writer = BundleWriter(
        tmp_path / "bundle", [identity.recipient()], signer, progress=kill_after_some_data
    )
    with connect(host) as conn, pytest.raises(TransientConnectorError) as caught:
        writer.add_volume(conn.tree_source("crashy-large", [str(tree)]))
    assert killed.is_set()
    assert "connection lost" in str(caught.value) and caught.value.host == "crashy"
    assert list((tmp_path / "bundle").rglob("*.tar.age")) == []

    host.start()  # same port, same host key
    writer = BundleWriter(tmp_path / "bundle", [identity.recipient()], signer)
    with connect(host) as conn:
        record = writer.add_volume(conn.tree_source("crashy-large", [str(tree)]))
    assert file_hashes(record.members) == expected_hashes(tree)
    assert not [p for p in (tmp_path / "bundle").rglob("*") if p.name.endswith(".tmp")]


@pytest.mark.slow
def test_one_gib_file_arrives_whole_with_its_hash(sshd_shell: SshdHost, tmp_path: Path) -> None:
    tree = sshd_shell.data_root / f"gib-{time.time_ns()}"
    tree.mkdir()
    digest = hashlib.sha256()
    block = os.urandom(1 << 20)
    with open(tree / "one.gib", "wb") as handle:
        for index in range(1024):
            chunk = index.to_bytes(8, "big") + block[8:]
            handle.write(chunk)
            digest.update(chunk)
    identity, signer, _ = keys(tmp_path)
    writer = BundleWriter(tmp_path / "bundle", [identity.recipient()], signer)
    try:
        with connect(sshd_shell) as conn:
            record = writer.add_volume(conn.tree_source("shell-gib", [str(tree)]))
    finally:
        shutil.rmtree(tree)
    [member] = [m for m in record.members if m.type == "file"]
    assert (member.size, member.sha256) == (1 << 30, digest.hexdigest())
    assert record.size > 1 << 30
