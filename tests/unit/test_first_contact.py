"""First contact: the key each SSH host presents, next to the playbook's pin (no network here)."""

from __future__ import annotations

import pytest

import handover.connectors.ssh.first_contact as first_contact
from handover.connectors.ssh.first_contact import agreement, presented_host_keys
from handover.contract.perimeter import Host

PINNED = "SHA256:" + "A" * 43
OTHER = "SHA256:" + "B" * 43


def test_agreement_is_shown_only_for_pinned_hosts() -> None:
    assert agreement(None, PINNED) is None
    assert agreement(PINNED, PINNED) == "True"
    assert agreement(PINNED, OTHER) == "False"


def test_every_ssh_host_is_listed_with_what_it_presents(monkeypatch: pytest.MonkeyPatch) -> None:
    presented = {("192.0.2.1", 22): PINNED, ("192.0.2.2", 2222): PINNED}
    monkeypatch.setattr(
        first_contact, "first_contact_fingerprint", lambda address, port: presented[address, port]
    )
    hosts = [
        Host(name="web01", transport="ssh", address="192.0.2.1", host_key=PINNED),
        Host(name="files01", transport="local"),
        Host(name="db01", transport="ssh", address="192.0.2.2", port=2222, host_key=OTHER),
        Host(name="new01", transport="ssh", address="192.0.2.1"),
    ]
    rows = presented_host_keys(hosts)
    assert [(r.host, r.address, r.presented, r.playbook, r.agrees) for r in rows] == [
        ("web01", "192.0.2.1:22", PINNED, PINNED, "True"),
        ("db01", "192.0.2.2:2222", PINNED, OTHER, "False"),
        ("new01", "192.0.2.1:22", PINNED, None, None),
    ]
