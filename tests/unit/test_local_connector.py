"""LocalConnector: commands, the real inventory of this machine, dump and tree sources, files."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from handover.bundle.types import VolumeSource
from handover.connectors.base import CommandResult, HostConnector
from handover.connectors.factory import connect_host
from handover.connectors.local import LocalConnector, LocalDumpSource
from handover.contract.perimeter import Host
from handover.errors import (
    ConnectorError,
    PermanentConnectorError,
    TransientConnectorError,
    UsageError,
)
from handover.estate.inventory_collect import collect_inventory
from tests.conftest import require_binary
from tests.unit.test_inventory import make_cert


def test_run_in_root_with_stdin_and_exit_status(tmp_path: Path) -> None:
    with LocalConnector("web01", tmp_path) as host:
        result = host.run("pwd; cat; echo oops >&2; exit 3", stdin=b"hello\n")
    assert isinstance(result, CommandResult)
    assert result.exit_status == 3 and not result.ok
    assert result.stdout == f"{tmp_path}\nhello\n".encode()
    assert result.stderr_tail() == "oops"


def test_run_timeout_is_transient(tmp_path: Path) -> None:
    host = LocalConnector("web01", tmp_path)
    with pytest.raises(TransientConnectorError, match=r"web01: command timed out after 0.3 s"):
        host.run("sleep 5", timeout_s=0.3)


def test_missing_root_is_permanent(tmp_path: Path) -> None:
    host = LocalConnector("web01", tmp_path / "absent")
    with pytest.raises(PermanentConnectorError, match="is not a folder"):
        host.run("true")


def test_inventory_of_a_sandbox_root_with_its_certificates(tmp_path: Path) -> None:
    require_binary("sh", "dash")
    certs = tmp_path / "etc" / "ssl" / "demo"
    certs.mkdir(parents=True)
    cert = make_cert("web01.demo", datetime.now(UTC) + timedelta(days=30, hours=2))
    (certs / "web01.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))

    inv = collect_inventory(LocalConnector("web01", tmp_path), ["/etc/ssl/demo", "/etc/ssl/none"])

    assert inv.host == "web01"
    # A host standing in a folder: the folder's facts (none here), never this machine's.
    assert inv.kernel == "" and not inv.users and not inv.disks and not inv.packages
    assert any(note.startswith("disks: not measured") for note in inv.unreadable)
    assert [(c.path, c.days_left) for c in inv.certificates] == [("/etc/ssl/demo/web01.pem", 30)]
    assert "certificates: /etc/ssl/none: not found" in inv.unreadable  # shown as configured
    assert str(tmp_path) not in " ".join(inv.unreadable)


def read_single_member(source: VolumeSource) -> tuple[str, bytes]:
    with source.open_tar() as stream:
        data = stream.read()
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as archive:
        members = archive.getmembers()
        assert len(members) == 1
        handle = archive.extractfile(members[0])
        assert handle is not None
        return members[0].name, handle.read()


def test_dump_source_success_one_member_with_right_bytes(tmp_path: Path) -> None:
    payload_cmd = "printf 'CREATE TABLE t (id int);\\n'; head -c 700000 /dev/zero | tr '\\0' x"
    host = LocalConnector("db01", tmp_path)
    source = host.dump_source("db01-db", payload_cmd, "été dump.sql")
    expected = b"CREATE TABLE t (id int);\n" + b"x" * 700000

    name, data = read_single_member(source)

    assert name == "été dump.sql"
    assert hashlib.sha256(data).hexdigest() == hashlib.sha256(expected).hexdigest()
    assert source.label == "db01-db"


def test_dump_source_is_parsed_by_the_bundle_tar_parser(tmp_path: Path) -> None:
    from handover.bundle.pump import pump_tar
    from handover.bundle.tarparse import TarParser

    source = LocalConnector("db01", tmp_path).dump_source("db", "printf abc", "a.sql")
    parser = TarParser("db")
    with source.open_tar() as stream:
        pump_tar(stream, parser)
    members = parser.members()
    assert [(m.path, m.size, m.sha256) for m in members] == [
        ("a.sql", 3, hashlib.sha256(b"abc").hexdigest())
    ]


def test_dump_source_failure_raises_with_stderr_not_stdout(tmp_path: Path) -> None:
    before = set(os.listdir(tempfile.gettempdir()))
    source = LocalConnector("db01", tmp_path).dump_source(
        "db", "echo SECRET-ROWS; echo 'pg_dump: connection refused' >&2; exit 2", "db.sql"
    )
    with pytest.raises(ConnectorError) as caught, source.open_tar() as stream:
        stream.read()
    message = str(caught.value)
    assert message.startswith("db01: dump db.sql: command exited with status 2")
    assert "connection refused" in message and "SECRET-ROWS" not in message
    leftovers = set(os.listdir(tempfile.gettempdir())) - before
    assert [n for n in leftovers if n.startswith("handover-dump-")] == []  # temp folder gone


def test_dump_source_temp_folder_is_private_and_removed(tmp_path: Path) -> None:
    tmp_dir = tmp_path / "tmp"
    tmp_dir.mkdir()
    source = LocalDumpSource("db", "db01", tmp_path, "printf data", "d.sql", tmp_dir=tmp_dir)
    with source.open_tar() as stream:
        (private,) = list(tmp_dir.iterdir())
        assert private.stat().st_mode & 0o777 == 0o700
        stream.read()
    assert list(tmp_dir.iterdir()) == []


@pytest.mark.parametrize("bad", ["/abs.sql", "../up.sql", "", "dir/"])
def test_dump_source_refuses_bad_filenames(tmp_path: Path, bad: str) -> None:
    with pytest.raises(UsageError, match="dump filename"):
        LocalConnector("db01", tmp_path).dump_source("db", "true", bad)


def test_tree_source_is_a_local_path_source_under_root(tmp_path: Path) -> None:
    from handover.bundle.local import LocalPathSource

    (tmp_path / "var" / "www").mkdir(parents=True)
    (tmp_path / "var" / "www" / "index.html").write_text("<h1>hi</h1>")
    source = LocalConnector("web01", tmp_path).tree_source("web01-www", ["/var/www"])
    assert isinstance(source, LocalPathSource)
    with source.open_tar() as stream, tarfile.open(fileobj=stream, mode="r|") as archive:
        names = [m.name for m in archive]
    assert "var/www/index.html" in names


def test_read_and_write_files_under_root(tmp_path: Path) -> None:
    host = LocalConnector("web01", tmp_path)
    host.write_file("/home/ops/.ssh/authorized_keys", b"ssh-ed25519 AAAA ops\n")
    written = tmp_path / "home" / "ops" / ".ssh" / "authorized_keys"
    assert written.read_bytes() == b"ssh-ed25519 AAAA ops\n"
    assert written.stat().st_mode & 0o777 == 0o600
    assert host.read_file("/home/ops/.ssh/authorized_keys") == b"ssh-ed25519 AAAA ops\n"
    with pytest.raises(PermanentConnectorError, match=r"web01: /nope: no such file"):
        host.read_file("/nope")
    with pytest.raises(UsageError, match=r"'\.\.' is not allowed"):
        host.read_file("/etc/../../outside")


def test_connect_host_local_and_protocol(tmp_path: Path) -> None:
    spec = Host(name="web01", transport="local", root=str(tmp_path))
    connector = connect_host(spec, "acme-2026")
    assert isinstance(connector, LocalConnector) and connector.root == tmp_path
    assert isinstance(connector, HostConnector)
    default = connect_host(Host(name="db01", transport="local"), "acme-2026")
    assert isinstance(default, LocalConnector) and default.root == Path("/")
