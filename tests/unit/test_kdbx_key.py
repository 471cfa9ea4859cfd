"""credentials.kdbx's key derived ahead of the export: same file, fresh salt, no Argon2 later."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from argon2.low_level import Type, hash_secret_raw
from pykeepass import PyKeePass
from pykeepass.pykeepass import BLANK_DATABASE_LOCATION, BLANK_DATABASE_PASSWORD

import handover.exit.credentials_export as credentials_export
import handover.secrets.kdbx_key as kdbx_key
from handover.bundle.age import X25519Identity
from handover.contract.loader import load_playbook
from handover.exit.credentials_export import export_vault, prepare_export_key
from handover.secrets.kdbx import export_kdbx, generate_master_password
from handover.secrets.kdbx_key import (
    KDF_ARGON2D_UUID,
    PREPARED_KEYS,
    MasterKey,
    PreparedKeys,
    derive_master_key,
)
from handover.secrets.vault import Vault, VaultEntry

PLAYBOOK = Path("playbooks/examples/acme.yaml")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _vault_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HANDOVER_VAULT_KEY", str(X25519Identity.generate()))


def _kdf(path: Path, password: str) -> dict[str, object]:
    """The KDF fields of a KDBX file, read by opening it with its password (a full Argon2)."""
    params = PyKeePass(str(path), password=password).kdbx.header.value.dynamic_header
    return {key: item.value for key, item in params.kdf_parameters.data.dict.items()}


def _vault() -> Vault:
    vault = Vault("acme-2026")
    vault.add(VaultEntry(name="web01-root", username="root", group="Servers"), "pw-1")
    return vault


def test_the_template_key_is_the_one_of_pykeepass_blank_database() -> None:
    """The kept constant is the template's own key: a new pykeepass template fails here."""
    template = Path(BLANK_DATABASE_LOCATION).read_bytes()
    assert hashlib.sha256(template).hexdigest() == kdbx_key.TEMPLATE_SHA256
    kdf = _kdf(Path(BLANK_DATABASE_LOCATION), BLANK_DATABASE_PASSWORD)
    derived = hash_secret_raw(
        secret=kdbx_key.composite_key(BLANK_DATABASE_PASSWORD),
        salt=kdf["S"],  # type: ignore[arg-type]
        time_cost=kdf["I"],  # type: ignore[arg-type]
        memory_cost=kdf["M"] // 1024,  # type: ignore[operator]
        parallelism=kdf["P"],  # type: ignore[arg-type]
        hash_len=32,
        type=Type.D,
        version=kdf["V"],  # type: ignore[arg-type]
    )
    assert derived == kdbx_key.TEMPLATE_KEY


def test_a_file_written_with_a_prepared_key_opens_with_its_password(tmp_path: Path) -> None:
    key = derive_master_key(generate_master_password())
    out = tmp_path / "credentials.kdbx"
    assert export_kdbx(_vault(), out, key) == key.password
    kdf = _kdf(out, key.password)  # pykeepass derives the key itself, from the header
    assert kdf == {
        "$UUID": KDF_ARGON2D_UUID,
        "I": 14,
        "M": 64 * 1024 * 1024,
        "P": 2,
        "S": key.kdf_salt,
        "V": 0x13,
    }
    entry = PyKeePass(str(out), password=key.password).find_entries(title="web01-root", first=True)
    assert (entry.username, entry.password) == ("root", "pw-1")


def test_every_export_has_its_own_salt_and_seeds(tmp_path: Path) -> None:
    template_salt = _kdf(Path(BLANK_DATABASE_LOCATION), BLANK_DATABASE_PASSWORD)["S"]
    vault = _vault()
    headers = []
    for name in ("a.kdbx", "b.kdbx"):
        password = export_kdbx(vault, tmp_path / name)
        header = PyKeePass(str(tmp_path / name), password=password).kdbx.header.value
        headers.append(header.dynamic_header)
    salts = [h.kdf_parameters.data.dict["S"].value for h in headers]
    seeds = [h.master_seed.data for h in headers]
    assert len({*salts, template_salt}) == 3
    assert seeds[0] != seeds[1]


def test_an_unknown_template_is_opened_with_its_password(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(kdbx_key, "TEMPLATE_SHA256", "0" * 64)
    password = export_kdbx(_vault(), tmp_path / "credentials.kdbx")
    kp = PyKeePass(str(tmp_path / "credentials.kdbx"), password=password)
    assert [e.title for e in kp.entries] == ["web01-root"]


def test_a_master_key_shows_nothing_secret() -> None:
    key = derive_master_key("tell-no-one")
    shown = repr(key) + str(key)
    assert "tell-no-one" not in shown
    assert key.kdf_salt.hex() not in shown and key.transformed_key.hex() not in shown
    assert repr(key) == "MasterKey()"


def test_prepared_keys_are_taken_once_per_contract() -> None:
    keys = PreparedKeys()
    first, second = MasterKey("a", b"s", b"k"), MasterKey("b", b"t", b"l")
    keys.put("acme", first)
    keys.put("acme", second)  # a newer key replaces one never taken
    assert "acme" in keys and "other" not in keys
    assert keys.take("other") is None
    assert keys.take("acme") is second
    assert keys.take("acme") is None


def test_the_export_takes_the_prepared_key(monkeypatch: pytest.MonkeyPatch) -> None:
    client = X25519Identity.generate()
    shown: list[str] = []
    monkeypatch.setattr(credentials_export, "bundle_recipients", lambda _: [client.recipient()])
    monkeypatch.setattr(credentials_export, "_show_once", lambda _c, pw: shown.append(pw))
    playbook = load_playbook(PLAYBOOK)
    assert not prepare_export_key(playbook.contract_id)  # no vault: nothing to prepare
    assert playbook.contract_id not in PREPARED_KEYS
    Vault(playbook.contract_id).add(VaultEntry(name="web01-ops"), "pw1")
    assert prepare_export_key(playbook.contract_id)
    assert playbook.contract_id in PREPARED_KEYS
    first = PREPARED_KEYS.take(playbook.contract_id)
    PREPARED_KEYS.put(playbook.contract_id, first)
    derived: list[str] = []
    monkeypatch.setattr(credentials_export, "derive_master_key", derived.append)
    assert prepare_export_key(playbook.contract_id)  # the exit's second chance: kept, not redone
    assert derived == []

    exported = export_vault(playbook, "bundle-1")

    assert playbook.contract_id not in PREPARED_KEYS  # taken, once
    assert exported.kdbx is not None and len(shown) == 1
    kp = PyKeePass(exported.kdbx, password=shown[0])
    assert [e.title for e in kp.entries] == ["web01-ops"]


CHILD = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from handover.secrets.kdbx import export_kdbx, generate_master_password
    from handover.secrets.kdbx_key import derive_master_key, open_blank_database

    from handover.secrets.vault import Vault, VaultEntry

    def peak_kib():
        with open("/proc/self/status") as status:
            return int(next(l for l in status if l.startswith("VmHWM")).split()[1])

    vault = Vault(f"acme-{sys.argv[1]}")
    vault.add(VaultEntry(name="web01-root"), "pw-1")
    open_blank_database()  # the imports and the template, read once
    key = derive_master_key(generate_master_password()) if sys.argv[1] == "ahead" else None
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")  # Linux: the peak RSS starts again from the RSS now
    before = peak_kib()
    export_kdbx(vault, Path(sys.argv[2]), key)
    print(json.dumps({"grew_kib": peak_kib() - before}))
    """
)


def _export_growth(tmp_path: Path, mode: str) -> int:
    """How much an export raises a fresh process's peak RSS, in KiB."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, mode, str(tmp_path / f"{mode}.kdbx")],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return int(json.loads(done.stdout.splitlines()[-1])["grew_kib"])


def test_an_export_with_its_key_derived_ahead_needs_no_argon2_memory(tmp_path: Path) -> None:
    """The point of deriving ahead: the export itself stays far below Argon2's 64 MiB."""
    inline = _export_growth(tmp_path, "inline")
    ahead = _export_growth(tmp_path, "ahead")
    assert inline > 48 * 1024, inline  # the Argon2 runs inside the export
    assert ahead < 16 * 1024, ahead
