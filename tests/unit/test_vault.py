"""The credential vault: encryption at rest, key handling, rotations, resolver, concurrency."""

from __future__ import annotations

import os
import subprocess
import threading
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from handover.bundle.age import X25519Identity
from handover.errors import SecretRefError, VaultError
from handover.secrets.references import Secret, resolve_secret
from handover.secrets.vault import CreatedBy, Kind, Vault, VaultEntry
from handover.secrets.vault_key import create_key_file, load_vault_key
from tests.conftest import require_binary

CONTRACT = "acme-2026"


@pytest.fixture()
def key_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "keys" / "vault.key"
    monkeypatch.setenv("HANDOVER_VAULT_KEY_FILE", str(path))
    monkeypatch.delenv("HANDOVER_VAULT_KEY", raising=False)
    create_key_file()
    return path


def _filled_vault() -> Vault:
    vault = Vault(CONTRACT)
    vault.init()
    vault.add(VaultEntry(name="web01-root", username="root", url="ssh://web01"), "pw-1")
    vault.add(
        VaultEntry(
            name="deploy-key",
            kind=Kind.SSH_KEY,
            group="Servers/Web",
            tags=["web", "ci"],
            created_by=CreatedBy.PROVIDER,
        ),
        b"-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----\n",
    )
    vault.add(VaultEntry(name="blob", kind=Kind.NOTE), b"\x00\xff\xfe binary")
    return vault


def test_vault_round_trip_keeps_metadata_and_secrets(key_file: Path) -> None:
    _filled_vault()
    reopened = Vault(CONTRACT)
    assert reopened.names() == ["blob", "deploy-key", "web01-root"]
    deploy = reopened.get("deploy-key")
    assert deploy.kind is Kind.SSH_KEY
    assert deploy.group == "Servers/Web"
    assert deploy.tags == ["web", "ci"]
    assert deploy.created_by is CreatedBy.PROVIDER
    assert reopened.secret("web01-root").reveal() == b"pw-1"
    assert reopened.secret("blob").reveal() == b"\x00\xff\xfe binary"
    assert reopened.path.stat().st_mode & 0o777 == 0o600


def test_vault_file_holds_no_plaintext_and_opens_with_age_cli(key_file: Path) -> None:
    age = require_binary("age", "age")
    vault = _filled_vault()
    raw = vault.path.read_bytes()
    assert raw.startswith(b"age-encryption.org/v1\n")
    assert b"pw-1" not in raw and b"web01-root" not in raw
    out = subprocess.run(
        [age, "-d", "-i", str(key_file), str(vault.path)], capture_output=True, check=True
    )
    assert b'"web01-root"' in out.stdout and b"pw-1" in out.stdout


def test_entries_and_repr_never_show_secrets(key_file: Path) -> None:
    vault = _filled_vault()
    shown = repr(vault.entries()) + repr(vault.items()) + repr(vault.history("web01-root"))
    assert "pw-1" not in shown
    assert "OPENSSH" not in shown
    assert "'**********'" in shown


def test_wrong_key_gives_vault_error_not_empty_vault(
    key_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _filled_vault()
    monkeypatch.setenv("HANDOVER_VAULT_KEY", str(X25519Identity.generate()))
    with pytest.raises(VaultError, match=r"\$HANDOVER_VAULT_KEY\) does not open this vault"):
        Vault(CONTRACT).names()


@pytest.mark.parametrize("where", ["header", "payload", "truncated", "empty"])
def test_tampered_vault_file_gives_vault_error(key_file: Path, where: str) -> None:
    vault = _filled_vault()
    data = bytearray(vault.path.read_bytes())
    if where == "header":
        data[30] ^= 0x01
    elif where == "payload":
        data[-20] ^= 0x01
    elif where == "truncated":
        data = data[:-17]
    else:
        data = bytearray()
    vault.path.write_bytes(bytes(data))
    with pytest.raises(VaultError, match=str(vault.path)):
        vault.names()
    with pytest.raises(VaultError):
        vault.add(VaultEntry(name="new"), "x")


def test_vault_of_another_contract_is_refused(key_file: Path) -> None:
    source = _filled_vault()
    other = Vault("other-co")
    other.path.write_bytes(source.path.read_bytes())
    with pytest.raises(VaultError, match="belongs to contract 'acme-2026'"):
        other.names()


def test_missing_vault_and_missing_key_are_clear_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HANDOVER_VAULT_KEY_FILE", str(tmp_path / "nope.key"))
    monkeypatch.delenv("HANDOVER_VAULT_KEY", raising=False)
    with pytest.raises(VaultError, match="handover vault init"):
        load_vault_key()
    monkeypatch.setenv("HANDOVER_VAULT_KEY", str(X25519Identity.generate()))
    with pytest.raises(VaultError, match="no vault for contract acme-2026"):
        Vault(CONTRACT).names()


def test_key_file_permissions_and_location_are_checked(
    key_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert key_file.stat().st_mode & 0o777 == 0o600
    with pytest.raises(VaultError, match="already exists"):
        create_key_file()
    key_file.chmod(0o644)
    with pytest.raises(VaultError, match="chmod 600"):
        load_vault_key()
    inside = Path(os.environ["HANDOVER_HOME"]) / "vault.key"
    monkeypatch.setenv("HANDOVER_VAULT_KEY_FILE", str(inside))
    with pytest.raises(VaultError, match="must live outside"):
        create_key_file()


def test_key_from_environment_opens_vault(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HANDOVER_VAULT_KEY", str(X25519Identity.generate()))
    vault = Vault(CONTRACT)
    vault.add(VaultEntry(name="api"), "token")
    assert Vault(CONTRACT).secret("api").reveal() == b"token"
    monkeypatch.setenv("HANDOVER_VAULT_KEY", "AGE-SECRET-KEY-1NOTAKEY")
    with pytest.raises(VaultError, match="not a usable vault key") as info:
        Vault(CONTRACT).names()
    assert "NOTAKEY" not in str(info.value)


def test_rotation_keeps_history_encrypted(key_file: Path) -> None:
    vault = _filled_vault()
    vault.rotate("web01-root", "pw-2", actor="alice@provider")
    entry = vault.rotate("web01-root", Secret(b"pw-3"), actor="bob@provider")
    assert entry.rotations == 2
    history = Vault(CONTRACT).history("web01-root")
    assert [h.value.reveal() for h in history] == [b"pw-1", b"pw-2"]
    assert [h.replaced_by for h in history] == ["alice@provider", "bob@provider"]
    assert history[0].replaced_at <= history[1].replaced_at
    assert vault.secret("web01-root").reveal() == b"pw-3"
    assert b"pw-1" not in vault.path.read_bytes()
    with pytest.raises(VaultError, match="no entry 'nope' to rotate"):
        vault.rotate("nope", "x", actor="a")


def test_add_refuses_duplicates_unless_replace(key_file: Path) -> None:
    vault = _filled_vault()
    with pytest.raises(VaultError, match="already exists"):
        vault.add(VaultEntry(name="web01-root"), "other")
    vault.add(VaultEntry(name="web01-root", username="admin"), "other", replace=True)
    assert vault.get("web01-root").username == "admin"
    assert [h.value.reveal() for h in vault.history("web01-root")] == [b"pw-1"]


def test_vault_resolver(key_file: Path) -> None:
    _filled_vault()
    assert resolve_secret("vault:acme-2026/web01-root").reveal() == b"pw-1"
    assert resolve_secret("vault:acme-2026/web01-root#username").reveal() == b"root"
    with pytest.raises(SecretRefError, match=r"vault:acme-2026/nope: .*no entry 'nope'"):
        resolve_secret("vault:acme-2026/nope")
    with pytest.raises(SecretRefError, match="expected vault:CONTRACT/NAME"):
        resolve_secret("vault:acme-2026")
    with pytest.raises(SecretRefError, match="unknown field"):
        resolve_secret("vault:acme-2026/web01-root#password")


def test_concurrent_writers_in_threads_all_land(key_file: Path) -> None:
    Vault(CONTRACT).init()
    errors: list[BaseException] = []

    def add(i: int) -> None:
        try:
            Vault(CONTRACT).add(VaultEntry(name=f"t{i}"), f"v{i}")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=add, args=(i,)) for i in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert Vault(CONTRACT).names() == sorted(f"t{i}" for i in range(12))


def _add_in_process(home: str, key: str, i: int) -> None:
    os.environ["HANDOVER_HOME"] = home
    os.environ["HANDOVER_VAULT_KEY_FILE"] = key
    Vault(CONTRACT).add(VaultEntry(name=f"p{i}"), f"v{i}")


def test_concurrent_writers_in_processes_all_land(key_file: Path) -> None:
    Vault(CONTRACT).init()
    home = os.environ["HANDOVER_HOME"]
    with ProcessPoolExecutor(max_workers=4) as pool:
        list(pool.map(_add_in_process, [home] * 8, [str(key_file)] * 8, range(8)))
    vault = Vault(CONTRACT)
    assert vault.names() == sorted(f"p{i}" for i in range(8))
    assert vault.secret("p5").reveal() == b"v5"


def test_invalid_names_are_refused(key_file: Path) -> None:
    with pytest.raises(VaultError, match="invalid contract id"):
        Vault("../etc")
    with pytest.raises(ValueError, match="invalid entry name"):
        VaultEntry(name="Bad Name")
