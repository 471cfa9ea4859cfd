"""The passphrase recipient type: scrypt (`age -p`).

Kept for files a person opens with a passphrase alone. age requires a
scrypt stanza to be the only one of its header (the writer and reader
enforce that), and caps the work factor when decrypting so that a hostile
header cannot make us spend gigabytes of memory.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from handover.bundle.age.primitives import (
    WRAPPED_FILE_KEY_SIZE,
    aead_unwrap,
    aead_wrap,
    b64decode_strict,
    b64encode_raw,
)
from handover.bundle.age.stanza import Identity, Recipient, Stanza
from handover.errors import AgeFormatError, KeyFormatError

SCRYPT_LABEL = b"age-encryption.org/v1/scrypt"
SCRYPT_DEFAULT_WORK_FACTOR = 18  # as age: about 1 s and 256 MiB
SCRYPT_MAX_WORK_FACTOR = 22  # as age's default ceiling when decrypting


def _scrypt_key(passphrase: bytes, salt: bytes, log_n: int) -> bytes:
    kdf = Scrypt(salt=SCRYPT_LABEL + salt, length=32, n=1 << log_n, r=8, p=1)
    return kdf.derive(passphrase)


def _passphrase_bytes(passphrase: str | bytes) -> bytes:
    data = passphrase.encode("utf-8") if isinstance(passphrase, str) else bytes(passphrase)
    if not data:
        raise KeyFormatError("scrypt: the passphrase is empty")
    return data


class ScryptRecipient(Recipient):
    """A passphrase recipient; age requires it to be the only recipient of a file."""

    def __init__(
        self, passphrase: str | bytes, work_factor: int = SCRYPT_DEFAULT_WORK_FACTOR
    ) -> None:
        if not 1 <= work_factor <= 30:
            raise KeyFormatError(f"scrypt: work factor {work_factor} out of range 1..30")
        self._passphrase = _passphrase_bytes(passphrase)
        self.work_factor = work_factor

    def wrap(self, file_key: bytes) -> list[Stanza]:
        salt = os.urandom(16)
        key = _scrypt_key(self._passphrase, salt, self.work_factor)
        args = [b64encode_raw(salt), str(self.work_factor)]
        return [Stanza("scrypt", args, aead_wrap(key, file_key))]

    def __str__(self) -> str:
        return f"scrypt:work-factor={self.work_factor}"  # no text form; never the passphrase

    def __eq__(self, other: object) -> bool:
        return other is self

    def __hash__(self) -> int:
        return id(self)


class ScryptIdentity(Identity):
    """A passphrase identity; refuses work factors above `max_work_factor` (memory: 2^N KiB)."""

    def __init__(
        self, passphrase: str | bytes, max_work_factor: int = SCRYPT_MAX_WORK_FACTOR
    ) -> None:
        self._passphrase = _passphrase_bytes(passphrase)
        self.max_work_factor = max_work_factor

    def unwrap(self, stanzas: Sequence[Stanza]) -> bytes | None:
        for stanza in stanzas:
            if stanza.type != "scrypt":
                continue
            if len(stanza.args) != 2:
                raise AgeFormatError("scrypt stanza: expected salt and work factor", "header")
            try:
                salt = b64decode_strict(stanza.args[0])
            except ValueError as exc:
                raise AgeFormatError(f"scrypt stanza: salt: {exc}", "header") from exc
            if len(salt) != 16:
                raise AgeFormatError("scrypt stanza: salt is not 16 bytes", "header")
            factor = stanza.args[1]
            if not factor.isascii() or not factor.isdigit() or factor.startswith("0"):
                raise AgeFormatError("scrypt stanza: malformed work factor", "header")
            log_n = int(factor)
            if log_n > self.max_work_factor:
                raise AgeFormatError(
                    f"scrypt stanza: work factor {factor[:20]} above the limit "
                    f"{self.max_work_factor}",
                    "header",
                )
            if len(stanza.body) != WRAPPED_FILE_KEY_SIZE:  # checked before the costly KDF
                raise AgeFormatError("scrypt stanza: wrapped file key has the wrong size", "header")
            key = _scrypt_key(self._passphrase, salt, log_n)
            file_key = aead_unwrap(key, stanza.body, "scrypt")
            if file_key is not None:
                return file_key
        return None
