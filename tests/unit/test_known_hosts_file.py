"""The playbook's known_hosts: `perimeter.known_hosts` when set, else the contract's own file.

Connecting to a host and pinning its key at first contact use that one file
(no network here: the connection and the key fetch are replaced).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import paramiko
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

import handover.connectors.ssh.first_contact as first_contact
from handover.connectors.factory import connect_host
from handover.connectors.ssh.connector import SSHConnector
from handover.connectors.ssh.known_hosts import fingerprint, known_keys
from handover.contract.loader import load_playbook
from handover.contract.playbook import Playbook
from handover.state.layout import ContractPaths
from tests.conftest import PROJECT_ROOT

ACME = PROJECT_ROOT / "playbooks" / "examples" / "acme.yaml"


def _with_known_hosts(value: str | None) -> Playbook:
    playbook = load_playbook(ACME)
    perimeter = playbook.perimeter.model_copy(update={"known_hosts": value})
    return playbook.model_copy(update={"perimeter": perimeter})


def test_unset_is_the_contract_file() -> None:
    playbook = _with_known_hosts(None)
    assert playbook.known_hosts_file() == ContractPaths(playbook.contract_id).known_hosts


def test_a_relative_path_is_taken_under_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert _with_known_hosts("trust/known_hosts").known_hosts_file() == (
        tmp_path / "trust" / "known_hosts"
    )
    assert _with_known_hosts("/etc/ssh/ssh_known_hosts").known_hosts_file() == Path(
        "/etc/ssh/ssh_known_hosts"
    )
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert _with_known_hosts("~/.ssh/known_hosts").known_hosts_file() == (
        tmp_path / "home" / ".ssh" / "known_hosts"
    )


def test_connecting_and_pinning_use_the_same_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    playbook = _with_known_hosts(str(tmp_path / "known_hosts"))
    host = playbook.host("web01")
    seen: dict[str, Any] = {}

    def connect(cls: type[SSHConnector], target: object, /, **options: Any) -> object:
        seen.update(options)
        return object()

    monkeypatch.setattr(SSHConnector, "connect", classmethod(connect))
    connect_host(host, playbook.contract_id, known_hosts=playbook.known_hosts_file())
    assert seen["known_hosts"] == tmp_path / "known_hosts"

    pem = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    key = paramiko.Ed25519Key.from_private_key(io.StringIO(pem.decode()))
    monkeypatch.setattr(first_contact, "fetch_host_key", lambda *args, **kwargs: key)
    unpinned = host.model_copy(update={"host_key": None})
    pinned = first_contact.pin_first_contact(
        unpinned,
        playbook.contract_id,
        expected=fingerprint(key),
        known_hosts=playbook.known_hosts_file(),
    )
    assert pinned == seen["known_hosts"]
    assert unpinned.address is not None
    assert list(known_keys(pinned, unpinned.address, unpinned.port).values()) == [key]
    assert not ContractPaths(playbook.contract_id).known_hosts.exists()
