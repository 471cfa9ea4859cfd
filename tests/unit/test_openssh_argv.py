"""The OpenSSH bulk carrier's pure parts: mode, command line, generated known_hosts, key file."""

from __future__ import annotations

import contextlib
import io
import itertools
import stat
import subprocess
from pathlib import Path

import paramiko
import pytest

from handover.connectors.ssh.known_hosts import fingerprint
from handover.connectors.ssh.openssh import (
    HOST_ALIAS,
    BulkFolder,
    PinnedHostKey,
    bulk_mode,
    child_env,
    host_key_algorithms,
    known_hosts_text,
    private_key_bytes,
    ssh_argv,
)
from handover.connectors.ssh.openssh_stream import open_bulk_stream
from handover.connectors.ssh.target import SSHTarget
from handover.errors import UsageError
from tests.conftest import require_binary


def _key_pem() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return (
        Ed25519PrivateKey.generate()
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
        .decode()
    )


@pytest.fixture(scope="module")
def host_key() -> paramiko.PKey:
    return paramiko.Ed25519Key.from_private_key(io.StringIO(_key_pem()))


TARGET = SSHTarget(name="web", address="10.0.0.5", port=2222, user="deploy", credential="env:K")
COMMAND = "sh -c 'exec tar -cf - -C / -- '\"'\"'it'\"'\"'\"'\"'\"'\"'s $HOME'\"'\"''"


def options(argv: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for flag, value in itertools.pairwise(argv):
        if flag == "-o":
            name, _, setting = value.partition("=")
            assert name not in out, f"{name} given twice"
            out[name] = setting
    return out


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "auto"),
        ("", "auto"),
        ("auto", "auto"),
        ("OpenSSH", "openssh"),
        ("paramiko", "paramiko"),
    ],
)
def test_bulk_mode_reads_the_setting(value: str | None, expected: str) -> None:
    environ = {} if value is None else {"HANDOVER_SSH_BULK": value}
    assert bulk_mode(environ) == expected


def test_bulk_mode_refuses_unknown_values() -> None:
    with pytest.raises(UsageError, match="HANDOVER_SSH_BULK='scp'"):
        bulk_mode({"HANDOVER_SSH_BULK": "scp"})


def test_argv_trusts_only_the_generated_known_hosts(
    host_key: paramiko.PKey, tmp_path: Path
) -> None:
    argv = ssh_argv("/usr/bin/ssh", TARGET, PinnedHostKey.from_pkey(host_key), tmp_path, COMMAND)
    assert argv[:3] == ["/usr/bin/ssh", "-F", "/dev/null"]  # no user or system config
    opts = options(argv)
    assert opts["UserKnownHostsFile"] == str(tmp_path / "known_hosts")
    assert opts["GlobalKnownHostsFile"] == "/dev/null"
    assert opts["StrictHostKeyChecking"] == "yes"
    assert opts["HostKeyAlias"] == HOST_ALIAS
    assert opts["HostKeyAlgorithms"] == "ssh-ed25519"
    assert opts["BatchMode"] == "yes"
    assert opts["IdentityFile"] == str(tmp_path / "id")
    assert opts["IdentitiesOnly"] == "yes"
    assert opts["IdentityAgent"] == "none"
    assert opts["PasswordAuthentication"] == "no"
    assert (opts["ControlMaster"], opts["ControlPath"]) == ("no", "none")
    assert opts["ForwardAgent"] == "no" and "-a" in argv and "-T" in argv
    assert opts["ProxyCommand"] == "none"


def test_argv_ends_with_the_command_as_one_argument(
    host_key: paramiko.PKey, tmp_path: Path
) -> None:
    argv = ssh_argv("ssh", TARGET, PinnedHostKey.from_pkey(host_key), tmp_path, COMMAND)
    assert argv[-7:] == ["-p", "2222", "-l", "deploy", "--", "10.0.0.5", COMMAND]


def test_rsa_host_keys_allow_sha2_signatures_only() -> None:
    assert host_key_algorithms("ssh-rsa") == "rsa-sha2-512,rsa-sha2-256"
    assert host_key_algorithms("ecdsa-sha2-nistp256") == "ecdsa-sha2-nistp256"


def test_known_hosts_holds_the_verified_key_alone(host_key: paramiko.PKey, tmp_path: Path) -> None:
    pinned = PinnedHostKey.from_pkey(host_key)
    text = known_hosts_text(pinned)
    assert text.count("\n") == 1
    path = tmp_path / "known_hosts"
    path.write_text(text)
    keys = paramiko.HostKeys(str(path))
    assert list(keys.keys()) == [HOST_ALIAS]
    entry = keys.lookup(HOST_ALIAS)
    assert entry is not None and dict(entry) == {"ssh-ed25519": host_key}
    assert pinned.fingerprint == fingerprint(host_key)


def test_folder_is_private_and_removed(host_key: paramiko.PKey) -> None:
    secret = _key_pem().encode()
    folder = BulkFolder(PinnedHostKey.from_pkey(host_key), secret)
    try:
        assert stat.S_IMODE(folder.path.stat().st_mode) == 0o700
        for name in ("known_hosts", "id"):
            assert stat.S_IMODE((folder.path / name).stat().st_mode) == 0o600
        assert (folder.path / "id").read_bytes() == secret
        folder.remove_key()
        assert sorted(p.name for p in folder.path.iterdir()) == ["known_hosts"]
    finally:
        folder.close()
    assert not folder.path.exists()


def test_private_key_from_a_reference_is_normalized(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    pem = _key_pem()
    monkeypatch.setenv("K", pem.replace("\n", "\r\n") + "\r\n\r\n")
    assert private_key_bytes(TARGET) == pem.encode()
    key_file = tmp_path / "id"
    key_file.write_text(pem)
    assert private_key_bytes(SSHTarget(name="x", address="h", key_file=key_file)) == pem.encode()


def test_password_and_agent_logins_stay_on_paramiko(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PW", "hunter2")
    assert private_key_bytes(SSHTarget("x", "h", credential="env:PW", auth="password")) is None
    assert private_key_bytes(SSHTarget("x", "h", use_agent=True)) is None


def test_child_env_inherits_nothing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DB_PASSWORD", "s3cret")
    monkeypatch.setenv("SSH_AUTH_SOCK", "/tmp/agent.sock")
    env = child_env(tmp_path)
    assert set(env) == {"PATH", "HOME", "LC_ALL"}
    assert env["HOME"] == str(tmp_path)


def test_ssh_understands_the_options(host_key: paramiko.PKey, tmp_path: Path) -> None:
    """`ssh -G` prints the configuration it would use, without connecting."""
    ssh = require_binary("ssh", "openssh-client")
    argv = ssh_argv(ssh, TARGET, PinnedHostKey.from_pkey(host_key), tmp_path, COMMAND)
    at = argv.index("-F")
    result = subprocess.run(
        [*argv[: at + 2], "-G", *argv[at + 2 : -1]], capture_output=True, text=True, check=True
    )
    config = dict(line.split(" ", 1) for line in result.stdout.splitlines() if " " in line)
    assert config["stricthostkeychecking"] == "true"
    assert config["userknownhostsfile"] == str(tmp_path / "known_hosts")
    assert config["globalknownhostsfile"] == "/dev/null"
    assert config["identitiesonly"] == "yes" and config["identityagent"] == "none"
    assert config["identityfile"] == str(tmp_path / "id")
    assert config["batchmode"] == "yes" and config["hostkeyalias"] == HOST_ALIAS
    assert config["hostkeyalgorithms"] == "ssh-ed25519"
    assert (config["port"], config["user"], config["hostname"]) == ("2222", "deploy", "10.0.0.5")


def test_paramiko_mode_and_missing_ssh_choose_paramiko(
    host_key: paramiko.PKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_launch(*args: object, **kwargs: object) -> None:
        raise AssertionError("ssh must not be started")

    monkeypatch.setattr("handover.connectors.ssh.openssh_stream.open_ssh_stream", no_launch)
    monkeypatch.setenv("K", _key_pem())
    with contextlib.ExitStack() as stack:
        monkeypatch.setenv("HANDOVER_SSH_BULK", "paramiko")
        assert open_bulk_stream(stack, TARGET, host_key, COMMAND, "tar") is None
        monkeypatch.setenv("HANDOVER_SSH_BULK", "auto")
        monkeypatch.setattr("handover.connectors.ssh.openssh.shutil.which", lambda name: None)
        assert open_bulk_stream(stack, TARGET, host_key, COMMAND, "tar") is None
        monkeypatch.setenv("HANDOVER_SSH_BULK", "openssh")
        with pytest.raises(UsageError, match="no `ssh` client"):
            open_bulk_stream(stack, TARGET, host_key, COMMAND, "tar")


def test_password_login_in_openssh_mode_is_a_usage_error(
    host_key: paramiko.PKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PW", "hunter2")
    target = SSHTarget("x", "h", credential="env:PW", auth="password")
    monkeypatch.setattr("handover.connectors.ssh.openssh.shutil.which", lambda name: "/usr/bin/ssh")
    with contextlib.ExitStack() as stack:
        monkeypatch.setenv("HANDOVER_SSH_BULK", "auto")
        assert open_bulk_stream(stack, target, host_key, COMMAND, "tar") is None
        monkeypatch.setenv("HANDOVER_SSH_BULK", "openssh")
        with pytest.raises(UsageError, match="password and agent logins") as caught:
            open_bulk_stream(stack, target, host_key, COMMAND, "tar")
    assert "hunter2" not in str(caught.value)


def test_ciphers_prefer_aes_gcm_as_the_paramiko_path_does(
    host_key: paramiko.PKey, tmp_path: Path
) -> None:
    from handover.connectors.ssh.transport import PREFERRED_CIPHERS

    argv = ssh_argv("ssh", TARGET, PinnedHostKey.from_pkey(host_key), tmp_path, COMMAND)
    ciphers = options(argv)["Ciphers"].split(",")
    assert tuple(ciphers[:2]) == PREFERRED_CIPHERS
    assert "chacha20-poly1305@openssh.com" in ciphers  # hosts without GCM still connect
