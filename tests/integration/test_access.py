"""Provider access against real sshd hosts: install, idempotence, removal, refused login."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from handover.connectors.local import LocalConnector
from handover.connectors.ssh.connector import SSHConnector
from handover.contract.perimeter import Host
from handover.errors import HostKeyMismatch, UsageError
from handover.estate.access import (
    install_provider_keys,
    remove_provider_keys,
    try_login,
    verify_key_refused,
)
from handover.secrets.references import Secret
from tests.conftest import require_binary
from tests.fixtures.sshd import SshdFactory, SshdHost

pytestmark = pytest.mark.integration

CONTRACT = "acme-2026"


def _keypair(folder: Path, name: str, kind: str = "ed25519") -> tuple[Path, str]:
    keygen = require_binary("ssh-keygen", "openssh-client")
    path = folder / name
    subprocess.run(
        [keygen, "-q", "-t", kind, "-N", "", "-C", f"{name}@provider", "-f", str(path)],
        check=True,
        capture_output=True,
    )
    return path, path.with_suffix(".pub").read_text().strip()


@pytest.fixture()
def host(sshd_factory: SshdFactory) -> SshdHost:
    """A host of its own: these tests rewrite its authorized_keys."""
    return sshd_factory.start("access")


def _connect(host: SshdHost) -> SSHConnector:
    model = Host.model_validate(host.host_dict())
    return SSHConnector.from_host(model, CONTRACT, retry_delay_s=0.05)


def test_install_then_remove_on_real_sshd(host: SshdHost, tmp_path: Path) -> None:
    provider_key, provider_pub = _keypair(tmp_path, "ops")
    second_key, second_pub = _keypair(tmp_path, "backup-ops", "rsa")
    _, other_client_pub = _keypair(tmp_path, "client-admin")
    known_hosts = host.write_known_hosts(tmp_path / "known_hosts")
    path = host.authorized_keys
    # client content with comments, options, CRLF and no final newline: all must survive
    client_bytes = (
        b"# managed by ACME IT\r\n"
        + path.read_bytes()
        + f'from="10.0.0.0/8",no-pty {other_client_pub}'.encode()
        + b"\n\n# end"
    )
    path.write_bytes(client_bytes)
    path.chmod(0o644)
    secret = Secret(provider_key.read_bytes())
    assert not try_login(host.address, host.port, host.user, secret, known_hosts)

    with _connect(host) as conn:
        record = install_provider_keys(conn, str(path), [provider_pub, second_pub], CONTRACT)
        assert [c.comment for c in record.changed] == [
            f"ops@provider handover:{CONTRACT}",
            f"backup-ops@provider handover:{CONTRACT}",
        ]
        after_install = path.read_bytes()
        assert after_install == (
            client_bytes
            + f"\n{provider_pub} handover:{CONTRACT}\n{second_pub} handover:{CONTRACT}\n".encode()
        )
        assert path.stat().st_mode & 0o777 == 0o644
        assert record.sha256_after != record.sha256_before
        assert record.changed[0].fingerprint.startswith("SHA256:")
        assert "AAAA" not in record.model_dump_json()  # fingerprints only, no key bodies

        again = install_provider_keys(conn, str(path), [provider_pub], CONTRACT)
        assert again.changed == [] and len(again.unchanged) == 1
        assert path.read_bytes() == after_install

    assert try_login(host.address, host.port, host.user, secret, known_hosts)
    assert try_login(host.address, host.port, host.user, second_key.read_bytes(), known_hosts)

    with _connect(host) as conn:
        removed = remove_provider_keys(conn, str(path), CONTRACT)
        assert len(removed.changed) == 2
        # everything of the client's is back, byte for byte, except the newline we had to add
        assert path.read_bytes() == client_bytes + b"\n"
        assert removed.sha256_before == again.sha256_after
        assert path.stat().st_mode & 0o777 == 0o644
        nothing = remove_provider_keys(conn, str(path), CONTRACT)
        assert nothing.changed == [] and path.read_bytes() == client_bytes + b"\n"

    assert verify_key_refused(host.address, host.port, host.user, secret, known_hosts)
    assert verify_key_refused(
        host.address, host.port, host.user, second_key.read_bytes(), known_hosts
    )
    # the client's own key still logs in
    assert try_login(host.address, host.port, host.user, host.key_path.read_bytes(), known_hosts)


def test_other_contracts_lines_are_not_removed(host: SshdHost, tmp_path: Path) -> None:
    _, pub = _keypair(tmp_path, "ops")
    path = host.authorized_keys
    original = path.read_bytes()
    with _connect(host) as conn:
        install_provider_keys(conn, str(path), [pub], "other-contract")
        install_provider_keys(conn, str(path), [pub], CONTRACT)
        remove_provider_keys(conn, str(path), CONTRACT)
        assert path.read_bytes() == original + f"{pub} handover:other-contract\n".encode()
        remove_provider_keys(conn, str(path), "other-contract")
    assert path.read_bytes() == original


def test_unknown_host_key_is_not_taken_as_refusal(host: SshdHost, tmp_path: Path) -> None:
    key, _ = _keypair(tmp_path, "ops")
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    with pytest.raises(HostKeyMismatch):
        verify_key_refused(host.address, host.port, host.user, key.read_bytes(), empty)


def test_malformed_public_keys_are_refused_before_any_write(tmp_path: Path) -> None:
    conn = LocalConnector("local", tmp_path)
    target = "/home/ops/.ssh/authorized_keys"
    with pytest.raises(UsageError, match="expected"):
        install_provider_keys(conn, target, ["not a key"], CONTRACT)
    _, pub = _keypair(tmp_path, "ops")
    with pytest.raises(UsageError, match="single line"):
        install_provider_keys(conn, target, [pub + "\nssh-ed25519 AAAAinjected"], CONTRACT)
    assert not (tmp_path / "home").exists()


def test_local_install_creates_file_and_keeps_owner(tmp_path: Path) -> None:
    _, pub = _keypair(tmp_path, "ops")
    conn = LocalConnector("local", tmp_path)
    created = install_provider_keys(conn, "/home/ops/.ssh/authorized_keys", [pub], CONTRACT)
    target = tmp_path / "home/ops/.ssh/authorized_keys"
    assert created.file_created and created.sha256_before == ""
    assert target.read_text() == f"{pub} handover:{CONTRACT}\n"
    assert target.stat().st_mode & 0o777 == 0o600
    if os.geteuid() == 0:  # the owner is kept: sshd reads the file as the account
        _, client_pub = _keypair(tmp_path, "client")
        target.write_text(client_pub + "\n")
        os.chown(target, 65534, 65534)
        install_provider_keys(conn, "/home/ops/.ssh/authorized_keys", [pub], CONTRACT)
        assert (target.stat().st_uid, target.stat().st_gid) == (65534, 65534)
        assert target.read_text() == f"{client_pub}\n{pub} handover:{CONTRACT}\n"


def test_ssh_install_creates_missing_ssh_folder_for_the_account(
    host: SshdHost, tmp_path: Path
) -> None:
    import pwd

    from tests.fixtures.sshd import NOSUDO_USER, ensure_user

    account = ensure_user(NOSUDO_USER)
    _, pub = _keypair(tmp_path, "ops")
    target = host.workdir / "home-ops" / ".ssh" / "authorized_keys"
    with _connect(host) as conn:
        record = install_provider_keys(conn, str(target), [pub], CONTRACT, owner=NOSUDO_USER)
    assert record.file_created
    assert target.read_text() == f"{pub} handover:{CONTRACT}\n"
    assert target.stat().st_mode & 0o777 == 0o600
    assert target.parent.stat().st_mode & 0o777 == 0o700
    assert pwd.getpwuid(target.stat().st_uid).pw_name == account.pw_name
    assert target.parent.stat().st_uid == account.pw_uid


def test_ssh_connector_logs_in_with_a_vault_reference(
    host: SshdHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    from handover.bundle.age import X25519Identity
    from handover.secrets.vault import Kind, Vault, VaultEntry

    monkeypatch.setenv("HANDOVER_VAULT_KEY", str(X25519Identity.generate()))
    Vault(CONTRACT).add(
        VaultEntry(name="access-root", kind=Kind.SSH_KEY), host.key_path.read_bytes()
    )
    model = Host.model_validate(host.host_dict(credential=f"vault:{CONTRACT}/access-root"))
    with SSHConnector.from_host(model, CONTRACT, retry_delay_s=0.05) as conn:
        assert conn.run("echo vault-ok").stdout == b"vault-ok\n"
