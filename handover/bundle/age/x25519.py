"""The native age recipient type: X25519 (`age1...`, `AGE-SECRET-KEY-1...`).

Also holds the two X25519 steps the ssh-ed25519 and post-quantum stanzas
reuse (reading an ephemeral share, a Diffie-Hellman that refuses low-order
points), so each check is written once.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from cryptography.hazmat.primitives.asymmetric import x25519

from handover.bundle.age.bech32 import bech32_encode
from handover.bundle.age.primitives import (
    aead_unwrap,
    aead_wrap,
    b64decode_strict,
    b64encode_raw,
    hkdf_sha256,
)
from handover.bundle.age.stanza import Identity, Recipient, Stanza
from handover.errors import AgeFormatError, KeyFormatError

X25519_LABEL = b"age-encryption.org/v1/X25519"


def stanza_share(arg: str, stanza_type: str) -> x25519.X25519PublicKey:
    """The ephemeral X25519 share of a stanza argument (32 bytes, canonical base64)."""
    try:
        share = b64decode_strict(arg)
    except ValueError as exc:
        raise AgeFormatError(f"{stanza_type} stanza: ephemeral share: {exc}", "header") from exc
    if len(share) != 32:
        raise AgeFormatError(f"{stanza_type} stanza: ephemeral share is not 32 bytes", "header")
    return x25519.X25519PublicKey.from_public_bytes(share)


def exchange(private: x25519.X25519PrivateKey, public: x25519.X25519PublicKey, what: str) -> bytes:
    """X25519 Diffie-Hellman; a low-order share is a malformed `what` stanza."""
    try:
        return private.exchange(public)
    except ValueError as exc:  # all-zero output: a low-order point
        raise AgeFormatError(f"{what} stanza: low-order ephemeral share", "header") from exc


class X25519Recipient(Recipient):
    """A native age recipient, `age1...`."""

    def __init__(self, public_key: bytes) -> None:
        if len(public_key) != 32:
            raise KeyFormatError("X25519 recipient: public key must be 32 bytes")
        self._public = public_key
        self._key = x25519.X25519PublicKey.from_public_bytes(public_key)

    def wrap(self, file_key: bytes) -> list[Stanza]:
        ephemeral = x25519.X25519PrivateKey.generate()
        share = ephemeral.public_key().public_bytes_raw()
        secret = ephemeral.exchange(self._key)
        wrap_key = hkdf_sha256(secret, share + self._public, X25519_LABEL)
        return [Stanza("X25519", [b64encode_raw(share)], aead_wrap(wrap_key, file_key))]

    def __str__(self) -> str:
        return bech32_encode("age", self._public)


class X25519Identity(Identity):
    """A native age identity, `AGE-SECRET-KEY-1...`."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) != 32:
            raise KeyFormatError("X25519 identity: secret key must be 32 bytes")
        self._secret = secret
        self._key = x25519.X25519PrivateKey.from_private_bytes(secret)
        self._public = self._key.public_key().public_bytes_raw()

    @classmethod
    def generate(cls) -> X25519Identity:
        return cls(os.urandom(32))

    def recipient(self) -> X25519Recipient:
        return X25519Recipient(self._public)

    def unwrap(self, stanzas: Sequence[Stanza]) -> bytes | None:
        for stanza in stanzas:
            if stanza.type != "X25519":
                continue
            if len(stanza.args) != 1:
                raise AgeFormatError("X25519 stanza: expected exactly one argument", "header")
            share = stanza_share(stanza.args[0], "X25519")
            secret = exchange(self._key, share, "X25519")
            wrap_key = hkdf_sha256(secret, share.public_bytes_raw() + self._public, X25519_LABEL)
            file_key = aead_unwrap(wrap_key, stanza.body, "X25519")
            if file_key is not None:
                return file_key
        return None

    def __str__(self) -> str:
        return bech32_encode("age-secret-key-", self._secret).upper()
