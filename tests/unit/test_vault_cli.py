"""`handover vault ...`: secrets come from stdin and are never printed."""

from __future__ import annotations

from pathlib import Path

import pytest
from pykeepass import PyKeePass
from typer.testing import CliRunner

from handover.cli import _register, app
from handover.secrets.vault import Kind, Vault

SECRET = "Sup3r-s3cret-CLI-value"


@pytest.fixture()
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("HANDOVER_VAULT_KEY_FILE", str(tmp_path / "cfg" / "vault.key"))
    monkeypatch.delenv("HANDOVER_VAULT_KEY", raising=False)
    _register()
    return CliRunner()


def test_init_creates_private_key_and_vault(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(app, ["vault", "init", "acme-2026"])
    assert result.exit_code == 0, result.output
    key = tmp_path / "cfg" / "vault.key"
    assert key.stat().st_mode & 0o777 == 0o600
    assert "AGE-SECRET-KEY" not in result.output
    assert "vault created" in result.output
    again = runner.invoke(app, ["vault", "init", "acme-2026"])
    assert again.exit_code == 0 and "(exists)" in again.output and "vault exists" in again.output


def test_add_reads_secret_from_stdin_and_never_prints_it(runner: CliRunner) -> None:
    runner.invoke(app, ["vault", "init"])
    result = runner.invoke(
        app,
        [
            "vault",
            "add",
            "acme-2026",
            "web01-root",
            "--username",
            "root",
            "--url",
            "web01",
            "--tag",
            "web",
            "--group",
            "Servers",
            "--secret-stdin",
        ],
        input=SECRET + "\n",
    )
    assert result.exit_code == 0, result.output
    assert SECRET not in result.output
    vault = Vault("acme-2026")
    assert vault.secret("web01-root").reveal() == SECRET.encode()
    assert vault.get("web01-root").group == "Servers"
    listing = runner.invoke(app, ["vault", "list", "acme-2026"])
    assert listing.exit_code == 0
    assert "web01-root" in listing.output and "root" in listing.output
    assert SECRET not in listing.output


def test_add_without_terminal_or_stdin_flag_is_a_usage_error(runner: CliRunner) -> None:
    runner.invoke(app, ["vault", "init"])
    result = runner.invoke(app, ["vault", "add", "acme-2026", "x1"], input="")
    assert result.exit_code == 2
    assert "use --secret-stdin" in result.output


def test_add_ssh_key_from_file_keeps_bytes(runner: CliRunner, tmp_path: Path) -> None:
    runner.invoke(app, ["vault", "init"])
    key = tmp_path / "id"
    key.write_bytes(
        b"-----BEGIN OPENSSH PRIVATE KEY-----\nAAA\n-----END OPENSSH PRIVATE KEY-----\n"
    )
    result = runner.invoke(
        app, ["vault", "add", "acme-2026", "deploy", "--kind", "ssh-key", "--secret-file", str(key)]
    )
    assert result.exit_code == 0, result.output
    vault = Vault("acme-2026")
    assert vault.get("deploy").kind is Kind.SSH_KEY
    assert vault.secret("deploy").reveal() == key.read_bytes()


def test_rotate_and_import_and_export(runner: CliRunner, tmp_path: Path) -> None:
    runner.invoke(app, ["vault", "init"])
    csv_file = tmp_path / "bw.csv"
    csv_file.write_text(
        "folder,favorite,type,name,notes,fields,reprompt,login_uri,login_username,"
        "login_password,login_totp\nOps,,login,Web01 root,,,0,ssh://web01,root,"
        f"{SECRET},\n",
        encoding="utf-8",
    )
    imported = runner.invoke(app, ["vault", "import", str(csv_file), "--contract", "acme-2026"])
    assert imported.exit_code == 0, imported.output
    assert "bitwarden layout" in imported.output and "added 1" in imported.output
    rotated = runner.invoke(
        app,
        ["vault", "rotate", "acme-2026", "web01-root", "--secret-stdin", "--actor", "ops"],
        input="new-value\n",
    )
    assert rotated.exit_code == 0, rotated.output
    assert "1 previous value(s) kept" in rotated.output
    assert Vault("acme-2026").history("web01-root")[0].value.reveal() == SECRET.encode()

    out = tmp_path / "credentials.kdbx"
    exported = runner.invoke(app, ["vault", "export", "acme-2026", "--out", str(out)])
    assert exported.exit_code == 0, exported.output
    password = exported.output.strip().splitlines()[-1]
    kp = PyKeePass(str(out), password=password)
    assert kp.find_entries(title="web01-root", first=True).password == "new-value"
    assert "new-value" not in exported.output


def test_import_kdbx_password_from_environment_reference(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pykeepass import create_database

    runner.invoke(app, ["vault", "init"])
    db = tmp_path / "client.kdbx"
    kp = create_database(str(db), password="m4ster")
    kp.add_entry(kp.root_group, "db admin", "postgres", "pg-pw")
    kp.save()
    monkeypatch.setenv("CLIENT_KDBX_PW", "m4ster")
    result = runner.invoke(
        app,
        [
            "vault",
            "import",
            str(db),
            "--contract",
            "acme-2026",
            "--password-ref",
            "env:CLIENT_KDBX_PW",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "kdbx layout" in result.output
    assert Vault("acme-2026").secret("db-admin").reveal() == b"pg-pw"
    assert "m4ster" not in result.output
    wrong = runner.invoke(
        app,
        ["vault", "import", str(db), "--contract", "acme-2026", "--password-stdin"],
        input="nope\n",
    )
    assert wrong.exit_code == 2 and "wrong master password" in wrong.output


def test_check_lists_missing_references_then_passes(runner: CliRunner) -> None:
    from handover.contract.loader import load_playbook
    from handover.secrets.vault import VaultEntry

    path = Path("playbooks/examples/acme.yaml")
    playbook = load_playbook(path)
    refs = [ref for _, ref in playbook.secret_refs() if ref.startswith("vault:")]
    assert refs, "the acme example is expected to use vault: references"
    runner.invoke(app, ["vault", "init"])
    result = runner.invoke(app, ["vault", "check", str(path)])
    assert result.exit_code == 1
    for ref in refs:
        assert f"missing: {ref} (" in result.output
    vault = Vault(playbook.contract_id)
    for ref in refs:
        vault.add(
            VaultEntry(name=ref.split("/", 1)[1].split("#")[0], username="u"), "x", replace=True
        )
    ok = runner.invoke(app, ["vault", "check", str(path)])
    assert ok.exit_code == 0, ok.output
    assert "ok: every vault reference" in ok.output
