"""A client follows README.txt to the letter: its command lines run as written, in bash.

The bundle is sealed the way an exit seals it (local tree and dump sources,
a French contract's facts: credentials beside the bundle, a folder delivery),
with real age and ssh-keygen keys. The Linux lines (`    $ `) run in bash;
the macOS lines (`    % `) run too, with the `shasum` of Perl that macOS
also ships. The PostgreSQL restore lines (`    > `) run against a throwaway
PostgreSQL server on a Unix socket, on a real `pg_dump -Fc` sealed by the
local dump source. Windows lines need a system this machine does not have:
their text is checked by tests/unit/test_readme.py.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from handover.bundle.age import parse_recipient
from handover.bundle.readme import (
    COMMAND_PREFIX,
    DATABASE_PREFIX,
    KEY_PLACEHOLDER,
    MACOS_PREFIX,
    SIGNING_KEY_PLACEHOLDER,
    ReadmeContact,
    ReadmeFacts,
)
from handover.bundle.sshsig import SigningKey
from handover.bundle.writer import BundleWriter
from handover.connectors.local import LocalConnector
from tests.conftest import require_binary

pytestmark = pytest.mark.integration

BUNDLE = "acme-exit"
PASSWORD = "Kdbx-master-password-0123"
STATEMENT = "HANDOVER CLIENT ACCEPTANCE STATEMENT v1\nbundle: acme-exit\n"


@pytest.fixture(scope="module")
def sealed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    for name, package in [
        ("age", "age"),
        ("age-keygen", "age"),
        ("tar", "tar"),
        ("sha256sum", "coreutils"),
        ("shasum", "perl"),
        ("ssh-keygen", "openssh-client"),
    ]:
        require_binary(name, package)
    base = tmp_path_factory.mktemp("readme-commands")
    root = base / "host"
    (root / "srv" / "www" / "données").mkdir(parents=True)
    (root / "srv" / "www" / "index.html").write_bytes(b"<h1>acme</h1>\n")
    (root / "srv" / "www" / "données" / "été.txt").write_bytes(os.urandom(70_000))
    (root / "erp.dump").write_bytes(os.urandom(50_000))
    key = base / "client" / "key.txt"
    key.parent.mkdir()
    subprocess.run(["age-keygen", "-o", str(key)], check=True, capture_output=True)
    recipient = subprocess.run(
        ["age-keygen", "-y", str(key)], check=True, capture_output=True, text=True
    ).stdout.strip()
    ssh_key = base / "client" / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(ssh_key)], check=True)
    writer = BundleWriter(base / "sealed", [parse_recipient(recipient)], SigningKey.generate())
    host = LocalConnector("web01", root)
    writer.add_volume(host.tree_source("web01-www", ["srv/www"]))
    writer.add_volume(host.dump_source("db01-erp", "cat erp.dump", "erp.dump"))
    facts = ReadmeFacts(
        language="fr",
        timezone="Europe/Paris",
        bundle_name=BUNDLE,
        provider="Infogérant SA",
        contacts=[ReadmeContact(name="Jeanne Martin", phone="+33 1 23 45 67 89")],
        retrieval_ends=date(2027, 3, 1),
        erasure_by=date(2027, 7, 31),
        credentials=True,
        delivery="local",
        dump_engines={2: "postgresql"},
    )
    writer.finish({"credentials.kdbx": b"not a real kdbx"}, readme=facts)
    password_file = base / "client" / "credentials-password.txt.age"
    subprocess.run(
        ["age", "-r", recipient, "-o", str(password_file)],
        input=f"{PASSWORD}\n".encode(),
        check=True,
    )
    return {
        "base": base,
        "root": root,
        "sealed": base / "sealed",
        "key": key,
        "ssh_key": ssh_key,
        "password_file": password_file,
    }


def client_folder(sealed: dict[str, Path], tmp_path: Path) -> Path:
    """The delivery as the client finds it: the bundle, and `<bundle>.exit` beside it."""
    bundle = tmp_path / BUNDLE
    shutil.copytree(sealed["sealed"], bundle)
    (tmp_path / f"{BUNDLE}.exit").mkdir()
    shutil.copy(
        sealed["password_file"], tmp_path / f"{BUNDLE}.exit" / "credentials-password.txt.age"
    )
    (bundle / "acceptance.txt").write_text(STATEMENT)  # the statement the provider sent
    return bundle


def run_lines(bundle: Path, prefix: str, sealed: dict[str, Path]) -> str:
    """Run, in bash from inside the bundle, every README line after `prefix`, keys filled in."""
    lines = [
        line[len(prefix) :]
        for line in (bundle / "README.txt").read_text().splitlines()
        if line.startswith(prefix)
    ]
    assert len(lines) >= 7  # at least: check, verify (3), one volume (3)
    script = "set -euo pipefail\n" + "\n".join(
        line.replace(KEY_PLACEHOLDER, shlex.quote(str(sealed["key"]))).replace(
            SIGNING_KEY_PLACEHOLDER, shlex.quote(str(sealed["ssh_key"]))
        )
        for line in lines
    )
    done = subprocess.run(
        ["bash", "-c", script], cwd=bundle, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"README commands failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


def check_outcome(bundle: Path, output: str, sealed: dict[str, Path]) -> None:
    assert 'Good "handover-bundle" signature for provider' in output
    for name in ("README.txt", "index.tar.age", "volumes/0002-db01-erp.tar.age"):
        assert f"{name}: OK" in output
    assert output.splitlines().count("OK") == 3  # two volumes and the index, each checked
    assert PASSWORD in output.splitlines()
    restored = bundle / "restored"
    www = sealed["root"] / "srv" / "www"
    got = restored / "0001-web01-www" / "srv" / "www"
    assert (got / "données" / "été.txt").read_bytes() == (www / "données" / "été.txt").read_bytes()
    dump = (restored / "0002-db01-erp" / "erp.dump").read_bytes()
    assert dump == (sealed["root"] / "erp.dump").read_bytes()
    assert (restored / "index" / "credentials.kdbx").read_bytes() == b"not a real kdbx"
    exit_folder = bundle.parent / f"{BUNDLE}.exit"
    assert (exit_folder / "acceptance.txt").read_text() == STATEMENT
    checked = subprocess.run(
        ["ssh-keygen", "-Y", "check-novalidate", "-n", "handover-acceptance",
         "-s", str(exit_folder / "acceptance.txt.sig")],
        input=STATEMENT, capture_output=True, text=True,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stderr


def test_the_linux_lines_of_a_french_guide_run_as_written(
    sealed: dict[str, Path], tmp_path: Path
) -> None:
    bundle = client_folder(sealed, tmp_path)
    readme = (bundle / "README.txt").read_text()
    assert "Contrôler que le téléchargement est complet et intact" in readme
    assert "2027-03-01 00:00 (Europe/Paris, UTC+01:00)" in readme
    assert "pg_restore -h DBHOST -U DBUSER -d NEWDB --no-owner --no-acl" in readme
    check_outcome(bundle, run_lines(bundle, COMMAND_PREFIX, sealed), sealed)


def test_the_macos_lines_run_as_written_with_shasum(
    sealed: dict[str, Path], tmp_path: Path
) -> None:
    bundle = client_folder(sealed, tmp_path)
    check_outcome(bundle, run_lines(bundle, MACOS_PREFIX, sealed), sealed)


def as_postgres(command: list[str]) -> list[str]:
    """PostgreSQL's server refuses to run as root: run it as `postgres` then."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    """A throwaway PostgreSQL server listening on a Unix socket only; yields the socket folder."""
    bin_dir = Path("/usr/lib/postgresql")
    versions = sorted(bin_dir.glob("*/bin/initdb"))
    initdb = shutil.which("initdb") or (str(versions[-1]) if versions else None)
    if initdb is None:
        pytest.fail("initdb not found: install it with `apt-get install -y postgresql`")
    pg_ctl = str(Path(initdb).with_name("pg_ctl"))
    folder = Path(tempfile.mkdtemp(prefix="readme-pg-"))
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    data = folder / "data"
    subprocess.run(
        as_postgres([initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"]),
        check=True, capture_output=True,
    )  # fmt: skip
    options = f"-c listen_addresses='' -k {folder} -c fsync=off"
    subprocess.run(
        as_postgres([pg_ctl, "-D", str(data), "-o", options, "-l", str(folder / "log"), "-w",
                     "start"]),
        check=True, capture_output=True,
    )  # fmt: skip
    try:
        yield str(folder)
    finally:
        subprocess.run(as_postgres([pg_ctl, "-D", str(data), "-m", "immediate", "stop"]))
        shutil.rmtree(folder, ignore_errors=True)


def test_the_postgresql_restore_lines_restore_a_real_dump(
    sealed: dict[str, Path], postgres: str, tmp_path: Path
) -> None:
    require_binary("pg_dump", "postgresql-client")
    psql = ["psql", "-h", postgres, "-U", "postgres", "-v", "ON_ERROR_STOP=1", "-qAt"]
    subprocess.run([*psql[:5], "-c", "CREATE DATABASE erp"], check=True, capture_output=True)
    subprocess.run(
        [*psql, "-d", "erp", "-c", "CREATE TABLE t (x text); INSERT INTO t VALUES ('été 2026')"],
        check=True, capture_output=True,
    )  # fmt: skip
    writer = BundleWriter(
        tmp_path / BUNDLE, [parse_recipient(recipient_of(sealed["key"]))], SigningKey.generate()
    )
    host = LocalConnector("db01", tmp_path)
    dump = f"pg_dump -h {postgres} -U postgres -Fc erp"
    writer.add_volume(host.dump_source("db01-erp", dump, "erp.dump"))
    writer.finish(readme=ReadmeFacts(language="fr", dump_engines={1: "postgresql"}))
    bundle = tmp_path / BUNDLE
    run_lines(bundle, COMMAND_PREFIX, sealed)  # check, verify, unpack
    restore = [
        line[len(DATABASE_PREFIX) :]
        .replace("DBHOST", shlex.quote(postgres))
        .replace("DBUSER", "postgres")
        .replace("NEWDB", "erp_restored")
        for line in (bundle / "README.txt").read_text().splitlines()
        if line.startswith(DATABASE_PREFIX)
    ]
    assert any(line.startswith("pg_restore ") for line in restore)
    done = subprocess.run(
        ["bash", "-c", "set -euo pipefail\n" + "\n".join(restore)],
        cwd=bundle, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = subprocess.run(
        [*psql, "-d", "erp_restored", "-c", "SELECT x FROM t"],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    assert rows.stdout.strip() == "été 2026"


def recipient_of(key: Path) -> str:
    return subprocess.run(
        ["age-keygen", "-y", str(key)], check=True, capture_output=True, text=True
    ).stdout.strip()
