"""The demo estate: realistic trees, deterministic, idempotent; the demo keys."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest

from handover.connectors.local import LocalConnector
from handover.demo.estate import DemoEstate, build_demo_estate
from handover.demo.host_files import generate_host_files
from handover.demo.keys import make_demo_keys
from handover.estate.health import evaluate_health
from handover.estate.inventory_collect import collect_inventory
from tests.conftest import require_binary


@pytest.fixture(scope="module")
def estate(tmp_path_factory: pytest.TempPathFactory) -> DemoEstate:
    return build_demo_estate(tmp_path_factory.mktemp("demo"))


def host_root(estate: DemoEstate, name: str) -> Path:
    return next(h.root for h in estate.hosts if h.name == name)


def tree_digest(root: Path, skip: str = "etc/ssl/demo") -> dict[str, str]:
    out: dict[str, str] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_file() and not rel.startswith(skip):
            out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def test_estate_has_three_realistic_hosts(estate: DemoEstate) -> None:
    assert [h.name for h in estate.hosts] == ["web01", "db01", "files01"]
    assert not estate.reused
    assert estate.files >= 3000 and estate.bytes > 20_000_000
    web, db, files = (host_root(estate, n) for n in ("web01", "db01", "files01"))
    assert (web / "etc/hostname").read_text() == "web01\n"
    assert (
        "server_name www.demo-estate.example"
        in (web / "etc/nginx/sites-available/demo-estate.conf").read_text()
    )
    assert "www-data php" in (web / "etc/cron.d/demo-estate").read_text()
    assert len(list((web / "var/www/demo-estate").rglob("*.php"))) >= 5
    assert (web / "var/www/demo-estate/assets/img").is_dir()
    sql = db / "var/backups/db/demo.sql"
    assert sql.stat().st_size > 2_000_000
    assert sql.read_text().startswith("-- PostgreSQL database dump")
    shares = files / "srv/shares"
    share_files = [p for p in shares.rglob("*") if p.is_file()]
    assert len(share_files) >= 3000
    assert (shares / "Direction/Réunions/Compte-rendu réunion été.txt").stat().st_size > 0
    assert (shares / 'Direction/Lisez-moi "important".txt').is_file()
    assert any("'" in p.name for p in share_files) and any(" " in p.name for p in share_files)
    assert sum(1 for p in share_files if p.stat().st_size == 0) >= 2
    assert sum(1 for p in share_files if p.stat().st_size > 3_000_000) >= 2
    depth = max(len(p.relative_to(shares).parts) for p in share_files)
    assert depth >= 4
    every = [p for h in estate.hosts for p in h.root.rglob("*")]
    assert not any(p.is_symlink() for p in every)
    assert sum(1 for p in every if p.is_file()) == estate.files + len(estate.certificates) * 2


def test_second_build_reuses_everything_without_writing(estate: DemoEstate) -> None:
    sql = host_root(estate, "db01") / "var/backups/db/demo.sql"
    cert = host_root(estate, "web01") / "etc/ssl/demo/www.demo-estate.example.pem"
    before = (sql.stat().st_mtime_ns, sql.stat().st_ino, cert.read_bytes())

    again = build_demo_estate(estate.root)

    assert again.reused and again.files == estate.files and again.bytes == estate.bytes
    assert (sql.stat().st_mtime_ns, sql.stat().st_ino, cert.read_bytes()) == before


def test_a_damaged_host_is_rebuilt_alone(estate: DemoEstate) -> None:
    index = host_root(estate, "web01") / "var/www/demo-estate/index.php"
    index.unlink()

    again = build_demo_estate(estate.root)

    assert [h.reused for h in again.hosts] == [False, True, True]
    assert index.is_file()
    assert tree_digest(host_root(estate, "web01")) == expected_digest("web01")


def expected_digest(host: str) -> dict[str, str]:
    return {p: hashlib.sha256(d).hexdigest() for p, d in generate_host_files(host).items()}


def test_content_is_deterministic(estate: DemoEstate) -> None:
    for name in ("web01", "db01", "files01"):
        assert tree_digest(host_root(estate, name)) == expected_digest(name), name
    assert generate_host_files("db01") == generate_host_files("db01")


def test_certificates_one_valid_one_expiring_found_by_inventory(estate: DemoEstate) -> None:
    inv = collect_inventory(LocalConnector("web01", host_root(estate, "web01")), ["/etc/ssl/demo"])
    days = sorted(c.days_left for c in inv.certificates)
    assert len(days) == 2 and 8 <= days[0] <= 10 and days[1] >= 360
    assert {c.path for c in inv.certificates} == {
        "/etc/ssl/demo/www.demo-estate.example.pem",
        "/etc/ssl/demo/intranet.demo-estate.example.pem",
    }
    failing = [r.check for r in evaluate_health(inv, True, 100, 30) if not r.ok]
    assert failing == ["cert:/etc/ssl/demo/intranet.demo-estate.example.pem"]
    assert "web01:/etc/ssl/demo/www.demo-estate.example.pem" in estate.certificates


def test_demo_keys_made_once_and_usable_by_standard_tools(tmp_path: Path) -> None:
    age = require_binary("age", "age")
    ssh_keygen = require_binary("ssh-keygen", "openssh-client")
    keys = make_demo_keys(tmp_path / "keys")
    assert sorted(keys.created) == sorted(
        [
            "client.key",
            "client.recipients",
            "backup.key",
            "backup.recipients",
            "provider-signing",
            "provider-signing.pub",
            "client-signing",
            "client-signing.pub",
            "client.allowed_signers",
        ]
    )
    assert keys.folder.stat().st_mode & 0o777 == 0o700
    for path in keys.folder.iterdir():
        assert path.stat().st_mode & 0o777 == 0o600, path
    first = {p.name: p.read_bytes() for p in keys.folder.iterdir()}

    again = make_demo_keys(tmp_path / "keys")
    assert again.created == [] and {p.name: p.read_bytes() for p in keys.folder.iterdir()} == first

    sealed = subprocess.run(
        [age, "-R", str(keys.client_recipients)],
        input=b"secret bundle",
        capture_output=True,
        check=True,
    ).stdout
    opened = subprocess.run(
        [age, "-d", "-i", str(keys.client_key)], input=sealed, capture_output=True, check=True
    ).stdout
    assert opened == b"secret bundle"
    public = subprocess.run(
        [ssh_keygen, "-y", "-f", str(keys.signing_key)], capture_output=True, text=True, check=True
    ).stdout
    assert public.split()[:2] == keys.signing_pub.read_text().split()[:2]


def test_missing_public_half_is_derived_from_the_key(tmp_path: Path) -> None:
    keys = make_demo_keys(tmp_path / "keys")
    expected = keys.backup_recipients.read_text()
    os.unlink(keys.backup_recipients)
    again = make_demo_keys(tmp_path / "keys")
    assert again.created == ["backup.recipients"]
    assert keys.backup_recipients.read_text() == expected
