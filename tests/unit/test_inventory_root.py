"""A `local` host standing in a folder is inventoried from that folder, never the worker's machine.

The real inventory script runs (for the certificates, read under the root);
every other fact comes from the files under the root.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

from handover.connectors.local import LocalConnector
from handover.demo.host_files import generate_host_files
from handover.estate.inventory_collect import collect_inventory
from handover.estate.inventory_root import NOT_MEASURED


def _write(root: Path, files: dict[str, bytes]) -> None:
    for relpath, data in files.items():
        path = root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def test_three_sandbox_hosts_report_their_own_name_packages_and_no_port(tmp_path: Path) -> None:
    seen = {}
    for name in ("web01", "db01", "files01"):
        root = tmp_path / name
        files = {
            k: v for k, v in generate_host_files(name).items() if k.startswith(("etc/", "var/lib/"))
        }
        _write(root, files)
        seen[name] = collect_inventory(LocalConnector(name, root))
    assert {n: inv.hostname for n, inv in seen.items()} == {
        "web01": "web01",
        "db01": "db01",
        "files01": "files01",
    }
    machine = socket.gethostname()
    assert all(inv.hostname != machine for inv in seen.values())
    web, db, files = seen["web01"], seen["db01"], seen["files01"]
    assert web.package_manager == "dpkg"
    assert {p.name for p in web.packages} >= {"nginx", "php8.2-fpm", "openssh-server"}
    assert "postgresql-15" in {p.name for p in db.packages}
    assert "nginx" not in {p.name for p in files.packages}
    assert web.os_name == "Debian GNU/Linux 12 (bookworm)"
    for inv in seen.values():
        assert inv.listening == [] and inv.disks == [] and inv.services == []
        for fact in ("listening", "disks", "services", "kernel"):
            assert f"{fact}: {NOT_MEASURED}" in inv.unreadable
        assert inv.kernel == ""
    assert "www-data php /var/www/demo-estate/cron.php >/dev/null 2>&1" in " ".join(
        c.line for c in web.cron
    )
    assert {c.source for c in web.cron} == {"/etc/crontab", "/etc/cron.d/demo-estate"}
    assert "nicolas" in {u.name for u in web.users}


def test_a_bare_root_says_what_it_lacks_and_links_out_are_not_followed(tmp_path: Path) -> None:
    root = tmp_path / "bare"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").symlink_to("/etc/passwd")
    (root / "etc" / "hostname").symlink_to("/etc/hostname")
    inv = collect_inventory(LocalConnector("bare", root))
    assert inv.users == [] and inv.hostname == "" and inv.packages == []
    assert "packages: no package database under the host's root" in inv.unreadable
    assert "users: no readable etc/passwd under the root" in inv.unreadable
    assert inv.package_manager is None


def test_a_host_on_the_worker_itself_keeps_the_machine_facts(tmp_path: Path) -> None:
    inv = collect_inventory(LocalConnector("worker", Path("/")))
    assert inv.hostname == socket.gethostname() or inv.hostname == os.uname().nodename
    assert not any(NOT_MEASURED in note for note in inv.unreadable)
