"""A contract over real SSH hosts and the S3 test endpoint: hosts, data, keys, vault, playbook.

Flow tests on remote hosts build their workspace with these helpers:

- `start_lifecycle_hosts(factory)` starts three sshd hosts of their own
  ("shell": root; "nosudo": a user without sudo; "sftponly": `ForceCommand
  internal-sftp`) through the session's `SshdFactory`, so a test may stop one
  without harming the shared hosts. Unlike the shared fixture hosts, their
  sshd also reads the account's `~/.ssh/authorized_keys`: that is where the
  implementation phase installs the provider's key, so the test can prove the
  key logs in before the exit and is refused after it.
- `make_remote_workspace(...)` chdirs into a temp folder, points HANDOVER_HOME
  at `<folder>/.handover` and the vault key outside it, makes the demo keys
  (client, backup, provider signing) outside `.handover/`, and a throwaway
  provider access key.
- `put_tree(host)` writes a small dataset with spaces, quotes and `$` in names.
- `remote_playbook(...)` returns the playbook dict (the demo's contract,
  services and SLA; the perimeter, security, reversibility and backups of the
  test); `write_playbook` saves it as YAML.
- `cleanup_home_keys(contract)` removes lines marked `handover:<contract>` left
  in the real accounts' authorized_keys if a test died between implementation
  and exit.
"""

from __future__ import annotations

import os
import pwd
import shlex
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import PROJECT_ROOT
from tests.fixtures.sshd import NOSUDO_USER, SFTP_USER, SshdFactory, SshdHost, ensure_user

HOST_SPECS = (
    ("shell", "root", False),
    ("nosudo", NOSUDO_USER, False),
    ("sftponly", SFTP_USER, True),
)

#: File names of the test trees: spaces, quotes, a dollar and a backslash-free ampersand.
TREE_FILES = {
    "notes with spaces.txt": b"first line\nsecond line\n",
    'it\'s "quoted" & $HOME.txt': b"quotes and dollars stay names, never code\n",
    "sub dir/deep file.bin": bytes(range(256)) * 64,
    "sub dir/empty": b"",
}
DUMP_SQL = (
    b"-- dump of the shell host's database\nCREATE TABLE t (id int);\nINSERT INTO t VALUES (1);\n"
)


class LifecycleSshd(SshdHost):
    """An sshd host that also reads `~/.ssh/authorized_keys` (where provider keys go)."""

    def _write_config(self) -> None:
        super()._write_config()
        text = self.config_path.read_text()
        line = f"AuthorizedKeysFile {self.authorized_keys}"
        assert line in text, "the sshd fixture changed its AuthorizedKeysFile line"
        self.config_path.write_text(text.replace(line, f"{line} .ssh/authorized_keys"))

    def allow_key(self, public_line: str) -> None:
        """Also accept `public_line` for the login user (e.g. a canary key)."""
        with self.authorized_keys.open("a") as handle:
            handle.write(public_line.strip() + "\n")


def start_lifecycle_hosts(
    factory: SshdFactory, *, password: str | None = None
) -> dict[str, LifecycleSshd]:
    """Three hosts of this test: shell (root), nosudo (shell, no sudo), sftponly.

    With `password`, the nosudo account gets that password and its sshd accepts it.
    """
    hosts: dict[str, LifecycleSshd] = {}
    for name, user, sftp_only in HOST_SPECS:
        host_password = password if name == "nosudo" else None
        if user != "root":
            ensure_user(user, host_password)
        workdir = Path(tempfile.mkdtemp(prefix=f"lc-{name}-", dir=factory.base))
        host = LifecycleSshd(name, workdir, user=user, sftp_only=sftp_only, password=host_password)
        host.start()
        factory.hosts.append(host)  # stopped with the factory
        hosts[name] = host
    return hosts


def put_tree(host: SshdHost, name: str = "tree") -> Path:
    """A small tree under the host's data root, readable by its user; returns its path."""
    root = host.data_root / name
    entry = pwd.getpwnam(host.user)
    for rel, data in TREE_FILES.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    for path in [root, *root.rglob("*")]:
        os.chown(path, entry.pw_uid, entry.pw_gid)
    return root


def put_dump(host: SshdHost) -> str:
    """A file standing for a database; returns the dump command that prints it."""
    path = host.data_root / "db dump.sql"
    path.write_bytes(DUMP_SQL)
    return f"cat {shlex.quote(str(path))}"


@dataclass
class RemoteWorkspace:
    root: Path
    contract: str
    keys: Any  # handover.demo.keys.DemoKeys
    provider_key: Path
    provider_pub: str
    playbook: Path
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def home(self) -> Path:
        return self.root / ".handover"

    @property
    def contract_dir(self) -> Path:
        return self.home / "contracts" / self.contract


def make_remote_workspace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, contract: str
) -> RemoteWorkspace:
    """Folder, HANDOVER_HOME, vault key (outside .handover), demo keys, provider key."""
    from handover.demo.incidents import record_demo_incidents
    from handover.demo.keys import make_demo_keys
    from handover.secrets.vault_key import create_key_file

    root = tmp_path / "ws"
    root.mkdir()
    monkeypatch.chdir(root)
    monkeypatch.setenv("HANDOVER_HOME", str(root / ".handover"))
    key_file = tmp_path / "vault.key"
    monkeypatch.setenv("HANDOVER_VAULT_KEY_FILE", str(key_file))
    monkeypatch.delenv("HANDOVER_VAULT_KEY", raising=False)
    create_key_file(key_file)
    keys = make_demo_keys(tmp_path / "keys")
    # remote_playbook names keys.client_allowed_signers; --accept signs with this key.
    monkeypatch.setenv("HANDOVER_TEST_SIGNER_KEY", str(keys.client_signing_key))
    provider_key = tmp_path / "keys" / "provider-access"
    subprocess.run(
        [
            "ssh-keygen",
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "ops@provider",
            "-f",
            str(provider_key),
        ],
        check=True,
        capture_output=True,
    )
    provider_pub = provider_key.with_suffix(".pub").read_text().strip()
    record_demo_incidents(contract)  # the operational run needs an incident journal
    return RemoteWorkspace(
        root=root,
        contract=contract,
        keys=keys,
        provider_key=provider_key,
        provider_pub=provider_pub,
        playbook=root / f"{contract}.yaml",
    )


def write_known_hosts(ws: RemoteWorkspace, hosts: dict[str, LifecycleSshd]) -> Path:
    """The contract's known_hosts (the provider-key login check reads it), one line per host."""
    path = ws.contract_dir / "known_hosts"
    for host in hosts.values():
        host.write_known_hosts(path)
    return path


def remote_playbook(
    ws: RemoteWorkspace,
    hosts: list[dict[str, Any]],
    datasets: list[dict[str, Any]],
    *,
    provider_access: list[dict[str, Any]] = (),  # type: ignore[assignment]
    s3: dict[str, Any] | None = None,
    delivery: dict[str, Any] | None = None,
    backups_target: str | None = None,
) -> dict[str, Any]:
    """The demo playbook's contract, services and SLA around the test's perimeter."""
    data = yaml.safe_load((PROJECT_ROOT / "playbooks" / "examples" / "demo.yaml").read_text())
    data["contract"]["id"] = ws.contract
    data["contract"]["title"] = f"Infogérance over SSH and S3 ({ws.contract})"
    data["perimeter"] = {"hosts": hosts, "datasets": datasets, "software": []}
    data.pop("documentation", None)  # the demo's sources name the demo's hosts
    if s3 is not None:
        data["perimeter"]["s3"] = s3
    data["security"]["provider_access"] = list(provider_access)
    data["security"]["access_policy"] = [{"who": "provider ops", "what": "test hosts"}]
    data["reversibility"]["recipients"] = [f"file:{ws.keys.client_recipients}"]
    data["reversibility"]["signing_key"] = f"file:{ws.keys.signing_key}"
    data["reversibility"]["client_signers"] = [f"file:{ws.keys.client_allowed_signers}"]
    data["reversibility"]["delivery"] = delivery or {
        "kind": "local",
        "path": str(ws.root / "deliveries"),
    }
    data["backups"]["target"] = backups_target or str(ws.root / "backups")
    data["backups"]["recipients"] = [f"file:{ws.keys.backup_recipients}"]
    data["backups"]["identity"] = f"file:{ws.keys.backup_key}"
    return data


def write_playbook(ws: RemoteWorkspace, data: dict[str, Any]) -> Path:
    ws.playbook.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    return ws.playbook


def provider_access_entry(ws: RemoteWorkspace, host: str, account: str) -> dict[str, Any]:
    return {
        "host": host,
        "account": account,
        "public_keys": [ws.provider_pub],
        "purpose": "exploitation",
        "verify_key": f"file:{ws.provider_key}",
    }


def home_authorized_keys(account: str) -> Path:
    return Path(pwd.getpwnam(account).pw_dir) / ".ssh" / "authorized_keys"


def cleanup_home_keys(contract: str, accounts: list[str]) -> None:
    """Drop lines marked `handover:<contract>` from the accounts' real authorized_keys."""
    marker = f"handover:{contract}"
    for account in accounts:
        path = home_authorized_keys(account)
        if not path.is_file():
            continue
        lines = path.read_text().splitlines(keepends=True)
        kept = [line for line in lines if marker not in line.split()]
        if kept != lines:
            path.write_text("".join(kept))
