"""The primitives every age recipient type shares: strict base64, HKDF, the file-key AEAD.

Separate from the recipient modules because each of them (and the header)
uses these, and none of them should import another recipient type to get
them. Parsing is strict, as in the reference implementation, because a
header that two implementations read differently is a header an attacker
can play with.
"""

from __future__ import annotations

import base64
import binascii

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from handover.errors import AgeFormatError

FILE_KEY_SIZE = 16
WRAPPED_FILE_KEY_SIZE = FILE_KEY_SIZE + 16  # ChaCha20-Poly1305 adds a 16-byte tag
_ZERO_NONCE = bytes(12)
_B64_ALPHABET = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")


def b64encode_raw(data: bytes) -> str:
    """Standard base64 without padding, as age writes it."""
    return base64.b64encode(data).decode("ascii").rstrip("=")


def b64decode_strict(text: str | bytes) -> bytes:
    """Decode unpadded canonical base64; raise ValueError on anything else.

    Canonical means the unused low bits of the last character are zero, so one
    byte string has exactly one encoding (the spec requires rejecting others).
    """
    raw = text.encode("ascii") if isinstance(text, str) else bytes(text)
    if len(raw) % 4 == 1 or not _B64_ALPHABET.issuperset(raw):
        raise ValueError("invalid base64")
    try:
        out = base64.b64decode(raw + b"=" * (-len(raw) % 4), validate=True)
    except binascii.Error as exc:
        raise ValueError("invalid base64") from exc
    if b64encode_raw(out).encode("ascii") != raw:
        raise ValueError("non-canonical base64")
    return out


def hkdf_sha256(ikm: bytes, salt: bytes, info: bytes, length: int = 32) -> bytes:
    """HKDF-SHA-256; an empty salt behaves like the RFC 5869 default (zeros)."""
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt or None, info=info).derive(ikm)


def aead_wrap(key: bytes, file_key: bytes) -> bytes:
    """Encrypt the file key under a one-time wrap key (hence the fixed zero nonce)."""
    return ChaCha20Poly1305(key).encrypt(_ZERO_NONCE, file_key, None)


def aead_unwrap(key: bytes, body: bytes, stanza_type: str) -> bytes | None:
    """Decrypt a wrapped file key; None when the key is not ours (wrong tag)."""
    if len(body) != WRAPPED_FILE_KEY_SIZE:
        raise AgeFormatError(f"{stanza_type} stanza: wrapped file key has the wrong size", "header")
    try:
        return ChaCha20Poly1305(key).decrypt(_ZERO_NONCE, body, None)
    except InvalidTag:
        return None
