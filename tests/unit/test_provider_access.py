"""A playbook's provider access on a local sandbox host: the file, install, revoke, the proof."""

from __future__ import annotations

from pathlib import Path

import pytest

from handover.connectors.local import LocalConnector
from handover.contract.perimeter import Host
from handover.contract.security import ProviderAccess
from handover.errors import PermanentConnectorError
from handover.estate.provider_access import (
    authorized_keys_path,
    install_provider_access,
    keys_left,
    prove_login_refused,
    revoke_provider_access,
    sandboxed,
)

CONTRACT = "acme-2026"
KEY = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIYdxMpx5Ubyph7LA+tFCjItj2PJz+sUZXgBDaz1scFM ops@provider"
)
CLIENT_KEY = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFq6Ci2PAP3ydnTYJ1yJ8ZcDfphdUFwfdSnF1bEbLDHL admin@client"
)


def _sandbox(tmp_path: Path) -> tuple[Host, LocalConnector, ProviderAccess]:
    host = Host(name="web01", transport="local", root=str(tmp_path))
    access = ProviderAccess(host="web01", account="ops", public_keys=[KEY])
    return host, LocalConnector("web01", tmp_path), access


def test_a_sandbox_is_a_local_host_under_another_root(tmp_path: Path) -> None:
    assert sandboxed(Host(name="a", transport="local", root=str(tmp_path)))
    assert not sandboxed(Host(name="b", transport="local"))
    assert not sandboxed(Host(name="c", transport="ssh", address="192.0.2.1"))


def test_authorized_keys_path_by_convention_in_a_sandbox_from_passwd_otherwise(
    tmp_path: Path,
) -> None:
    host, connector, _ = _sandbox(tmp_path)
    assert authorized_keys_path(host, connector, "ops") == "/home/ops/.ssh/authorized_keys"
    assert authorized_keys_path(host, connector, "root") == "/root/.ssh/authorized_keys"
    machine = Host(name="here", transport="local")
    with LocalConnector("here", Path("/")) as here:
        home = authorized_keys_path(machine, here, "root")
        assert home.endswith("/.ssh/authorized_keys") and home.startswith("/")
        with pytest.raises(PermanentConnectorError, match="account 'nobody-here': not found"):
            authorized_keys_path(machine, here, "nobody-here")


def test_install_then_revoke_names_the_account_first_and_keeps_the_client_lines(
    tmp_path: Path,
) -> None:
    host, connector, access = _sandbox(tmp_path)
    ssh_dir = tmp_path / "home" / "ops" / ".ssh"
    ssh_dir.mkdir(parents=True)
    (ssh_dir / "authorized_keys").write_text(CLIENT_KEY + "\n")
    installed = install_provider_access(connector, host, access, CONTRACT, "tester")
    assert next(iter(installed.model_dump())) == "account"
    assert installed.account == "ops" and installed.by == "tester"
    assert [c.comment for c in installed.changed] == [f"ops@provider handover:{CONTRACT}"]

    revoked = revoke_provider_access(connector, host, access, CONTRACT, "tester")
    assert revoked.account == "ops" and revoked.keys_left_in_file == 0
    assert [c.comment for c in revoked.changed] == [f"ops@provider handover:{CONTRACT}"]
    assert "login_refused" not in revoked.model_dump()
    assert (ssh_dir / "authorized_keys").read_text() == CLIENT_KEY + "\n"


def test_a_provider_key_left_without_the_marker_fails_the_revocation(tmp_path: Path) -> None:
    host, connector, access = _sandbox(tmp_path)
    install_provider_access(connector, host, access, CONTRACT, "tester")
    path = tmp_path / "home" / "ops" / ".ssh" / "authorized_keys"
    path.write_text(path.read_text() + f"restrict {KEY.replace('ops@provider', 'copied')}\n")
    with pytest.raises(PermanentConnectorError, match=r"ops: 1 provider key\(s\) still in"):
        revoke_provider_access(connector, host, access, CONTRACT, "tester")


def test_keys_left_matches_the_key_whatever_its_options_and_comment() -> None:
    text = f'# client\nfrom="10.0.0.0/8" {KEY.replace("ops@provider", "other")}\n{CLIENT_KEY}\n'
    assert keys_left(text.encode(), [KEY]) == [KEY]
    assert keys_left(CLIENT_KEY.encode(), [KEY]) == []
    assert keys_left(b"", [KEY]) == []


def test_no_login_is_tried_without_an_ssh_host_and_a_verify_key(tmp_path: Path) -> None:
    host, connector, access = _sandbox(tmp_path)
    revoked = revoke_provider_access(connector, host, access, CONTRACT, "tester")
    known_hosts = tmp_path / "known_hosts"
    assert prove_login_refused(revoked, host, access, known_hosts) is revoked
    ssh_host = Host(name="web01", transport="ssh", address="192.0.2.1")
    assert prove_login_refused(revoked, ssh_host, access, known_hosts) is revoked


def test_the_login_with_the_verify_key_must_be_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import handover.estate.provider_access as provider_access

    host, connector, access = _sandbox(tmp_path)
    revoked = revoke_provider_access(connector, host, access, CONTRACT, "tester")
    ssh_host = Host(name="web01", transport="ssh", address="192.0.2.1", port=2222)
    checked = ProviderAccess(host="web01", account="ops", public_keys=[KEY], verify_key="env:VK")
    monkeypatch.setenv("VK", "private key")
    tried: list[tuple[object, ...]] = []

    def refused(answer: bool) -> object:
        def verify(*args: object) -> bool:
            tried.append(args)
            return answer

        return verify

    monkeypatch.setattr(provider_access, "verify_key_refused", refused(True))
    known_hosts = tmp_path / "known_hosts"
    proven = prove_login_refused(revoked, ssh_host, checked, known_hosts)
    assert proven.login_refused is True and proven.model_dump()["login_refused"] is True
    address, port, account, _, where = tried[0]
    assert (address, port, account, where) == ("192.0.2.1", 2222, "ops", known_hosts)
    monkeypatch.setattr(provider_access, "verify_key_refused", refused(False))
    with pytest.raises(PermanentConnectorError, match="ops: the provider key still logs in"):
        prove_login_refused(revoked, ssh_host, checked, known_hosts)
