"""KeePass KDBX in and out of the vault: a client's database at takeover, credentials.kdbx at exit.

At takeover a client may hand over its credentials as a KeePass database:
`import_kdbx` keeps its groups. At exit `export_kdbx` writes
`credentials.kdbx` (KDBX 4, Argon2, opened by KeePassXC and pykeepass)
holding every entry, the ones the provider created included, grouped as in
the vault. Its master password is generated here, returned once to be shown
to the operator and delivered to the client separately; it is never stored.

Master passwords are passed in as `Secret` (from a prompt, stdin or an
environment reference), never on a command line.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
import urllib.parse
from pathlib import Path
from typing import Any

from handover.errors import HandoverError, UsageError
from handover.secrets.credential_import import (
    PROP_CERTIFICATE,
    PROP_CONTRACT,
    PROP_CREATED_BY,
    PROP_DESCRIPTION,
    PROP_KIND,
    PROP_NAME,
    PROP_PRIVATE_KEY,
    ImportResult,
    IncomingCredential,
    store_incoming,
)
from handover.secrets.kdbx_key import (
    MasterKey,
    derive_master_key,
    open_blank_database,
    set_kdf_parameters,
)
from handover.secrets.references import Secret, resolve_secret
from handover.secrets.vault import Kind, Vault, VaultEntry

MASTER_PASSWORD_ALPHABET = "abcdefghijkmnopqrstuvwxyzACDEFGHJKLMNPQRTUVWXY3479"  # no look-alikes
MASTER_PASSWORD_GROUPS = 6
MASTER_PASSWORD_GROUP_SIZE = 5  # 30 characters from 50 symbols: about 169 bits


# --- import --------------------------------------------------------------------------------


def read_kdbx(path: Path, password: Secret | None, keyfile: Path | None = None) -> Any:
    """Open a KDBX file with pykeepass; raise UsageError naming the file on failure."""
    from pykeepass import PyKeePass
    from pykeepass.exceptions import CredentialsError, HeaderChecksumError, PayloadChecksumError

    if not path.is_file():
        raise UsageError(f"{path}: no such KDBX file")
    try:
        return PyKeePass(
            str(path),
            password=password.reveal_text() if password is not None else None,
            keyfile=str(keyfile) if keyfile else None,
        )
    except CredentialsError as exc:
        raise UsageError(f"{path}: wrong master password or key file") from exc
    except (HeaderChecksumError, PayloadChecksumError) as exc:
        raise UsageError(
            f"{path}: not a readable KDBX file (corrupted: {type(exc).__name__})"
        ) from exc
    except Exception as exc:  # pykeepass raises construct/lxml errors on junk input
        raise UsageError(f"{path}: not a readable KDBX file ({type(exc).__name__})") from exc


def import_kdbx(
    vault: Vault,
    path: Path,
    password: Secret | None,
    *,
    keyfile: Path | None = None,
    replace: bool = False,
) -> ImportResult:
    """Import every entry of a KeePass database, keeping its group path.

    Entries in the recycle bin and history entries are left out. An entry with
    a password and a TOTP seed becomes two vault entries (`NAME`, `NAME-totp`).
    Raises UsageError for a wrong password or an unreadable file.
    """
    kp = read_kdbx(path, password, keyfile)
    recycle = kp.recyclebin_group
    items: list[IncomingCredential] = []
    for entry in kp.entries:
        if entry.is_a_history_entry:
            continue
        groups = _group_path(entry.group)
        if recycle is not None and _inside(entry.group, recycle):
            continue
        props = {k: v or "" for k, v in entry.custom_properties.items()}
        attachments = {a.filename: bytes(a.binary) for a in entry.attachments}
        items.append(
            IncomingCredential(
                title=entry.title or "",
                username=entry.username or "",
                password=entry.password or "",
                url=entry.url or "",
                notes=entry.notes or "",
                group=groups,
                tags=list(entry.tags or []),
                totp=entry.otp or "",
                note_only=not entry.password and bool(entry.notes) and not entry.otp,
                props=props,
                attachments=attachments,
            )
        )
    return store_incoming(vault, items, ImportResult(source=str(path), layout="kdbx"), replace)


def _group_path(group: Any) -> str:
    names: list[str] = []
    while group is not None and not group.is_root_group:
        names.insert(0, group.name or "")
        group = group.parentgroup
    return "/".join(names)


def _inside(group: Any, ancestor: Any) -> bool:
    while group is not None:
        if group.uuid == ancestor.uuid:
            return True
        group = group.parentgroup
    return False


def resolve_password(ref: str) -> Secret:
    """Resolve a master-password reference (`env:VAR`, `file:PATH`, ...) for imports."""
    try:
        return resolve_secret(ref)
    except HandoverError as exc:
        raise UsageError(f"master password: {exc}") from exc


# --- export --------------------------------------------------------------------------------


def generate_master_password() -> str:
    """A strong master password that can be read out: `xxxxx-xxxxx-...` (6 x 5 characters)."""
    groups = [
        "".join(secrets.choice(MASTER_PASSWORD_ALPHABET) for _ in range(MASTER_PASSWORD_GROUP_SIZE))
        for _ in range(MASTER_PASSWORD_GROUPS)
    ]
    return "-".join(groups)


def _otp_uri(vault: Vault, entry: VaultEntry, seed: str) -> str:
    if seed.startswith("otpauth://"):
        return seed
    label = urllib.parse.quote(f"{vault.contract_id}:{entry.username or entry.name}")
    query = urllib.parse.urlencode(
        {"secret": seed.replace(" ", "").upper(), "issuer": vault.contract_id}
    )
    return f"otpauth://totp/{label}?{query}"


def export_kdbx(vault: Vault, path: Path, key: MasterKey | None = None) -> str:
    """Write every vault entry to a new KDBX 4 file at `path`; return its master password.

    The password is generated here (or with `key`, derived ahead by
    `derive_master_key`, so that no Argon2 runs now), returned once and never
    stored: show it to the operator, deliver it to the client apart from
    the bundle. The file
    is built in a private (0700) temporary folder beside `path` and renamed
    into place, so `path` is either complete or absent. Groups follow the
    entries' `group`; kinds map to KeePass fields: password/api-key in the
    password field, ssh-key and certificate as attachments plus a protected
    `private-key` field, TOTP seeds as the otp field, notes in the notes.
    Every entry carries `handover-name`, `handover-kind` and
    `handover-created-by` so that a re-import restores it exactly.
    """
    if key is None:
        key = derive_master_key(generate_master_password())
    items = vault.items()
    path.parent.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix=".credentials-", dir=path.parent))
    try:
        os.chmod(workdir, 0o700)
        tmp = workdir / path.name
        kp = open_blank_database()
        kp.filename, kp.password, kp.keyfile = str(tmp), key.password, None
        set_kdf_parameters(kp, key)
        groups: dict[str, Any] = {"": kp.root_group}
        for entry, secret in items:
            _export_entry(kp, vault, _group(kp, groups, entry.group), entry, secret)
        kp.save(transformed_key=key.transformed_key)  # keeps key's salt, rotates the rest
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return key.password


def _group(kp: Any, groups: dict[str, Any], group_path: str) -> Any:
    if group_path in groups:
        return groups[group_path]
    parent_path, _, leaf = group_path.rpartition("/")
    parent = _group(kp, groups, parent_path)
    groups[group_path] = kp.add_group(parent, leaf or "(unnamed)")
    return groups[group_path]


def _export_entry(kp: Any, vault: Vault, group: Any, entry: VaultEntry, secret: Secret) -> None:
    raw = secret.reveal()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = ""
    password = text if entry.kind in (Kind.PASSWORD, Kind.API_KEY) else ""
    notes = entry.notes
    if entry.kind is Kind.NOTE:
        notes = text
    otp = _otp_uri(vault, entry, text.strip()) if entry.kind is Kind.TOTP_SEED and text else None
    kp_entry = kp.add_entry(
        group,
        entry.name,
        entry.username,
        password,
        url=entry.url or None,
        notes=notes or None,
        tags=entry.tags or None,
        otp=otp,
        force_creation=True,
    )
    kp_entry.set_custom_property(PROP_NAME, entry.name)
    kp_entry.set_custom_property(PROP_KIND, entry.kind.value)
    kp_entry.set_custom_property(PROP_CREATED_BY, entry.created_by.value)
    kp_entry.set_custom_property(PROP_CONTRACT, vault.contract_id)
    if entry.kind is Kind.NOTE and entry.notes:
        kp_entry.set_custom_property(PROP_DESCRIPTION, entry.notes)
    if entry.kind in (Kind.SSH_KEY, Kind.CERTIFICATE):
        if text:
            kp_entry.set_custom_property(PROP_PRIVATE_KEY, text, protect=True)
        suffix = ".key" if entry.kind is Kind.CERTIFICATE else ""
        _attach(kp, kp_entry, f"{entry.name}{suffix}", raw)
    if entry.kind is Kind.CERTIFICATE and entry.certificate:
        kp_entry.set_custom_property(PROP_CERTIFICATE, entry.certificate)
        _attach(kp, kp_entry, f"{entry.name}.crt", entry.certificate.encode("utf-8"))
    if not text and raw and entry.kind not in (Kind.SSH_KEY, Kind.CERTIFICATE):
        _attach(kp, kp_entry, f"{entry.name}.bin", raw)  # binary secrets travel as attachments


def _attach(kp: Any, kp_entry: Any, filename: str, data: bytes) -> None:
    binary_id = kp.add_binary(data, protected=True)
    kp_entry.add_attachment(binary_id, filename)
