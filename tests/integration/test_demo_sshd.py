"""The demo's hosts over SSH: one unprivileged-style sshd per host on loopback, pinned keys.

Real sshd processes (`handover.demo.sshd`), the demo playbook rewritten for
them (`handover.demo.ssh_hosts`), and the client documents and the dump of
the demo read through them; every sshd is gone when the block ends, also
after a Ctrl-C.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import yaml

from handover.bundle.snapshot import snapshot_source
from handover.connectors.datasets import dataset_source
from handover.connectors.factory import connect_host
from handover.contract.loader import load_playbook
from handover.demo.host_files import generate_host_files
from handover.demo.ssh_hosts import demo_sshd, ssh_playbook
from handover.estate.client_documents import collect_client_documents
from handover.estate.inventory_collect import collect_inventory
from tests.conftest import PROJECT_ROOT

pytestmark = pytest.mark.integration

NAMES = ["web01", "db01", "files01"]


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
            return sock.recv(16).startswith(b"SSH-2.0")
    except OSError:
        return False


def _sandbox(tmp_path: Path) -> dict[str, str]:
    roots = {}
    for name in NAMES:
        root = tmp_path / "hosts" / name
        for rel, data in generate_host_files(name).items():
            if rel.startswith(("etc/", "srv/docs/", "var/backups/")):
                path = root / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
        root.mkdir(parents=True, exist_ok=True)
        roots[name] = str(root)
    return roots


def test_the_demo_reaches_its_hosts_through_sshd_and_stops_them(tmp_path: Path) -> None:
    roots = _sandbox(tmp_path)
    data = yaml.safe_load((PROJECT_ROOT / "playbooks" / "examples" / "demo.yaml").read_text())
    with demo_sshd(tmp_path / "demo", NAMES) as hosts:
        ports = [h.port for h in hosts.values()]
        assert all(_answers(port) for port in ports)
        path = tmp_path / "demo-ssh.yaml"
        path.write_text(yaml.safe_dump(ssh_playbook(data, roots, hosts), allow_unicode=True))
        playbook = load_playbook(path)
        assert {h.transport for h in playbook.hosts} == {"ssh"}
        assert all(h.host_key == hosts[h.name].host_key_fingerprint for h in playbook.hosts)
        assert playbook.security.provider_access == []

        def connect(name: str):  # type: ignore[no-untyped-def]
            return connect_host(playbook.host(name), playbook.contract_id, known_hosts=None)

        index = collect_client_documents(playbook, tmp_path / "docs", connect=connect)
        assert index.failures == []
        assert "Dossier d'exploitation.md" in {d.name for d in index.documents}
        db = next(d for d in playbook.datasets if d.name == "db")
        with connect("db01") as connector:
            members = snapshot_source(dataset_source(db, connector, None))
        sql = generate_host_files("db01")["var/backups/db/demo.sql"]
        assert [(m.path, m.size) for m in members] == [("demo.sql", len(sql))]
        with connect("web01") as connector:
            inventory = collect_inventory(connector, playbook.host("web01").cert_paths)
        # Over SSH the host is this machine, and its inventory says so; the certificate
        # folder is the sandbox's, by its absolute path (no certificate written here).
        assert inventory.hostname == socket.gethostname()
        assert f"certificates: {roots['web01']}/etc/ssl/demo: not found" in inventory.unreadable
        fingerprints = {n: h.host_key_fingerprint for n, h in hosts.items()}
    assert not any(_answers(port) for port in ports)

    # The keys stay from one run to the next (a machine keeps its identity); a Ctrl-C
    # inside the block stops every sshd all the same.
    with pytest.raises(KeyboardInterrupt), demo_sshd(tmp_path / "demo", NAMES) as again:
        assert {n: h.host_key_fingerprint for n, h in again.items()} == fingerprints
        ports = [h.port for h in again.values()]
        raise KeyboardInterrupt
    assert not any(_answers(port) for port in ports)
