"""Credentials in and out of the vault: KeePass KDBX and CSV at takeover, KDBX at exit.

At takeover a client hands over its credentials as whatever its password
manager exports: a KeePass database (groups kept), or a CSV export from
Bitwarden, 1Password or KeePassXC (the layout is detected from the header
and reported). At exit `export_kdbx` writes `credentials.kdbx` (KDBX 4,
Argon2, opened by KeePassXC and pykeepass) holding every entry, the ones the
provider created included, grouped as in the vault. Its master password is
generated here, returned once to be shown to the operator and delivered to
the client separately; it is never stored.

Master passwords are passed in as `Secret` (from a prompt, stdin or an
environment reference), never on a command line.
"""

from __future__ import annotations

import csv
import io
import os
import re
import secrets
import shutil
import tempfile
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from handover.errors import HandoverError, SecretRefError, UsageError, VaultError
from handover.secrets.references import Secret, parse_ref, resolve_secret
from handover.secrets.vault import CreatedBy, Kind, Vault, VaultEntry, parse_vault_ref, slugify

if TYPE_CHECKING:
    from handover.contract.playbook import Playbook

CSV_LAYOUTS = ("bitwarden", "1password", "keepassxc")
MASTER_PASSWORD_ALPHABET = "abcdefghijkmnopqrstuvwxyzACDEFGHJKLMNPQRTUVWXY3479"  # no look-alikes
MASTER_PASSWORD_GROUPS = 6
MASTER_PASSWORD_GROUP_SIZE = 5  # 30 characters from 50 symbols: about 169 bits
PROP_NAME = "handover-name"
PROP_KIND = "handover-kind"
PROP_CREATED_BY = "handover-created-by"
PROP_CONTRACT = "handover-contract"
PROP_PRIVATE_KEY = "private-key"
PROP_CERTIFICATE = "certificate"
PROP_DESCRIPTION = "description"
_PEM_PRIVATE = re.compile(rb"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----")


class ImportResult(BaseModel):
    """What an import did, by entry name (never with secrets): checklist evidence."""

    source: str
    layout: str  # kdbx | bitwarden | 1password | keepassxc
    added: list[str] = []
    replaced: list[str] = []
    skipped: list[str] = []  # "title: reason"


@dataclass
class _Incoming:
    """One record read from a password manager export, before it becomes vault entries."""

    title: str
    username: str = ""
    password: str = ""
    url: str = ""
    notes: str = ""
    group: str = ""
    tags: list[str] = field(default_factory=list)
    totp: str = ""
    note_only: bool = False
    props: dict[str, str] = field(default_factory=dict)
    attachments: dict[str, bytes] = field(default_factory=dict)


# --- import --------------------------------------------------------------------------------


def _to_entries(item: _Incoming) -> list[tuple[VaultEntry, Secret]] | str:
    """Map one exported record to vault entries, or return why it is skipped."""
    name = item.props.get(PROP_NAME) or slugify(item.title or item.url or item.username)
    kind_text = item.props.get(PROP_KIND, "")
    created_by = CreatedBy.PROVIDER if item.props.get(PROP_CREATED_BY) == "provider" else None
    common: dict[str, Any] = {
        "username": item.username,
        "url": item.url,
        "tags": item.tags,
        "notes": item.notes,
        "group": item.group,
    }
    if created_by is not None:
        common["created_by"] = created_by
    private_key = item.props.get(PROP_PRIVATE_KEY, "")
    certificate = item.props.get(PROP_CERTIFICATE, "")
    for data in item.attachments.values():
        if not private_key and _PEM_PRIVATE.search(data):
            private_key = data.decode("utf-8", "replace")
        elif not certificate and b"-----BEGIN CERTIFICATE-----" in data:
            certificate = data.decode("utf-8", "replace")
    out: list[tuple[VaultEntry, Secret]] = []
    try:
        kind = Kind(kind_text) if kind_text else None
    except ValueError:
        kind = None
    if kind is Kind.TOTP_SEED or (kind is None and item.totp and not item.password):
        if not item.totp:
            return "no TOTP seed"
        return [(VaultEntry(name=name, kind=Kind.TOTP_SEED, **common), _secret(item.totp))]
    if kind is Kind.NOTE or (kind is None and item.note_only):
        common["notes"] = item.props.get(PROP_DESCRIPTION, "")
        return [(VaultEntry(name=name, kind=Kind.NOTE, **common), _secret(item.notes))]
    if kind is None:
        if certificate and private_key:
            kind = Kind.CERTIFICATE
        elif private_key or _PEM_PRIVATE.search(item.password.encode()):
            kind = Kind.SSH_KEY
        else:
            kind = Kind.PASSWORD
    value = private_key if kind in (Kind.SSH_KEY, Kind.CERTIFICATE) and private_key else ""
    value = value or item.password
    if not value:
        return "no secret (empty password)"
    cert = certificate if kind is Kind.CERTIFICATE else ""
    out.append((VaultEntry(name=name, kind=kind, certificate=cert, **common), _secret(value)))
    if item.totp:
        totp_entry = VaultEntry(name=f"{name}-totp"[:127], kind=Kind.TOTP_SEED, **common)
        out.append((totp_entry, _secret(item.totp)))
    return out


def _secret(text: str) -> Secret:
    return Secret(text.encode("utf-8"))


def _store(
    vault: Vault, items: Iterable[_Incoming], result: ImportResult, replace: bool
) -> ImportResult:
    existing = set(vault.names()) if vault.exists() else set()
    seen: set[str] = set()
    for item in items:
        mapped = _to_entries(item)
        label = item.title or "(untitled)"
        if isinstance(mapped, str):
            result.skipped.append(f"{label}: {mapped}")
            continue
        for entry, secret in mapped:
            name = entry.name
            counter = 2
            while name in seen:
                name = f"{entry.name}-{counter}"
                counter += 1
            entry = entry.model_copy(update={"name": name})
            seen.add(name)
            if name in existing and not replace:
                result.skipped.append(f"{name}: already in the vault (use --replace)")
                continue
            vault.add(entry, secret, replace=replace)
            (result.replaced if name in existing else result.added).append(name)
    return result


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
    items: list[_Incoming] = []
    for entry in kp.entries:
        if entry.is_a_history_entry:
            continue
        groups = _group_path(entry.group)
        if recycle is not None and _inside(entry.group, recycle):
            continue
        props = {k: v or "" for k, v in entry.custom_properties.items()}
        attachments = {a.filename: bytes(a.binary) for a in entry.attachments}
        items.append(
            _Incoming(
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
    return _store(vault, items, ImportResult(source=str(path), layout="kdbx"), replace)


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


def detect_csv_layout(header: list[str], source: str = "CSV") -> str:
    """Name the password manager that wrote a CSV header; UsageError when none matches."""
    cols = {c.strip().lower() for c in header}
    if {"login_username", "login_password"} <= cols:
        return "bitwarden"
    if {"group", "title", "username", "password"} <= cols:
        return "keepassxc"
    if {"title", "username", "password"} <= cols and ({"url", "website", "otpauth"} & cols):
        return "1password"
    shown = ",".join(header)[:120]
    raise UsageError(
        f"{source}: unknown CSV layout (header {shown!r}); expected a Bitwarden, "
        "1Password or KeePassXC export"
    )


def _rows(text: str) -> tuple[list[str], list[dict[str, str]]]:
    reader = csv.reader(io.StringIO(text))
    header = next(reader, [])
    keys = [h.strip().lower() for h in header]
    rows = [
        {k: (row[i] if i < len(row) else "") for i, k in enumerate(keys)}
        for row in reader
        if any(cell.strip() for cell in row)
    ]
    return header, rows


def _bitwarden(row: dict[str, str]) -> _Incoming:
    kind = row.get("type", "login").strip().lower()
    props: dict[str, str] = {}
    for line in row.get("fields", "").splitlines():
        key, sep, value = line.partition(": ")
        if sep:
            props[key.strip()] = value
    return _Incoming(
        title=row.get("name", ""),
        username=row.get("login_username", ""),
        password=row.get("login_password", ""),
        url=row.get("login_uri", "").split(",")[0].strip(),
        notes=row.get("notes", ""),
        group=row.get("folder", "").strip("/"),
        totp=row.get("login_totp", ""),
        note_only=kind == "note",
        props=props,
    )


def _onepassword(row: dict[str, str]) -> _Incoming:
    tags = [t.strip() for t in re.split(r"[;,]", row.get("tags", "")) if t.strip()]
    return _Incoming(
        title=row.get("title", ""),
        username=row.get("username", ""),
        password=row.get("password", ""),
        url=row.get("url", "") or row.get("website", ""),
        notes=row.get("notes", "") or row.get("notesplain", ""),
        tags=tags,
        totp=row.get("otpauth", ""),
        note_only=not row.get("password") and not row.get("username") and bool(row.get("notes")),
    )


def _keepassxc(row: dict[str, str]) -> _Incoming:
    # KeePassXC writes the root group's name first ("Root/Servers"): drop it.
    parts = [p for p in row.get("group", "").split("/") if p]
    return _Incoming(
        title=row.get("title", ""),
        username=row.get("username", ""),
        password=row.get("password", ""),
        url=row.get("url", ""),
        notes=row.get("notes", ""),
        group="/".join(parts[1:]),
        totp=row.get("totp", ""),
        note_only=not row.get("password") and not row.get("username") and bool(row.get("notes")),
    )


_CSV_READERS = {"bitwarden": _bitwarden, "1password": _onepassword, "keepassxc": _keepassxc}


def import_csv(
    vault: Vault, path: Path, *, layout: str | None = None, replace: bool = False
) -> ImportResult:
    """Import a Bitwarden, 1Password or KeePassXC CSV export; `result.layout` says which.

    Raises UsageError naming the file for an unreadable file or an unknown layout.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: not UTF-8 text") from exc
    header, rows = _rows(text)
    detected = layout or detect_csv_layout(header, str(path))
    if detected not in _CSV_READERS:
        raise UsageError(f"unknown CSV layout {detected!r}: expected one of {CSV_LAYOUTS}")
    items = [_CSV_READERS[detected](row) for row in rows]
    return _store(vault, items, ImportResult(source=str(path), layout=detected), replace)


# --- checks --------------------------------------------------------------------------------


def missing_references(playbook: Playbook, vault: Vault) -> list[str]:
    """Every `vault:` reference of the playbook that does not resolve, as `REF (field path)`.

    The takeover item "credentials received" is done only when this is empty.
    References to another contract's vault are checked in that vault.
    """
    missing: list[str] = []
    names_by_contract: dict[str, dict[str, VaultEntry] | None] = {}
    for field_path, ref in playbook.secret_refs():
        try:
            scheme, rest = parse_ref(ref)
        except SecretRefError:
            missing.append(f"{ref} ({field_path}: malformed reference)")
            continue
        if scheme != "vault":
            continue
        try:
            contract, name, fld = parse_vault_ref(rest)
        except SecretRefError:
            missing.append(f"{ref} ({field_path}: malformed reference)")
            continue
        if contract not in names_by_contract:
            target = vault if contract == vault.contract_id else Vault(contract)
            try:
                names_by_contract[contract] = {e.name: e for e in target.entries()}
            except VaultError:
                names_by_contract[contract] = None
        entries = names_by_contract[contract]
        if entries is None:
            missing.append(f"{ref} ({field_path}: no readable vault for {contract})")
        elif name not in entries:
            missing.append(f"{ref} ({field_path})")
        elif fld == "username" and not entries[name].username:
            missing.append(f"{ref} ({field_path}: entry has no username)")
    return missing


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


def export_kdbx(vault: Vault, path: Path) -> str:
    """Write every vault entry to a new KDBX 4 file at `path`; return its master password.

    The password is generated here, returned once and never stored: show it
    to the operator, deliver it to the client apart from the bundle. The file
    is built in a private (0700) temporary folder beside `path` and renamed
    into place, so `path` is either complete or absent. Groups follow the
    entries' `group`; kinds map to KeePass fields: password/api-key in the
    password field, ssh-key and certificate as attachments plus a protected
    `private-key` field, TOTP seeds as the otp field, notes in the notes.
    Every entry carries `handover-name`, `handover-kind` and
    `handover-created-by` so that a re-import restores it exactly.
    """
    from pykeepass import create_database

    password = generate_master_password()
    items = vault.items()
    path.parent.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix=".credentials-", dir=path.parent))
    try:
        os.chmod(workdir, 0o700)
        tmp = workdir / path.name
        kp = create_database(str(tmp), password=password)
        groups: dict[str, Any] = {"": kp.root_group}
        for entry, secret in items:
            _export_entry(kp, vault, _group(kp, groups, entry.group), entry, secret)
        kp.save()
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return password


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
