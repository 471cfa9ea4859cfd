"""SSHConnector against real OpenSSH sshd processes: trust, auth, commands, files, inventory."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import pytest

from handover.connectors.factory import connect_host
from handover.connectors.ssh.connector import SSHConnector
from handover.connectors.ssh.first_contact import first_contact_fingerprint, pin_first_contact
from handover.contract.perimeter import Host
from handover.errors import (
    AuthFailed,
    HostKeyMismatch,
    PermanentConnectorError,
    TransientConnectorError,
)
from handover.estate.inventory_collect import collect_inventory
from handover.state.home import contract_dir
from tests.conftest import require_binary
from tests.fixtures.sshd import PASSWORD_USER, SshdFactory, SshdHost, free_port

pytestmark = pytest.mark.integration

CONTRACT = "acme-test"


def host_model(host: SshdHost, **overrides: object) -> Host:
    return Host.model_validate(host.host_dict(**overrides))


def connect(host: SshdHost, **options: object) -> SSHConnector:
    options.setdefault("retry_delay_s", 0.05)
    return SSHConnector.from_host(host_model(host), CONTRACT, **options)  # type: ignore[arg-type]


def test_run_returns_status_stdout_and_stderr(sshd_shell: SshdHost) -> None:
    with connect(sshd_shell) as conn:
        result = conn.run("echo out; echo err >&2; exit 3")
        assert (result.exit_status, result.stdout, result.stderr) == (3, b"out\n", b"err\n")
        big = conn.run("wc -c", stdin=b"x" * 5_000_000)
        assert big.stdout.strip() == b"5000000"
        assert conn.host_key_fingerprint == sshd_shell.host_key_fingerprint


def test_connect_host_dispatches_ssh_hosts(sshd_nosudo: SshdHost) -> None:
    with connect_host(host_model(sshd_nosudo), CONTRACT) as conn:
        assert conn.name == "nosudo"
        assert conn.run("id -un").stdout.strip() == b"handover-nosudo"


def test_run_times_out_as_transient(sshd_shell: SshdHost) -> None:
    with connect(sshd_shell) as conn:
        started = time.monotonic()
        with pytest.raises(TransientConnectorError, match="timed out"):
            conn.run("sleep 30", timeout_s=0.5)
        assert time.monotonic() - started < 5


def test_inventory_over_ssh_gathers_this_machine(sshd_shell: SshdHost) -> None:
    with connect(sshd_shell) as conn:
        inventory = collect_inventory(conn, [])
    local_os = Path("/etc/os-release").read_text()
    assert inventory.os_release.get("ID") and inventory.os_release["ID"] in local_os
    dpkg = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Package}\n"], capture_output=True, text=True
    )
    assert len(inventory.packages) == len(set(dpkg.stdout.split()))
    assert any(port.port == sshd_shell.port for port in inventory.listening)
    assert any(user.name == "root" for user in inventory.users)


def test_inventory_as_unprivileged_user_says_what_it_could_not_read(sshd_nosudo: SshdHost) -> None:
    with connect(sshd_nosudo) as conn:
        inventory = collect_inventory(conn, ["/root/no-such-certs"])
    assert inventory.packages  # dpkg's database is world-readable
    assert inventory.unreadable, "a sudo-less user cannot read everything; it must be said"


def test_inventory_of_sftp_only_account_reads_files_and_names_gaps(
    sshd_sftponly: SshdHost,
) -> None:
    with connect(sshd_sftponly) as conn:
        assert not conn.has_shell()
        inventory = collect_inventory(conn, [])
    assert inventory.os_release.get("ID")
    assert any(user.name == "handover-sftp" for user in inventory.users)
    assert not inventory.packages
    assert any(why.startswith("packages:") and "SFTP" in why for why in inventory.unreadable)


@pytest.mark.parametrize("which", ["nosudo", "sftponly"])
def test_write_file_is_atomic_and_read_back(which: str, sshd_hosts: dict[str, SshdHost]) -> None:
    host = sshd_hosts[which]
    target = host.data_root / f"authorized_keys-{time.time_ns()}"
    with connect(host) as conn:
        conn.write_file(str(target), b"first\n", mode=0o600)
        conn.write_file(str(target), b"second\n", mode=0o640)
        assert conn.read_file(str(target)) == b"second\n"
        with pytest.raises(PermanentConnectorError, match="no-such"):
            conn.read_file(str(host.data_root / "no-such-file"))
    assert target.read_bytes() == b"second\n"
    assert target.stat().st_mode & 0o777 == 0o640
    assert target.owner() == host.user
    leftovers = [p.name for p in host.data_root.iterdir() if p.name.startswith(f".{target.name}")]
    assert leftovers == []


# --- trust ------------------------------------------------------------------------------


def test_known_hosts_entry_is_enough_without_playbook_pin(sshd_shell: SshdHost) -> None:
    sshd_shell.write_known_hosts(contract_dir(CONTRACT) / "known_hosts")
    with SSHConnector.from_host(host_model(sshd_shell, host_key=None), CONTRACT) as conn:
        assert conn.run("true").exit_status == 0


def test_unpinned_host_is_rejected_and_shows_fingerprint(sshd_shell: SshdHost) -> None:
    with pytest.raises(PermanentConnectorError) as caught:
        SSHConnector.from_host(host_model(sshd_shell, host_key=None), CONTRACT)
    assert sshd_shell.host_key_fingerprint in str(caught.value)
    assert "--pin-host-keys" in str(caught.value)
    assert not (contract_dir(CONTRACT) / "known_hosts").exists()


def test_first_contact_records_host_key_for_confirmation(sshd_nosudo: SshdHost) -> None:
    fingerprint = first_contact_fingerprint(sshd_nosudo.address, sshd_nosudo.port)
    assert fingerprint == sshd_nosudo.host_key_fingerprint
    host = host_model(sshd_nosudo, host_key=None)
    with SSHConnector.from_host(host, CONTRACT, pin_host_keys=True) as conn:
        assert conn.recorded_fingerprint == sshd_nosudo.host_key_fingerprint
    known = (contract_dir(CONTRACT) / "known_hosts").read_text()
    assert known.split() == sshd_nosudo.known_hosts_line.split()[:3]
    # The second contact is checked against the recorded key, and records nothing new.
    with SSHConnector.from_host(host, CONTRACT, pin_host_keys=True) as conn:
        assert conn.recorded_fingerprint is None
    assert (contract_dir(CONTRACT) / "known_hosts").read_text() == known


def test_pin_first_contact_records_only_the_confirmed_key(sshd_shell: SshdHost) -> None:
    host = host_model(sshd_shell, host_key=None)
    with pytest.raises(HostKeyMismatch, match="nothing was pinned"):
        pin_first_contact(host, CONTRACT, expected="SHA256:" + "B" * 43)
    assert not (contract_dir(CONTRACT) / "known_hosts").exists()
    path = pin_first_contact(host, CONTRACT, expected=sshd_shell.host_key_fingerprint)
    assert path == contract_dir(CONTRACT) / "known_hosts"
    assert path.read_text().split() == sshd_shell.known_hosts_line.split()[:3]
    with SSHConnector.from_host(host, CONTRACT) as conn:  # now trusted through known_hosts
        assert conn.recorded_fingerprint is None


def test_changed_host_key_is_a_mismatch_naming_both_fingerprints(
    sshd_factory: SshdFactory, tmp_path: Path
) -> None:
    host = sshd_factory.start("rekeyed")
    old = host.host_key_fingerprint
    known = host.write_known_hosts(tmp_path / "known_hosts")
    host.restart(new_host_key=True)
    new = host.host_key_fingerprint
    assert new != old
    with pytest.raises(HostKeyMismatch) as pinned:
        SSHConnector.from_host(host_model(host, host_key=old), CONTRACT, retry_delay_s=0.05)
    assert old in str(pinned.value) and new in str(pinned.value)
    with pytest.raises(HostKeyMismatch) as from_file:
        SSHConnector.from_host(host_model(host, host_key=None), CONTRACT, known_hosts=known)
    assert old in str(from_file.value) and new in str(from_file.value)
    # pin_host_keys never overwrites a known key.
    with pytest.raises(HostKeyMismatch):
        SSHConnector.from_host(
            host_model(host, host_key=None), CONTRACT, known_hosts=known, pin_host_keys=True
        )
    assert known.read_text().split()[2] != host.host_public_line.split()[1]


# --- auth -------------------------------------------------------------------------------


def test_wrong_user_key_is_auth_failed_without_the_secret(
    sshd_shell: SshdHost, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_binary("ssh-keygen", "openssh-client")
    other = tmp_path / "other"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    secret = other.read_text()
    monkeypatch.setenv("WRONG_KEY", secret)
    started = time.monotonic()
    with pytest.raises(AuthFailed) as caught:
        SSHConnector.from_host(
            host_model(sshd_shell, credential="env:WRONG_KEY"), CONTRACT, retry_delay_s=2.0
        )
    assert time.monotonic() - started < 2.0, "AuthFailed is permanent: no retry"
    message = str(caught.value)
    assert "authentication refused" in message and "env:WRONG_KEY" in message
    assert "root@[127.0.0.1]" in message
    body = "".join(secret.splitlines()[1:-1])
    assert body[:40] not in message and body[:40] not in repr(caught.value.__cause__)


def test_password_auth_and_wrong_password(
    sshd_factory: SshdFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    host = sshd_factory.start("pw", user=PASSWORD_USER, password="handover-test-pw-1")
    monkeypatch.setenv("PW_OK", "handover-test-pw-1")
    monkeypatch.setenv("PW_BAD", "not-the-password")
    with SSHConnector.from_host(
        host_model(host, auth="password", credential="env:PW_OK"), CONTRACT
    ) as conn:
        assert conn.run("id -un").stdout.strip() == PASSWORD_USER.encode()
    with pytest.raises(AuthFailed) as caught:
        SSHConnector.from_host(host_model(host, auth="password", credential="env:PW_BAD"), CONTRACT)
    assert "not-the-password" not in str(caught.value)


def test_host_down_is_transient_after_retries_quickly(sshd_shell: SshdHost) -> None:
    down = host_model(sshd_shell, port=free_port())
    started = time.monotonic()
    with pytest.raises(TransientConnectorError) as caught:
        SSHConnector.from_host(down, CONTRACT, retries=3, retry_delay_s=0.1)
    elapsed = time.monotonic() - started
    assert 0.6 < elapsed < 5, "three backoffs of 0.1, 0.2, 0.4 s"
    assert "refused" in str(caught.value) and "4 attempts" in str(caught.value)
    assert caught.value.host == "shell"


def test_stopped_sshd_comes_back_within_retries(sshd_factory: SshdFactory) -> None:
    host = sshd_factory.start("flappy")
    host.stop()
    threading.Timer(0.3, host.start).start()
    with connect(host, retries=5, retry_delay_s=0.2) as conn:
        assert conn.run("true").exit_status == 0
