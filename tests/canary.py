"""Canary secrets and the search that proves they leaked nowhere (issue 6, "No leak, proven").

The end-to-end test plants `make_canaries()` in the vault and the
environment, runs the lifecycle, then calls `search_canaries()` on every
place a secret must not reach (Prefect's database and result storage, logs,
plaintext files under `.handover/`, the bundle's plaintext files) and
`search_text()` on captured strings (logs, artifacts, events). Both return
one line per hit, `LOCATION: CANARY-NAME [form]`, so a failing assertion
shows where each leak is; zero hits is the goal. The same functions, run on
the decrypted `credentials.kdbx` fields, must find every canary, so that the
test cannot pass by dropping them.

Forms searched for each canary: the raw value, each long line of a
multi-line value (a PEM's body lines survive re-wrapping and JSON escaping),
the JSON-escaped value, the URL-encoded value, and base64 in the standard
and urlsafe alphabets at each of the three byte alignments (the stable middle
of the encoding, so a canary embedded anywhere inside base64 data is found).

Containers are opened: SQLite databases are searched as raw bytes (with
their -wal file) and after a `.dump` (iterdump) of a private copy; gzip
files and zip archives are searched after decompression. Large files are
read in chunks with an overlap, never whole.
"""

from __future__ import annotations

import base64
import gzip
import json
import secrets
import shutil
import sqlite3
import string
import tempfile
import urllib.parse
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

CHUNK_SIZE = 1 << 20
MIN_LINE_NEEDLE = 16  # shorter PEM lines ("-----END ...") are not distinctive
SQLITE_MAGIC = b"SQLite format 3\x00"
GZIP_MAGIC = b"\x1f\x8b"
ZIP_MAGIC = b"PK\x03\x04"
_S3_ALPHABET = string.ascii_letters + string.digits + "+/"


def make_canaries() -> dict[str, str]:
    """Three random secrets: a password, an OpenSSH private key (PEM), an S3 secret key."""
    key = ed25519.Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    ).decode("ascii")
    return {
        "password": "cnry-pw-" + secrets.token_urlsafe(18),
        "ssh_private_key": pem,
        "s3_secret_key": "".join(secrets.choice(_S3_ALPHABET) for _ in range(40)),
    }


def _base64_forms(value: bytes) -> Iterator[tuple[str, bytes]]:
    """The part of base64(value) that is the same wherever value sits in the encoded data."""
    for alphabet, encode in (
        ("base64", base64.b64encode),
        ("base64url", base64.urlsafe_b64encode),
    ):
        for offset in range(3):
            encoded = encode(b"\x00" * offset + value)
            start = 4 if offset else 0  # the group shared with the preceding bytes
            end_bytes = (offset + len(value)) // 3 * 3  # whole groups made of value bytes only
            middle = encoded[start : end_bytes // 3 * 4]
            if len(middle) >= 8:
                yield f"{alphabet}@{offset}", middle


def canary_needles(canaries: dict[str, str]) -> dict[str, list[tuple[str, bytes]]]:
    """For each canary, the (form, bytes) pairs searched for."""
    needles: dict[str, list[tuple[str, bytes]]] = {}
    for name, value in canaries.items():
        raw = value.encode("utf-8")
        forms: list[tuple[str, bytes]] = [("raw", raw)]
        lines = [ln.strip() for ln in value.splitlines()]
        if len(lines) > 1:
            forms += [("line", ln.encode()) for ln in lines if len(ln) >= MIN_LINE_NEEDLE]
        forms.append(("json", json.dumps(value)[1:-1].encode("utf-8")))
        forms.append(("url", urllib.parse.quote(value, safe="").encode("ascii")))
        forms += list(_base64_forms(raw))
        unique: dict[bytes, str] = {}
        for form, needle in forms:
            if needle:
                unique.setdefault(needle, form)
        needles[name] = [(form, needle) for needle, form in unique.items()]
    return needles


def _scan_stream(
    stream: BinaryIO, location: str, needles: dict[str, list[tuple[str, bytes]]]
) -> list[str]:
    longest = max((len(n) for forms in needles.values() for _, n in forms), default=1)
    found: dict[str, str] = {}
    tail = b""
    while True:
        chunk = stream.read(CHUNK_SIZE)
        if not chunk:
            break
        window = tail + chunk
        for name, forms in needles.items():
            if name in found:
                continue
            for form, needle in forms:
                if needle in window:
                    found[name] = form
                    break
        tail = window[-(longest - 1) :] if longest > 1 else b""
    return [f"{location}: {name} [{form}]" for name, form in found.items()]


def _scan_bytes(
    data: bytes, location: str, needles: dict[str, list[tuple[str, bytes]]]
) -> list[str]:
    import io

    return _scan_stream(io.BytesIO(data), location, needles)


def _sqlite_dump(path: Path) -> bytes:
    """`.dump` of a private copy of the database (and its -wal), so a live DB is not disturbed."""
    with tempfile.TemporaryDirectory(prefix="canary-sqlite-") as tmp:
        copy = Path(tmp) / "db.sqlite"
        shutil.copyfile(path, copy)
        for suffix in ("-wal", "-journal"):
            side = path.with_name(path.name + suffix)
            if side.exists():
                shutil.copyfile(side, copy.with_name(copy.name + suffix))
        conn = sqlite3.connect(copy)
        try:
            conn.text_factory = lambda raw: raw.decode("utf-8", "replace")
            return "\n".join(conn.iterdump()).encode("utf-8")
        finally:
            conn.close()


def _scan_file(path: Path, needles: dict[str, list[tuple[str, bytes]]]) -> list[str]:
    try:
        with path.open("rb") as handle:
            magic = handle.read(16)
            handle.seek(0)
            hits = _scan_stream(handle, str(path), needles)
    except OSError as exc:
        return [f"{path}: UNREADABLE ({exc.strerror}): cannot prove the absence of canaries"]
    try:
        if magic.startswith(SQLITE_MAGIC):
            hits += _scan_bytes(_sqlite_dump(path), f"{path} (sqlite .dump)", needles)
        elif magic.startswith(GZIP_MAGIC):
            with gzip.open(path, "rb") as inner:
                hits += _scan_stream(inner, f"{path} (gunzip)", needles)  # type: ignore[arg-type]
        elif magic.startswith(ZIP_MAGIC):
            with zipfile.ZipFile(path) as archive:
                for member in archive.namelist():
                    with archive.open(member) as inner:
                        hits += _scan_stream(inner, f"{path}!{member}", needles)  # type: ignore[arg-type]
    except (OSError, sqlite3.Error, zipfile.BadZipFile, EOFError) as exc:
        hits.append(f"{path}: cannot open container ({type(exc).__name__}: {exc})")
    return hits


def _walk(paths: Iterable[Path]) -> Iterator[Path]:
    for root in paths:
        if root.is_symlink():
            continue
        if root.is_file():
            yield root
        elif root.is_dir():
            for child in sorted(root.rglob("*")):
                if child.is_file() and not child.is_symlink():
                    yield child


def search_canaries(canaries: dict[str, str], paths: list[Path]) -> list[str]:
    """Every place under `paths` (files, recursively) holding a canary: `LOCATION: NAME [form]`."""
    needles = canary_needles(canaries)
    hits: list[str] = []
    for path in _walk(paths):
        hits += _scan_file(path, needles)
    return hits


def kdbx_plaintext(path: Path, password: str) -> bytes:
    """Every field, custom property, OTP and attachment of a KDBX file, decrypted, as one text.

    For the positive half of the canary test: `search_text(canaries,
    kdbx_plaintext(kdbx, master_password), "credentials.kdbx")` must find every canary.
    """
    from pykeepass import PyKeePass

    kp = PyKeePass(str(path), password=password)
    parts: list[bytes] = []
    for entry in kp.entries:
        fields = [entry.title, entry.username, entry.password, entry.url, entry.notes, entry.otp]
        fields += [f"{k}={v}" for k, v in entry.custom_properties.items()]
        parts += [str(f).encode("utf-8") for f in fields if f]
        parts += [bytes(a.binary) for a in entry.attachments]
    return b"\n".join(parts)


def search_text(canaries: dict[str, str], text: str | bytes, label: str) -> list[str]:
    """The same search over a captured string (logs, artifact bodies, event payloads)."""
    data = text.encode("utf-8") if isinstance(text, str) else text
    return _scan_bytes(data, label, canary_needles(canaries))
