"""What every credential import shares: the incoming record, its vault entries, the result.

A client hands over its credentials as whatever its password manager
exports (a KeePass database, a Bitwarden, 1Password or KeePassXC CSV). Each
reader (`handover.secrets.kdbx`, `handover.secrets.csv_import`) turns its
format into `IncomingCredential` records; this module decides which vault
entries a record becomes and stores them, so that every format maps kinds,
TOTP seeds, keys and certificates the same way.

The `handover-*` property names are the marks `export_kdbx` leaves on every
entry of `credentials.kdbx`, so that a re-import restores it exactly.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from handover.secrets.references import Secret
from handover.secrets.vault import CreatedBy, Kind, Vault, VaultEntry, entry_name_for

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
class IncomingCredential:
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


def vault_entries_for(item: IncomingCredential) -> list[tuple[VaultEntry, Secret]] | str:
    """Map one exported record to vault entries, or return why it is skipped."""
    name = item.props.get(PROP_NAME) or entry_name_for(item.title or item.url or item.username)
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


def store_incoming(
    vault: Vault, items: Iterable[IncomingCredential], result: ImportResult, replace: bool
) -> ImportResult:
    """Add each record's entries to `vault`, recording every name in `result`.

    Two records mapping to one name get `-2`, `-3`... suffixes; a name
    already in the vault is skipped unless `replace`.
    """
    existing = set(vault.names()) if vault.exists() else set()
    seen: set[str] = set()
    for item in items:
        mapped = vault_entries_for(item)
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
