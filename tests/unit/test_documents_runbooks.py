"""Runbooks: every host gets check, restart, restore and escalate steps with its ssh prefix."""

from __future__ import annotations

import pytest

from handover.contract.playbook import Playbook
from handover.documents.runbooks import runbooks
from tests.unit.documents_fixtures import (
    check_html,
    in_language,
    load_test_playbook,
    sample_inventory,
)


@pytest.fixture(scope="module")
def playbook(tmp_path_factory: pytest.TempPathFactory) -> Playbook:
    """In English (the French rendering is tested in test_documents_language)."""
    return in_language(load_test_playbook(tmp_path_factory), "en")


def test_runbooks_cover_each_host_with_check_restart_restore_escalate(
    playbook: Playbook,
) -> None:
    doc = runbooks(playbook, [sample_inventory()])
    md = doc.markdown
    for host in ("web01", "db01", "files01"):
        section = md.split(f"## Host {host}")[1].split("\n## ")[0]
        for part in ("### Check", "### Restart", "### Restore from backup", "### Escalate"):
            assert part in section, (host, part)
    web = md.split("## Host web01")[1].split("\n## ")[0]
    assert "`sudo systemctl restart nginx.service`" in web
    assert "volumes/NNNN-web01-www.tar.age | tar -x -C /tmp/restore-www" in web
    assert "Copy the needed files back to `/var/www`" in web
    db = md.split("## Host db01")[1].split("\n## ")[0]
    assert "Load the dump `demo.sql`" in db
    assert "No inventory given" in db
    assert "`file:.handover/demo/keys/backup.key`" in md
    assert "| **P1** | Service arrêté pour tous les utilisateurs | 30 min | 4 h |" in md
    assert "within 8 h" in md
    check_html(doc)


def test_runbooks_of_ssh_host_prefix_commands(playbook: Playbook) -> None:
    data = playbook.model_dump()
    data["perimeter"]["hosts"][0].update(
        transport="ssh", address="192.0.2.10", port=2222, user="ops", root=None
    )
    remote = Playbook.model_validate(data)
    md = runbooks(remote).markdown
    assert "`ssh -p 2222 ops@192.0.2.10 df -hP`" in md
    assert "`ssh -p 2222 ops@192.0.2.10 true`" in md
