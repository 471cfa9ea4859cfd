"""Password-manager CSV exports into the vault: Bitwarden, 1Password, KeePassXC layouts.

Clients without a KeePass database hand over a CSV export; its layout is
detected from the header (or given) and reported in the ImportResult. The
file holds every secret in clear: the CLI reminds the operator to delete it.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from handover.errors import UsageError
from handover.secrets.credential_import import ImportResult, IncomingCredential, store_incoming
from handover.secrets.vault import Vault

CSV_LAYOUTS = ("bitwarden", "1password", "keepassxc")


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


def _bitwarden(row: dict[str, str]) -> IncomingCredential:
    kind = row.get("type", "login").strip().lower()
    props: dict[str, str] = {}
    for line in row.get("fields", "").splitlines():
        key, sep, value = line.partition(": ")
        if sep:
            props[key.strip()] = value
    return IncomingCredential(
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


def _onepassword(row: dict[str, str]) -> IncomingCredential:
    tags = [t.strip() for t in re.split(r"[;,]", row.get("tags", "")) if t.strip()]
    return IncomingCredential(
        title=row.get("title", ""),
        username=row.get("username", ""),
        password=row.get("password", ""),
        url=row.get("url", "") or row.get("website", ""),
        notes=row.get("notes", "") or row.get("notesplain", ""),
        tags=tags,
        totp=row.get("otpauth", ""),
        note_only=not row.get("password") and not row.get("username") and bool(row.get("notes")),
    )


def _keepassxc(row: dict[str, str]) -> IncomingCredential:
    # KeePassXC writes the root group's name first ("Root/Servers"): drop it.
    parts = [p for p in row.get("group", "").split("/") if p]
    return IncomingCredential(
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
    return store_incoming(vault, items, ImportResult(source=str(path), layout=detected), replace)
