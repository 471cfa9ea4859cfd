"""KDBX and CSV imports, the credentials.kdbx export, missing playbook references."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pykeepass import PyKeePass, create_database

from handover.bundle.age import X25519Identity
from handover.errors import UsageError
from handover.secrets.csv_import import detect_csv_layout, import_csv
from handover.secrets.kdbx import export_kdbx, generate_master_password, import_kdbx
from handover.secrets.references import Secret
from handover.secrets.vault import CreatedBy, Kind, Vault, VaultEntry
from handover.secrets.vault_references import missing_references

CONTRACT = "acme-2026"
CERT = "-----BEGIN CERTIFICATE-----\nMIIBcert\n-----END CERTIFICATE-----\n"
KEY = "-----BEGIN PRIVATE KEY-----\nMIIEkey\n-----END PRIVATE KEY-----\n"
SSH_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaA\n-----END OPENSSH PRIVATE KEY-----\n"


@pytest.fixture(autouse=True)
def vault_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HANDOVER_VAULT_KEY", str(X25519Identity.generate()))


def _client_kdbx(path: Path, password: str) -> None:
    kp = create_database(str(path), password=password)
    servers = kp.add_group(kp.root_group, "Servers")
    web = kp.add_group(servers, "Web")
    kp.add_entry(web, "web01 root", "root", "r00t-pw", url="ssh://web01", tags=["web"])
    kp.add_entry(
        kp.root_group,
        "Mail admin",
        "admin@acme",
        "mail-pw",
        otp="otpauth://totp/x?secret=JBSWY3DPEHPK3PXP",
    )
    note = kp.add_entry(servers, "Alarm code", "", "", notes="1234#")
    del note
    key_entry = kp.add_entry(servers, "deploy key", "deploy", "")
    key_entry.add_attachment(kp.add_binary(SSH_KEY.encode()), "id_ed25519")
    trashed = kp.add_entry(kp.root_group, "old thing", "u", "trashed-pw")
    kp.trash_entry(trashed)
    kp.save()


def test_import_kdbx_keeps_groups_kinds_and_totp(tmp_path: Path) -> None:
    source = tmp_path / "client.kdbx"
    _client_kdbx(source, "client master")
    vault = Vault(CONTRACT)
    result = import_kdbx(vault, source, Secret(b"client master"))
    assert result.layout == "kdbx"
    assert sorted(result.added) == [
        "alarm-code",
        "deploy-key",
        "mail-admin",
        "mail-admin-totp",
        "web01-root",
    ]
    web = vault.get("web01-root")
    assert (web.group, web.username, web.url, web.tags) == (
        "Servers/Web",
        "root",
        "ssh://web01",
        ["web"],
    )
    assert vault.secret("web01-root").reveal() == b"r00t-pw"
    assert vault.get("mail-admin-totp").kind is Kind.TOTP_SEED
    assert b"JBSWY3DPEHPK3PXP" in vault.secret("mail-admin-totp").reveal()
    assert vault.get("alarm-code").kind is Kind.NOTE
    assert vault.secret("alarm-code").reveal() == b"1234#"
    assert vault.get("deploy-key").kind is Kind.SSH_KEY
    assert vault.secret("deploy-key").reveal() == SSH_KEY.encode()
    assert "old-thing" not in vault.names()
    again = import_kdbx(vault, source, Secret(b"client master"))
    assert again.added == [] and "web01-root: already in the vault (use --replace)" in again.skipped


def test_import_kdbx_wrong_password_is_a_usage_error(tmp_path: Path) -> None:
    source = tmp_path / "client.kdbx"
    create_database(str(source), password="right")
    with pytest.raises(UsageError, match=r"client\.kdbx: wrong master password"):
        import_kdbx(Vault(CONTRACT), source, Secret(b"wrong"))
    junk = tmp_path / "junk.kdbx"
    junk.write_bytes(b"not a database at all")
    with pytest.raises(UsageError, match=r"junk\.kdbx: not a readable KDBX"):
        import_kdbx(Vault(CONTRACT), junk, Secret(b"x"))


BITWARDEN = (
    "folder,favorite,type,name,notes,fields,reprompt,login_uri,login_username,login_password,login_totp\n"
    'Servers,,login,Web01 root,,"env: prod",0,ssh://web01,root,bw-pw,\n'
    ",,login,Mail,,,0,https://mail.acme,admin,mail-pw,JBSWY3DPEHPK3PXP\n"
    ",,note,Alarm code,9876,,0,,,,\n"
)
ONEPASSWORD = (
    "Title,Url,Username,Password,OTPAuth,Favorite,Archived,Tags,Notes\n"
    "Web01 root,ssh://web01,root,op-pw,,false,false,web;prod,rack 3\n"
    "Mail,https://mail.acme,admin,mail-pw,otpauth://totp/m?secret=ABC,false,false,,\n"
)
KEEPASSXC = (
    '"Group","Title","Username","Password","URL","Notes","TOTP","Icon","Last Modified","Created"\n'
    '"Root/Servers/Web","Web01 root","root","kx-pw","ssh://web01","","","0","2026-01-01T00:00:00Z","2026-01-01T00:00:00Z"\n'
    '"Root","Mail","admin","mail-pw","https://mail.acme","","otpauth://totp/m?secret=ABC","0","",""\n'
)


@pytest.mark.parametrize(
    ("layout", "text", "password", "group"),
    [
        ("bitwarden", BITWARDEN, b"bw-pw", "Servers"),
        ("1password", ONEPASSWORD, b"op-pw", ""),
        ("keepassxc", KEEPASSXC, b"kx-pw", "Servers/Web"),
    ],
)
def test_import_csv_detects_each_layout(
    tmp_path: Path, layout: str, text: str, password: bytes, group: str
) -> None:
    source = tmp_path / "export.csv"
    source.write_text(text, encoding="utf-8")
    vault = Vault(CONTRACT)
    result = import_csv(vault, source)
    assert result.layout == layout
    assert "web01-root" in result.added and "mail-totp" in result.added
    assert vault.secret("web01-root").reveal() == password
    assert vault.get("web01-root").group == group
    assert vault.get("web01-root").username == "root"
    assert vault.get("mail").url == "https://mail.acme"
    assert vault.get("mail-totp").kind is Kind.TOTP_SEED
    if layout == "bitwarden":
        assert vault.get("alarm-code").kind is Kind.NOTE
        assert vault.secret("alarm-code").reveal() == b"9876"
    if layout == "1password":
        assert vault.get("web01-root").tags == ["web", "prod"]
        assert vault.get("web01-root").notes == "rack 3"


def test_unknown_csv_layout_names_file_and_header(tmp_path: Path) -> None:
    source = tmp_path / "weird.csv"
    source.write_text("a,b,c\n1,2,3\n", encoding="utf-8")
    with pytest.raises(UsageError, match=r"weird.csv: unknown CSV layout \(header 'a,b,c'\)"):
        import_csv(Vault(CONTRACT), source)
    assert detect_csv_layout(["Title", "Website", "Username", "Password"]) == "1password"


def test_export_kdbx_round_trip_with_returned_password(tmp_path: Path) -> None:
    vault = Vault(CONTRACT)
    vault.add(
        VaultEntry(name="web01-root", username="root", group="Servers/Web", tags=["web"]), "pw-1"
    )
    vault.add(VaultEntry(name="api", kind=Kind.API_KEY, url="https://api"), "tok")
    vault.add(
        VaultEntry(
            name="deploy", kind=Kind.SSH_KEY, created_by=CreatedBy.PROVIDER, group="Servers"
        ),
        SSH_KEY,
    )
    vault.add(VaultEntry(name="tls", kind=Kind.CERTIFICATE, certificate=CERT), KEY)
    vault.add(VaultEntry(name="mfa", kind=Kind.TOTP_SEED, username="admin"), "JBSWY3DPEHPK3PXP")
    vault.add(VaultEntry(name="alarm", kind=Kind.NOTE, notes="front door"), "1234#")
    out = tmp_path / "out" / "credentials.kdbx"
    password = export_kdbx(vault, out)
    assert len(password) >= 24
    assert sorted(os.listdir(out.parent)) == ["credentials.kdbx"]  # no temp left behind
    assert out.stat().st_mode & 0o777 == 0o600
    assert b"pw-1" not in out.read_bytes()

    kp = PyKeePass(str(out), password=password)
    assert kp.version == (4, 0)
    web = kp.find_entries(title="web01-root", first=True)
    assert web.group.name == "Web" and web.group.parentgroup.name == "Servers"
    assert (web.username, web.password, web.tags) == ("root", "pw-1", ["web"])
    assert kp.find_entries(title="api", first=True).password == "tok"
    deploy = kp.find_entries(title="deploy", first=True)
    assert deploy.get_custom_property("handover-created-by") == "provider"
    assert deploy.get_custom_property("private-key") == SSH_KEY
    assert deploy.attachments[0].binary == SSH_KEY.encode()
    tls = kp.find_entries(title="tls", first=True)
    assert {a.filename: a.binary for a in tls.attachments} == {
        "tls.key": KEY.encode(),
        "tls.crt": CERT.encode(),
    }
    mfa = kp.find_entries(title="mfa", first=True)
    assert mfa.otp.startswith("otpauth://totp/") and "secret=JBSWY3DPEHPK3PXP" in mfa.otp
    alarm = kp.find_entries(title="alarm", first=True)
    assert alarm.notes == "1234#" and alarm.get_custom_property("description") == "front door"

    # re-import of our own export restores the entries exactly
    other = Vault("acme-copy")
    result = import_kdbx(other, out, Secret(password.encode()))
    assert sorted(result.added) == sorted(vault.names())
    for entry in vault.entries():
        back = other.get(entry.name)
        assert (back.kind, back.group, back.created_by) == (
            entry.kind,
            entry.group,
            entry.created_by,
        )
        if entry.kind is Kind.TOTP_SEED:  # comes back as the otpauth:// URI holding the seed
            assert b"secret=JBSWY3DPEHPK3PXP" in other.secret(entry.name).reveal()
        else:
            assert other.secret(entry.name).reveal() == vault.secret(entry.name).reveal()


def test_export_kdbx_wrong_password_is_refused(tmp_path: Path) -> None:
    vault = Vault(CONTRACT)
    vault.add(VaultEntry(name="a"), "x")
    out = tmp_path / "credentials.kdbx"
    export_kdbx(vault, out)
    with pytest.raises(UsageError, match="wrong master password"):
        import_kdbx(Vault("other-co"), out, Secret(b"guess"))


def test_generated_master_passwords_are_strong_and_distinct() -> None:
    passwords = {generate_master_password() for _ in range(50)}
    assert len(passwords) == 50
    sample = passwords.pop()
    assert len(sample.replace("-", "")) == 30 and sample.count("-") == 5


def test_missing_references_lists_unresolved_vault_refs_by_name() -> None:
    vault = Vault(CONTRACT)
    vault.add(VaultEntry(name="web01-ops", username="ops"), "pw")
    vault.add(VaultEntry(name="s3"), "secret")
    refs = [  # as Playbook.secret_refs() lists them
        ("perimeter.hosts[0].credential", "vault:acme-2026/web01-ops"),
        ("perimeter.hosts[1].credential", "vault:acme-2026/db01-ops"),
        ("perimeter.s3.access_key_id", "vault:acme-2026/s3#username"),
        ("perimeter.s3.secret_access_key", "vault:acme-2026/s3"),
        ("reversibility.signing_key", "file:.handover/keys/provider-signing"),
        ("backups.identity", "vault:elsewhere/backup-key"),
    ]
    assert missing_references(refs, vault) == [
        "vault:acme-2026/db01-ops (perimeter.hosts[1].credential)",
        "vault:acme-2026/s3#username (perimeter.s3.access_key_id: entry has no username)",
        "vault:elsewhere/backup-key (backups.identity: no readable vault for elsewhere)",
    ]
    vault.add(VaultEntry(name="db01-ops"), "pw2")
    assert len(missing_references(refs, vault)) == 2
