"""Per-contract credential vault, encrypted at rest in the age format.

Why age: the vault file `.handover/contracts/<id>/vault.age` is an ordinary
age file encrypted to the provider's vault key (an X25519 identity), so an
operator can always recover it with standard tools alone
(`age -d -i ~/.config/handover/vault.key vault.age`), exactly as clients open
their bundles, and it reuses the bundle's audited implementation (header
HMAC, authenticated STREAM chunks, truncation detection) instead of a second
home-made format. The plaintext is one JSON document (`handover-vault/1`).

The vault key lives outside the repository and outside `.handover/`; where
it is found and how it is created is `handover.secrets.vault_key`.

Writes are atomic (temporary file, fsync, rename) and serialised by an
`fcntl` lock on `vault.age.lock`, so two processes adding entries at once
both land. With a shared state store (`HANDOVER_STATE_URL=postgresql://...`)
the encrypted file is the store's `vault.age` blob and the file this
worker's copy (`handover.state.shared_blob`): every read fetches the blob,
every change is a compare-and-set on it, read again and redone when another
worker changed the vault meanwhile, so no worker's entry is lost. The key
never goes to the store: it stays where `vault_key` finds it, on each worker.

A wrong key, a tampered or truncated file raises VaultError: a vault that
cannot be read is never mistaken for an empty one.

Secrets are held as `handover.secrets.Secret` in memory; entry metadata
(`VaultEntry`) never contains one, so listing, logging or returning entries
is safe. Rotations keep previous values, encrypted, with their timestamps.

`vault:CONTRACT/NAME` references to its entries are parsed and resolved by
`handover.secrets.vault_references`.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import io
import json
import os
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from handover.errors import (
    BundleError,
    NoMatchingIdentity,
    VaultError,
)
from handover.secrets.references import Secret
from handover.secrets.vault_key import VaultKey, load_vault_key
from handover.state.atomic import write_atomic
from handover.state.home import CONTRACT_ID_PATTERN
from handover.state.layout import ContractPaths
from handover.state.shared_blob import local_copy, shared_blob

T = TypeVar("T")
#: The vault's records as stored, None when there is no vault yet.
Records = dict[str, "_Record"]

VAULT_FORMAT = "handover-vault/1"
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,126}$")


class Kind(StrEnum):
    """What an entry's secret is; decides how it is exported and used."""

    PASSWORD = "password"
    SSH_KEY = "ssh-key"
    API_KEY = "api-key"
    CERTIFICATE = "certificate"  # secret = private key PEM, `certificate` = the cert PEM
    TOTP_SEED = "totp-seed"  # secret = base32 seed (or an otpauth:// URI)
    NOTE = "note"  # secret = the confidential note itself


class CreatedBy(StrEnum):
    """Who brought the credential: both kinds are handed back at exit."""

    CLIENT = "client"
    PROVIDER = "provider"


def entry_name_for(text: str) -> str:
    """Turn a title into an entry name (`Web 01 / root` -> `web-01-root`)."""
    slug = re.sub(r"[^a-z0-9._-]+", "-", text.strip().lower()).strip("-._")
    return slug[:127] or "entry"


def check_name(name: str, what: str = "entry name") -> str:
    """Return `name` when it is a valid slug, else raise VaultError quoting it."""
    if not NAME_PATTERN.match(name):
        raise VaultError(
            f"invalid {what} {name!r}: use lowercase letters, digits, '.', '_' and '-' "
            "(starting with a letter or digit)"
        )
    return name


class VaultEntry(BaseModel):
    """One credential's metadata. Never holds the secret: safe to print and return."""

    model_config = ConfigDict(extra="forbid")

    name: str
    kind: Kind = Kind.PASSWORD
    username: str = ""
    url: str = ""
    tags: list[str] = Field(default_factory=list)
    notes: str = ""
    group: str = ""  # KDBX group path, `/`-separated ("Servers/Web")
    certificate: str = ""  # public certificate PEM for kind=certificate
    created_by: CreatedBy = CreatedBy.CLIENT
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    updated_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    rotations: int = 0  # number of previous values kept in the history

    @field_validator("name")
    @classmethod
    def _name_is_slug(cls, value: str) -> str:
        if not NAME_PATTERN.match(value):
            raise ValueError(f"invalid entry name {value!r}")
        return value


@dataclass(frozen=True)
class HistoryItem:
    """A previous value of a rotated secret, with when and by whom it was replaced."""

    replaced_at: datetime
    replaced_by: str
    value: Secret


@dataclass
class _Record:
    entry: VaultEntry
    secret: Secret
    history: list[HistoryItem] = field(default_factory=list)


# --- the vault -----------------------------------------------------------------------------

_thread_locks: dict[Path, threading.Lock] = {}
_thread_locks_guard = threading.Lock()


def _thread_lock(path: Path) -> threading.Lock:
    with _thread_locks_guard:
        return _thread_locks.setdefault(path, threading.Lock())


class Vault:
    """The credentials of one contract.

    Every read decrypts the file again and every change is a locked
    read-modify-write, so several processes (Prefect workers, the CLI) can
    share one vault. Nothing is cached between calls except the key.
    """

    def __init__(
        self, contract_id: str, *, path: Path | None = None, key: VaultKey | None = None
    ) -> None:
        if not CONTRACT_ID_PATTERN.match(contract_id):
            raise VaultError(f"invalid contract id {contract_id!r}")
        self.contract_id = contract_id
        self.path = path if path is not None else ContractPaths(contract_id).vault_file
        self._key = key

    def __repr__(self) -> str:
        return f"Vault({self.contract_id!r}, path={str(self.path)!r})"

    @property
    def key(self) -> VaultKey:
        if self._key is None:
            self._key = load_vault_key()
        return self._key

    def exists(self) -> bool:
        return local_copy(self.path).exists()

    # -- reading --

    def entries(self) -> list[VaultEntry]:
        """Every entry's metadata, sorted by group then name (no secrets)."""
        records = self._load()
        return sorted((r.entry for r in records.values()), key=lambda e: (e.group.lower(), e.name))

    def names(self) -> list[str]:
        return sorted(self._load())

    def get(self, name: str) -> VaultEntry:
        """Raises VaultError naming the entry and the vault file when it does not exist."""
        return self._record(name).entry

    def secret(self, name: str) -> Secret:
        return self._record(name).secret

    def history(self, name: str) -> list[HistoryItem]:
        """Previous values of `name`, oldest first."""
        return list(self._record(name).history)

    def items(self) -> list[tuple[VaultEntry, Secret]]:
        """Every entry with its secret, for export; sorted like entries()."""
        records = self._load()
        ordered = sorted(records.values(), key=lambda r: (r.entry.group.lower(), r.entry.name))
        return [(r.entry, r.secret) for r in ordered]

    def _record(self, name: str) -> _Record:
        records = self._load()
        if name not in records:
            raise VaultError(f"{self.path}: no entry {name!r} in the vault of {self.contract_id}")
        return records[name]

    # -- writing --

    def init(self) -> bool:
        """Create an empty vault file if none exists; return True when it was created."""
        return self._change(lambda records: (None, False) if records is not None else ({}, True))

    def add(
        self, entry: VaultEntry, secret: Secret | bytes | str, *, replace: bool = False
    ) -> VaultEntry:
        """Store a new entry. Raises VaultError if the name exists, unless `replace`.

        Replacing an entry keeps its history and records the old value as a rotation.
        """
        value = _as_secret(secret)

        def change(stored_records: Records | None) -> tuple[Records, VaultEntry]:
            records = stored_records if stored_records is not None else {}
            old = records.get(entry.name)
            if old is not None and not replace:
                raise VaultError(
                    f"{self.path}: entry {entry.name!r} already exists "
                    "(use rotate to change its secret)"
                )
            history = list(old.history) if old else []
            if old is not None and old.secret.reveal() != value.reveal():
                history.append(HistoryItem(datetime.now(UTC), "import", old.secret))
            stored = entry.model_copy(update={"rotations": len(history)})
            records[entry.name] = _Record(stored, value, history)
            return records, stored

        return self._change(change)

    def rotate(self, name: str, new_secret: Secret | bytes | str, *, actor: str) -> VaultEntry:
        """Replace the secret of `name`, keeping the previous value in its history."""
        value = _as_secret(new_secret)

        def change(records: Records | None) -> tuple[Records, VaultEntry]:
            if records is None:
                raise self._missing()
            if name not in records:
                raise VaultError(f"{self.path}: no entry {name!r} to rotate")
            record = records[name]
            now = datetime.now(UTC)
            record.history.append(HistoryItem(now, actor, record.secret))
            record.secret = value
            record.entry = record.entry.model_copy(
                update={"updated_at": now, "rotations": len(record.history)}
            )
            return records, record.entry

        return self._change(change)

    def _change(self, change: Callable[[Records | None], tuple[Records | None, T]]) -> T:
        """Read the vault, `change` its records, write them if it returns any: one change.

        Under this worker's lock; with a shared state store also a
        compare-and-set on the store's blob, `change` running again on what
        another worker wrote if it got there first (it must act only
        through what it returns). Returns `change`'s second value.
        """
        outcome: list[T] = []

        def on_bytes(data: bytes | None) -> bytes | None:
            records, result = change(None if data is None else self._decrypt(data))
            outcome[:] = [result]
            return None if records is None else self._encrypt(records)

        with self._locked():
            shared = shared_blob(self.path)
            if shared is not None:
                shared.update(on_bytes)
            else:
                new = on_bytes(self._read() if self.path.exists() else None)
                if new is not None:
                    write_atomic(self.path, new, mode=0o600)
        return outcome[0]

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Serialise writers across threads (in-process lock) and processes (fcntl)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.path.with_name(self.path.name + ".lock")
        with _thread_lock(lock_path.resolve()):
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)

    # -- file format --

    def _load(self) -> dict[str, _Record]:
        return self._decrypt(self._read(local_copy(self.path)))

    def _missing(self) -> VaultError:
        return VaultError(
            f"{self.path}: no vault for contract {self.contract_id} "
            f"(create it with `handover vault init {self.contract_id}`)"
        )

    def _read(self, path: Path | None = None) -> bytes:
        try:
            return (path or self.path).read_bytes()
        except FileNotFoundError as exc:
            raise self._missing() from exc
        except OSError as exc:
            raise VaultError(f"{self.path}: cannot read the vault: {exc.strerror}") from exc

    def _decrypt(self, data: bytes) -> dict[str, _Record]:
        from handover.bundle.age import AgeReader

        try:
            with AgeReader(io.BytesIO(data), list(self.key.identities)) as reader:
                chunks = []
                while chunk := reader.read(1 << 16):
                    chunks.append(chunk)
                plaintext = b"".join(chunks)
        except NoMatchingIdentity as exc:
            raise VaultError(
                f"{self.path}: the vault key ({self.key.source}) does not open this vault "
                "(another key, or a tampered header)"
            ) from exc
        except BundleError as exc:
            raise VaultError(
                f"{self.path}: vault file is corrupted or tampered with ({exc})"
            ) from exc
        return self._parse(plaintext)

    def _parse(self, plaintext: bytes) -> dict[str, _Record]:
        try:
            doc = json.loads(plaintext)
            if not isinstance(doc, dict) or doc.get("format") != VAULT_FORMAT:
                raise ValueError(f"not a {VAULT_FORMAT} document")
            if doc.get("contract") != self.contract_id:
                raise ValueError(
                    f"it belongs to contract {doc.get('contract')!r}, not {self.contract_id!r}"
                )
            records: dict[str, _Record] = {}
            for raw in doc["entries"]:
                secret = _decode_value(raw.pop("secret"))
                history = [
                    HistoryItem(
                        datetime.fromisoformat(h["replaced_at"]),
                        str(h["replaced_by"]),
                        _decode_value(h["value"]),
                    )
                    for h in raw.pop("history", [])
                ]
                entry = VaultEntry.model_validate(raw)
                records[entry.name] = _Record(entry, secret, history)
        except (ValueError, KeyError, TypeError, AttributeError, ValidationError) as exc:
            reason = (
                f"{exc.error_count()} invalid field(s)"
                if isinstance(exc, ValidationError)
                else str(exc)
            )
            raise VaultError(f"{self.path}: unreadable vault content: {reason}") from None
        return records

    def _encrypt(self, records: dict[str, _Record]) -> bytes:
        from handover.bundle.age import AgeWriter

        doc = {
            "format": VAULT_FORMAT,
            "contract": self.contract_id,
            "entries": [
                {
                    **record.entry.model_dump(mode="json"),
                    "secret": _encode_value(record.secret),
                    "history": [
                        {
                            "replaced_at": h.replaced_at.isoformat(),
                            "replaced_by": h.replaced_by,
                            "value": _encode_value(h.value),
                        }
                        for h in record.history
                    ],
                }
                for _, record in sorted(records.items())
            ],
        }
        plaintext = json.dumps(doc, ensure_ascii=False, indent=1).encode("utf-8")
        buffer = io.BytesIO()
        with AgeWriter(buffer, [self.key.recipient]) as writer:
            writer.write(plaintext)
        return buffer.getvalue()


def _as_secret(value: Secret | bytes | str) -> Secret:
    if isinstance(value, Secret):
        return value
    if isinstance(value, str):
        return Secret(value.encode("utf-8"))
    return Secret(bytes(value))


def _encode_value(secret: Secret) -> dict[str, str]:
    raw = secret.reveal()
    try:
        return {"text": raw.decode("utf-8")}
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(raw).decode("ascii")}


def _decode_value(value: Any) -> Secret:
    if not isinstance(value, dict):
        raise ValueError("a secret value is not an object")
    if "text" in value:
        return Secret(str(value["text"]).encode("utf-8"))
    return Secret(base64.b64decode(value["base64"], validate=True))
