"""The hybrid post-quantum recipient type: ML-KEM-768 + X25519 (`age1pq1...`, age 1.3+).

X-Wing combines both KEMs so the file key stays safe if either one holds;
HPKE (RFC 9180, base mode) derives the key that wraps the file key. A module
of its own because it is the one recipient type that needs a recent `age`
on the client side, and the one built from more than age's own primitives.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric import mlkem, x25519
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from handover.bundle.age.bech32 import bech32_encode
from handover.bundle.age.primitives import WRAPPED_FILE_KEY_SIZE, b64decode_strict, b64encode_raw
from handover.bundle.age.stanza import Identity, Recipient, Stanza
from handover.bundle.age.x25519 import exchange
from handover.errors import AgeFormatError, KeyFormatError

PQ_STANZA = "mlkem768x25519"
PQ_INFO = b"age-encryption.org/mlkem768x25519"
_XWING_LABEL = b"\\.//^\\"
_HPKE_SUITE = (
    b"HPKE" + (0x647A).to_bytes(2, "big") + (1).to_bytes(2, "big") + (3).to_bytes(2, "big")
)
_MLKEM_PUBLIC_SIZE = 1184
_MLKEM_CT_SIZE = 1088
PQ_PUBLIC_SIZE = _MLKEM_PUBLIC_SIZE + 32
PQ_ENC_SIZE = _MLKEM_CT_SIZE + 32


def _xwing_combine(ss_m: bytes, ss_x: bytes, ct_x: bytes, pk_x: bytes) -> bytes:
    return hashlib.sha3_256(ss_m + ss_x + ct_x + pk_x + _XWING_LABEL).digest()


def _hpke_extract(salt: bytes, label: bytes, ikm: bytes) -> bytes:
    return hmac.new(salt, b"HPKE-v1" + _HPKE_SUITE + label + ikm, hashlib.sha256).digest()


def _hpke_expand(prk: bytes, label: bytes, info: bytes, length: int) -> bytes:
    labeled = length.to_bytes(2, "big") + b"HPKE-v1" + _HPKE_SUITE + label + info
    # One HKDF-Expand block is enough for the 32-byte key and the 12-byte nonce.
    return hmac.new(prk, labeled + b"\x01", hashlib.sha256).digest()[:length]


def _hpke_base_context(shared_secret: bytes) -> tuple[ChaCha20Poly1305, bytes]:
    """RFC 9180 key schedule, mode_base, info = PQ_INFO: (AEAD, base nonce)."""
    context = (
        b"\x00"
        + _hpke_extract(b"", b"psk_id_hash", b"")
        + _hpke_extract(b"", b"info_hash", PQ_INFO)
    )
    secret = _hpke_extract(shared_secret, b"secret", b"")
    key = _hpke_expand(secret, b"key", context, 32)
    return ChaCha20Poly1305(key), _hpke_expand(secret, b"base_nonce", context, 12)


class MLKEM768X25519Recipient(Recipient):
    """A hybrid post-quantum recipient, `age1pq1...` (age 1.3+); never mixed with classic ones."""

    min_age_version = (1, 3, 0)

    def __init__(self, public: bytes) -> None:
        if len(public) != PQ_PUBLIC_SIZE:
            raise KeyFormatError("post-quantum recipient: public key has the wrong size")
        try:
            self._mlkem = mlkem.MLKEM768PublicKey.from_public_bytes(public[:_MLKEM_PUBLIC_SIZE])
        except ValueError as exc:
            raise KeyFormatError(f"post-quantum recipient: bad ML-KEM key: {exc}") from exc
        self._pk_x = public[_MLKEM_PUBLIC_SIZE:]
        self._x25519 = x25519.X25519PublicKey.from_public_bytes(self._pk_x)
        self._public = public

    def wrap(self, file_key: bytes) -> list[Stanza]:
        ephemeral = x25519.X25519PrivateKey.generate()
        ct_x = ephemeral.public_key().public_bytes_raw()
        ss_x = ephemeral.exchange(self._x25519)
        ss_m, ct_m = self._mlkem.encapsulate()
        aead, nonce = _hpke_base_context(_xwing_combine(ss_m, ss_x, ct_x, self._pk_x))
        body = aead.encrypt(nonce, file_key, None)
        return [Stanza(PQ_STANZA, [b64encode_raw(ct_m + ct_x)], body)]

    def __str__(self) -> str:
        return bech32_encode("age1pq", self._public)


class MLKEM768X25519Identity(Identity):
    """A hybrid post-quantum identity, `AGE-SECRET-KEY-PQ-1...`: a 32-byte X-Wing seed."""

    def __init__(self, seed: bytes) -> None:
        if len(seed) != 32:
            raise KeyFormatError("post-quantum identity: seed must be 32 bytes")
        self._seed = seed
        expanded = hashlib.shake_256(seed).digest(96)
        self._mlkem = mlkem.MLKEM768PrivateKey.from_seed_bytes(expanded[:64])
        self._x25519 = x25519.X25519PrivateKey.from_private_bytes(expanded[64:])
        self._pk_x = self._x25519.public_key().public_bytes_raw()

    @classmethod
    def generate(cls) -> MLKEM768X25519Identity:
        return cls(os.urandom(32))

    def recipient(self) -> MLKEM768X25519Recipient:
        return MLKEM768X25519Recipient(self._mlkem.public_key().public_bytes_raw() + self._pk_x)

    def unwrap(self, stanzas: Sequence[Stanza]) -> bytes | None:
        for stanza in stanzas:
            if stanza.type != PQ_STANZA:
                continue
            if len(stanza.args) != 1:
                raise AgeFormatError(f"{PQ_STANZA} stanza: expected one argument", "header")
            try:
                enc = b64decode_strict(stanza.args[0])
            except ValueError as exc:
                raise AgeFormatError(f"{PQ_STANZA} stanza: {exc}", "header") from exc
            if len(enc) != PQ_ENC_SIZE:
                raise AgeFormatError(f"{PQ_STANZA} stanza: encapsulation size", "header")
            if len(stanza.body) != WRAPPED_FILE_KEY_SIZE:
                raise AgeFormatError(f"{PQ_STANZA} stanza: wrapped file key size", "header")
            ct_m, ct_x = enc[:_MLKEM_CT_SIZE], enc[_MLKEM_CT_SIZE:]
            ss_x = exchange(self._x25519, x25519.X25519PublicKey.from_public_bytes(ct_x), PQ_STANZA)
            ss_m = self._mlkem.decapsulate(ct_m)
            aead, nonce = _hpke_base_context(_xwing_combine(ss_m, ss_x, ct_x, self._pk_x))
            try:
                return aead.decrypt(nonce, stanza.body, None)
            except InvalidTag:
                continue
        return None

    def __str__(self) -> str:
        return bech32_encode("age-secret-key-pq-", self._seed).upper()
