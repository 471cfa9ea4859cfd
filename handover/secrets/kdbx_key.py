"""The master key of credentials.kdbx, derived apart from writing the file.

KDBX 4 turns the master password into its key with Argon2: 64 MiB of memory
for a fraction of a second. Done inside the export, that 64 MiB comes on
top of everything the exit holds by then (the datasets' exports have filled
the process), and it was the exit's peak RSS. Deriving the key is
independent of the entries: only the password and a fresh salt go in. So
the exit derives it early, while the process holds little, and the export
later writes the file with the key already known (`MasterKey`), with no
Argon2 at all. That moves no memory elsewhere: it lowers the peak.

Opening pykeepass's blank template (password "password") costs an Argon2
too. Its key is a constant of that public file, kept here with the file's
digest; another template (a new pykeepass) is opened the slow way.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Argon2d as in KeePassXC's and pykeepass's new databases: 64 MiB, 14 passes, 2 lanes.
KDF_ARGON2D_UUID = bytes.fromhex("ef636ddf8c29444b91f7a9a403e30a0c")
KDF_ITERATIONS = 14
KDF_MEMORY = 64 * 1024 * 1024  # bytes, as KDBX stores it
KDF_PARALLELISM = 2
KDF_VERSION = 0x13
KDF_SALT_SIZE = 32

# pykeepass 4.2's blank_database.kdbx, and its key for the password "password".
TEMPLATE_SHA256 = "9a6e2380fa0a79534025c0891ebb1b6e06ef2c73c79f661a1d9ab49e436ec7af"
TEMPLATE_KEY = bytes.fromhex("0962cbeeed2e51b1417f31f21ef90cca3b205fe9bd987232ae23136a83be0cf7")


@dataclass(frozen=True)
class MasterKey:
    """A master password, the KDF salt of the file it will protect, and the key they give."""

    password: str = field(repr=False)
    kdf_salt: bytes = field(repr=False)
    transformed_key: bytes = field(repr=False)


def composite_key(password: str) -> bytes:
    """KDBX's composite key of a password alone: SHA-256 of the password's SHA-256."""
    return hashlib.sha256(hashlib.sha256(password.encode("utf-8")).digest()).digest()


def derive_master_key(password: str) -> MasterKey:
    """The KDBX 4 key of `password` under a fresh random salt (one Argon2d: 64 MiB)."""
    from argon2.low_level import Type, hash_secret_raw

    salt = secrets.token_bytes(KDF_SALT_SIZE)
    key = hash_secret_raw(
        secret=composite_key(password),
        salt=salt,
        time_cost=KDF_ITERATIONS,
        memory_cost=KDF_MEMORY // 1024,  # KiB
        parallelism=KDF_PARALLELISM,
        hash_len=32,
        type=Type.D,
        version=KDF_VERSION,
    )
    return MasterKey(password=password, kdf_salt=salt, transformed_key=key)


def set_kdf_parameters(kp: Any, key: MasterKey) -> None:
    """Make `kp`'s header name the KDF that `key` was derived with (its salt, our parameters).

    The values keep the header's own types: the template stores the same
    fields, and it is checked here rather than trusted.
    """
    params = kp.kdbx.header.value.dynamic_header.kdf_parameters.data.dict
    if set(params) != {"$UUID", "I", "M", "P", "S", "V"}:
        raise ValueError(f"unexpected KDF parameters in the KDBX template: {sorted(params)}")
    params["$UUID"].value = KDF_ARGON2D_UUID
    params["I"].value = KDF_ITERATIONS
    params["M"].value = KDF_MEMORY
    params["P"].value = KDF_PARALLELISM
    params["V"].value = KDF_VERSION
    params["S"].value = key.kdf_salt


def open_blank_database() -> Any:
    """pykeepass's blank KDBX 4 database, opened without an Argon2 when it is the known file."""
    import io

    from pykeepass import PyKeePass
    from pykeepass.exceptions import CredentialsError
    from pykeepass.pykeepass import BLANK_DATABASE_LOCATION, BLANK_DATABASE_PASSWORD

    template = Path(BLANK_DATABASE_LOCATION).read_bytes()
    if hashlib.sha256(template).hexdigest() == TEMPLATE_SHA256:
        try:
            return PyKeePass(io.BytesIO(template), transformed_key=TEMPLATE_KEY)
        except CredentialsError:  # pragma: no cover - the digest matched: the key fits
            pass
    return PyKeePass(BLANK_DATABASE_LOCATION, BLANK_DATABASE_PASSWORD)


class PreparedKeys:
    """Keys derived ahead of their export, by contract, each taken once.

    They live in this process's memory only: never written, never passed
    through Prefect. A key not taken (the exit failed before its credentials)
    is replaced by the next one prepared, or ends with the process.
    """

    def __init__(self) -> None:
        self._keys: dict[str, MasterKey] = {}
        self._lock = threading.Lock()

    def put(self, contract_id: str, key: MasterKey) -> None:
        with self._lock:
            self._keys[contract_id] = key

    def take(self, contract_id: str) -> MasterKey | None:
        with self._lock:
            return self._keys.pop(contract_id, None)

    def __contains__(self, contract_id: object) -> bool:
        with self._lock:
            return contract_id in self._keys


PREPARED_KEYS = PreparedKeys()
