"""age recipients and identities: X25519, ssh-ed25519 and ssh-rsa (C2SP age spec).

A recipient wraps a file key into one or more stanzas of the header; an
identity tries to unwrap it again. Parsing is strict, as in the reference
implementation, because a header that two implementations read differently is
a header an attacker can play with. Errors quote the (truncated) input and the
cause, never a private key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, mlkem, padding, rsa, x25519
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from handover.errors import AgeFormatError, KeyFormatError

FILE_KEY_SIZE = 16
X25519_LABEL = b"age-encryption.org/v1/X25519"
ED25519_LABEL = b"age-encryption.org/v1/ssh-ed25519"
RSA_LABEL = b"age-encryption.org/v1/ssh-rsa"
RSA_MIN_BITS = 2048
_ZERO_NONCE = bytes(12)
_B64_ALPHABET = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")


# --- small helpers -------------------------------------------------------------------------


def _quote(text: str, limit: int = 40) -> str:
    """Quote user input for an error message, truncated so a pasted file stays readable."""
    return repr(text if len(text) <= limit else text[:limit] + "...")


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


def _aead_wrap(key: bytes, file_key: bytes) -> bytes:
    return ChaCha20Poly1305(key).encrypt(_ZERO_NONCE, file_key, None)


def _aead_unwrap(key: bytes, body: bytes, stanza_type: str) -> bytes | None:
    """Decrypt a wrapped file key; None when the key is not ours (wrong tag)."""
    if len(body) != FILE_KEY_SIZE + 16:
        raise AgeFormatError(f"{stanza_type} stanza: wrapped file key has the wrong size", "header")
    try:
        return ChaCha20Poly1305(key).decrypt(_ZERO_NONCE, body, None)
    except InvalidTag:
        return None


# --- bech32 (BIP 173), used by age1... and AGE-SECRET-KEY-1... ------------------------------

_BECH32_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_BECH32_INDEX = {c: i for i, c in enumerate(_BECH32_CHARSET)}
_BECH32_GEN = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)


def _bech32_polymod(values: Sequence[int]) -> int:
    chk = 1
    for value in values:
        top = chk >> 25
        chk = ((chk & 0x1FFFFFF) << 5) ^ value
        for i in range(5):
            if (top >> i) & 1:
                chk ^= _BECH32_GEN[i]
    return chk


def _bech32_hrp_expand(hrp: str) -> list[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def _convert_bits(data: Sequence[int], from_bits: int, to_bits: int, pad: bool) -> bytes:
    acc = 0
    bits = 0
    out = bytearray()
    max_value = (1 << to_bits) - 1
    for value in data:
        acc = (acc << from_bits) | value
        bits += from_bits
        while bits >= to_bits:
            bits -= to_bits
            out.append((acc >> bits) & max_value)
    if pad:
        if bits:
            out.append((acc << (to_bits - bits)) & max_value)
    elif bits >= from_bits or (acc << (to_bits - bits)) & max_value:
        raise ValueError("invalid bech32 padding")
    return bytes(out)


def bech32_encode(hrp: str, data: bytes) -> str:
    """Encode `data` under the lowercase human-readable part `hrp` (no length limit, as age)."""
    values = list(_convert_bits(data, 8, 5, pad=True))
    polymod = _bech32_polymod([*_bech32_hrp_expand(hrp), *values, 0, 0, 0, 0, 0, 0]) ^ 1
    checksum = [(polymod >> (5 * (5 - i))) & 31 for i in range(6)]
    return hrp + "1" + "".join(_BECH32_CHARSET[v] for v in values + checksum)


def bech32_decode(text: str) -> tuple[str, bytes]:
    """Return (hrp, data) in lowercase; raise ValueError naming what is wrong."""
    if text.lower() != text and text.upper() != text:
        raise ValueError("mixed case")
    lowered = text.lower()
    pos = lowered.rfind("1")
    if pos < 1 or pos + 7 > len(lowered):
        raise ValueError("missing separator or checksum")
    hrp = lowered[:pos]
    if any(ord(c) < 33 or ord(c) > 126 for c in hrp):
        raise ValueError("invalid character in prefix")
    try:
        values = [_BECH32_INDEX[c] for c in lowered[pos + 1 :]]
    except KeyError as exc:
        raise ValueError(f"invalid character {exc.args[0]!r}") from exc
    if _bech32_polymod([*_bech32_hrp_expand(hrp), *values]) != 1:
        raise ValueError("bad checksum")
    return hrp, _convert_bits(values[:-6], 5, 8, pad=False)


# --- stanzas, recipients, identities -------------------------------------------------------


@dataclass
class Stanza:
    """One recipient stanza of an age header: `-> type args...` then a base64 body."""

    type: str
    args: list[str] = field(default_factory=list)
    body: bytes = b""


class Recipient(ABC):
    """Something a file key can be wrapped to. `str()` gives the canonical text back."""

    @abstractmethod
    def wrap(self, file_key: bytes) -> list[Stanza]:
        """Return the stanzas that carry `file_key` for this recipient."""

    @abstractmethod
    def __str__(self) -> str: ...

    @property
    def key_text(self) -> str:
        """The recipient without any comment: what equality compares."""
        return str(self)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return (
            type(other) is type(self)
            and isinstance(other, Recipient)
            and (other.key_text == self.key_text)
        )

    def __hash__(self) -> int:
        return hash(self.key_text)


class Identity(ABC):
    """Something that may unwrap a file key from a header's stanzas."""

    @abstractmethod
    def unwrap(self, stanzas: Sequence[Stanza]) -> bytes | None:
        """Return the file key, or None if no stanza is for this identity.

        Raises AgeFormatError(kind="header") for a malformed stanza of a type it
        handles, even one not addressed to it: the reference implementation does
        the same, and the shared test vectors expect it.
        """

    def __repr__(self) -> str:
        # Never show key material, even in a traceback.
        return f"<{type(self).__name__}>"


class X25519Recipient(Recipient):
    """A native age recipient, `age1...`."""

    def __init__(self, public_key: bytes) -> None:
        if len(public_key) != 32:
            raise KeyFormatError("X25519 recipient: public key must be 32 bytes")
        self._public = public_key
        self._key = x25519.X25519PublicKey.from_public_bytes(public_key)

    @property
    def public_bytes(self) -> bytes:
        return self._public

    def wrap(self, file_key: bytes) -> list[Stanza]:
        ephemeral = x25519.X25519PrivateKey.generate()
        share = ephemeral.public_key().public_bytes_raw()
        secret = ephemeral.exchange(self._key)
        wrap_key = hkdf_sha256(secret, share + self._public, X25519_LABEL)
        return [Stanza("X25519", [b64encode_raw(share)], _aead_wrap(wrap_key, file_key))]

    def __str__(self) -> str:
        return bech32_encode("age", self._public)


def _x25519_share(arg: str, stanza_type: str) -> x25519.X25519PublicKey:
    try:
        share = b64decode_strict(arg)
    except ValueError as exc:
        raise AgeFormatError(f"{stanza_type} stanza: ephemeral share: {exc}", "header") from exc
    if len(share) != 32:
        raise AgeFormatError(f"{stanza_type} stanza: ephemeral share is not 32 bytes", "header")
    return x25519.X25519PublicKey.from_public_bytes(share)


def _exchange(private: x25519.X25519PrivateKey, public: x25519.X25519PublicKey, what: str) -> bytes:
    try:
        return private.exchange(public)
    except ValueError as exc:  # all-zero output: a low-order point
        raise AgeFormatError(f"{what} stanza: low-order ephemeral share", "header") from exc


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
            share = _x25519_share(stanza.args[0], "X25519")
            secret = _exchange(self._key, share, "X25519")
            wrap_key = hkdf_sha256(secret, share.public_bytes_raw() + self._public, X25519_LABEL)
            file_key = _aead_unwrap(wrap_key, stanza.body, "X25519")
            if file_key is not None:
                return file_key
        return None

    def __str__(self) -> str:
        return bech32_encode("age-secret-key-", self._secret).upper()


# --- SSH keys ------------------------------------------------------------------------------

_P25519 = 2**255 - 19


def _ed25519_to_x25519_public(public: bytes) -> bytes:
    """Birational map from an Ed25519 public key (y) to its X25519 form u = (1+y)/(1-y)."""
    y = int.from_bytes(public, "little") & ((1 << 255) - 1)
    if y >= _P25519 or y == 1:
        raise KeyFormatError("ssh-ed25519 key: not a valid curve point")
    u = (1 + y) * pow(1 - y, _P25519 - 2, _P25519) % _P25519
    return u.to_bytes(32, "little")


def _ssh_tag(wire: bytes) -> str:
    """The 4-byte SHA-256 key tag age puts in ssh stanzas, base64 without padding."""
    return b64encode_raw(hashlib.sha256(wire).digest()[:4])


def _ssh_wire(public: ed25519.Ed25519PublicKey | rsa.RSAPublicKey) -> bytes:
    line = public.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return base64.b64decode(line.split()[1])


class SshEd25519Recipient(Recipient):
    """An `ssh-ed25519 AAAA...` public key used as an age recipient."""

    def __init__(self, public: ed25519.Ed25519PublicKey, comment: str = "") -> None:
        self._public = public
        self._wire = _ssh_wire(public)
        self._tag = _ssh_tag(self._wire)
        self._mont = x25519.X25519PublicKey.from_public_bytes(
            _ed25519_to_x25519_public(public.public_bytes_raw())
        )
        self._mont_bytes = self._mont.public_bytes_raw()
        self.comment = comment

    def wrap(self, file_key: bytes) -> list[Stanza]:
        ephemeral = x25519.X25519PrivateKey.generate()
        share = ephemeral.public_key().public_bytes_raw()
        secret = ephemeral.exchange(self._mont)
        tweak = hkdf_sha256(b"", self._wire, ED25519_LABEL)
        secret = x25519.X25519PrivateKey.from_private_bytes(tweak).exchange(
            x25519.X25519PublicKey.from_public_bytes(secret)
        )
        wrap_key = hkdf_sha256(secret, share + self._mont_bytes, ED25519_LABEL)
        args = [self._tag, b64encode_raw(share)]
        return [Stanza("ssh-ed25519", args, _aead_wrap(wrap_key, file_key))]

    @property
    def key_text(self) -> str:
        return "ssh-ed25519 " + base64.b64encode(self._wire).decode("ascii")

    def __str__(self) -> str:
        """`ssh-ed25519 AAAA... comment` (the comment only when there is one)."""
        return f"{self.key_text} {self.comment}" if self.comment else self.key_text


class SshRsaRecipient(Recipient):
    """An `ssh-rsa AAAA...` public key (at least 2048 bits) used as an age recipient."""

    def __init__(self, public: rsa.RSAPublicKey, comment: str = "") -> None:
        if public.key_size < RSA_MIN_BITS:
            raise KeyFormatError(f"ssh-rsa key of {public.key_size} bits: age needs >= 2048")
        self._public = public
        self._wire = _ssh_wire(public)
        self._tag = _ssh_tag(self._wire)
        self.comment = comment

    def wrap(self, file_key: bytes) -> list[Stanza]:
        body = self._public.encrypt(file_key, _oaep())
        return [Stanza("ssh-rsa", [self._tag], body)]

    @property
    def key_text(self) -> str:
        return "ssh-rsa " + base64.b64encode(self._wire).decode("ascii")

    def __str__(self) -> str:
        """`ssh-rsa AAAA... comment` (the comment only when there is one)."""
        return f"{self.key_text} {self.comment}" if self.comment else self.key_text


def _oaep() -> padding.OAEP:
    return padding.OAEP(
        mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=RSA_LABEL
    )


class SshEd25519Identity(Identity):
    """The private half of an ssh-ed25519 recipient, from an OpenSSH private key."""

    def __init__(self, private: ed25519.Ed25519PrivateKey) -> None:
        self._wire = _ssh_wire(private.public_key())
        self._tag = _ssh_tag(self._wire)
        seed = private.private_bytes_raw()
        self._key = x25519.X25519PrivateKey.from_private_bytes(hashlib.sha512(seed).digest()[:32])
        self._mont_bytes = self._key.public_key().public_bytes_raw()
        self._public = private.public_key()

    def recipient(self) -> SshEd25519Recipient:
        return SshEd25519Recipient(self._public)

    def unwrap(self, stanzas: Sequence[Stanza]) -> bytes | None:
        for stanza in stanzas:
            if stanza.type != "ssh-ed25519":
                continue
            if len(stanza.args) != 2:
                raise AgeFormatError("ssh-ed25519 stanza: expected two arguments", "header")
            share = _x25519_share(stanza.args[1], "ssh-ed25519")
            if stanza.args[0] != self._tag:
                continue
            secret = _exchange(self._key, share, "ssh-ed25519")
            tweak = hkdf_sha256(b"", self._wire, ED25519_LABEL)
            secret = _exchange(
                x25519.X25519PrivateKey.from_private_bytes(tweak),
                x25519.X25519PublicKey.from_public_bytes(secret),
                "ssh-ed25519",
            )
            salt = share.public_bytes_raw() + self._mont_bytes
            file_key = _aead_unwrap(hkdf_sha256(secret, salt, ED25519_LABEL), stanza.body, "ssh")
            if file_key is not None:
                return file_key
        return None


class SshRsaIdentity(Identity):
    """The private half of an ssh-rsa recipient, from an OpenSSH (or PEM) private key."""

    def __init__(self, private: rsa.RSAPrivateKey) -> None:
        self._private = private
        self._tag = _ssh_tag(_ssh_wire(private.public_key()))

    def recipient(self) -> SshRsaRecipient:
        return SshRsaRecipient(self._private.public_key())

    def unwrap(self, stanzas: Sequence[Stanza]) -> bytes | None:
        for stanza in stanzas:
            if stanza.type != "ssh-rsa":
                continue
            if len(stanza.args) != 1:
                raise AgeFormatError("ssh-rsa stanza: expected exactly one argument", "header")
            if stanza.args[0] != self._tag:
                continue
            try:
                file_key = self._private.decrypt(stanza.body, _oaep())
            except ValueError:
                continue
            if len(file_key) != FILE_KEY_SIZE:
                raise AgeFormatError("ssh-rsa stanza: wrapped file key size", "header")
            return file_key
        return None


# --- MLKEM768-X25519 (X-Wing) hybrid post-quantum ------------------------------------------

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
            if len(stanza.body) != FILE_KEY_SIZE + 16:
                raise AgeFormatError(f"{PQ_STANZA} stanza: wrapped file key size", "header")
            ct_m, ct_x = enc[:_MLKEM_CT_SIZE], enc[_MLKEM_CT_SIZE:]
            ss_x = _exchange(
                self._x25519, x25519.X25519PublicKey.from_public_bytes(ct_x), PQ_STANZA
            )
            ss_m = self._mlkem.decapsulate(ct_m)
            aead, nonce = _hpke_base_context(_xwing_combine(ss_m, ss_x, ct_x, self._pk_x))
            try:
                return aead.decrypt(nonce, stanza.body, None)
            except InvalidTag:
                continue
        return None

    def __str__(self) -> str:
        return bech32_encode("age-secret-key-pq-", self._seed).upper()


# --- scrypt (passphrase) ------------------------------------------------------------------

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
        return [Stanza("scrypt", args, _aead_wrap(key, file_key))]

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
            if len(stanza.body) != FILE_KEY_SIZE + 16:  # checked before the costly KDF
                raise AgeFormatError("scrypt stanza: wrapped file key has the wrong size", "header")
            key = _scrypt_key(self._passphrase, salt, log_n)
            file_key = _aead_unwrap(key, stanza.body, "scrypt")
            if file_key is not None:
                return file_key
        return None


# --- parsing -------------------------------------------------------------------------------


def parse_recipient(text: str) -> Recipient:
    """Parse `age1...`, `ssh-ed25519 AAAA... [comment]` or `ssh-rsa AAAA... [comment]`.

    Raises KeyFormatError quoting the (truncated) input and the cause.
    """
    stripped = text.strip()
    if stripped.startswith("age1pq1"):
        try:
            hrp, data = bech32_decode(stripped)
        except ValueError as exc:
            raise KeyFormatError(f"malformed age recipient {_quote(stripped)}: {exc}") from exc
        if hrp != "age1pq":
            raise KeyFormatError(f"malformed age recipient {_quote(stripped)}: bad prefix")
        try:
            return MLKEM768X25519Recipient(data)
        except KeyFormatError as exc:
            raise KeyFormatError(f"malformed age recipient {_quote(stripped)}: {exc}") from exc
    if stripped.startswith("age1"):
        try:
            hrp, data = bech32_decode(stripped)
        except ValueError as exc:
            raise KeyFormatError(f"malformed age recipient {_quote(stripped)}: {exc}") from exc
        if hrp != "age" or len(data) != 32:
            raise KeyFormatError(f"malformed age recipient {_quote(stripped)}: not an X25519 key")
        return X25519Recipient(data)
    fields = stripped.split(None, 2)
    if len(fields) >= 2 and fields[0] in ("ssh-ed25519", "ssh-rsa"):
        return _parse_ssh_public(fields, stripped)
    raise KeyFormatError(
        f"unknown recipient {_quote(stripped)}: expected age1..., ssh-ed25519 AAAA... "
        "or ssh-rsa AAAA..."
    )


def _parse_ssh_public(fields: list[str], text: str) -> Recipient:
    kind, blob = fields[0], fields[1]
    comment = fields[2].strip() if len(fields) > 2 else ""
    try:
        wire = base64.b64decode(blob, validate=True)
        key = serialization.load_ssh_public_key(f"{kind} {blob}".encode("ascii"))
    except (ValueError, binascii.Error, UnsupportedAlgorithm, UnicodeEncodeError) as exc:
        raise KeyFormatError(f"malformed SSH public key {_quote(text)}: {exc}") from exc
    if not wire.startswith(len(kind).to_bytes(4, "big") + kind.encode()):
        raise KeyFormatError(f"malformed SSH public key {_quote(text)}: type does not match key")
    try:
        if isinstance(key, ed25519.Ed25519PublicKey):
            return SshEd25519Recipient(key, comment)
        if isinstance(key, rsa.RSAPublicKey):
            return SshRsaRecipient(key, comment)
    except KeyFormatError as exc:
        raise KeyFormatError(f"unusable SSH public key {_quote(text)}: {exc}") from exc
    raise KeyFormatError(f"unsupported SSH public key {_quote(text)}")


def parse_identity(line: str, source: str = "identity") -> Identity:
    """Parse one `AGE-SECRET-KEY-1...` line. The key itself is never quoted in errors."""
    if line.startswith("AGE-PLUGIN-"):
        raise KeyFormatError(f"{source}: age plugin identities are not supported")
    if line.startswith("AGE-SECRET-KEY-PQ-"):
        try:
            hrp, data = bech32_decode(line)
        except ValueError as exc:
            raise KeyFormatError(f"{source}: malformed AGE-SECRET-KEY-PQ: {exc}") from exc
        if line.upper() != line or hrp != "age-secret-key-pq-" or len(data) != 32:
            raise KeyFormatError(f"{source}: malformed AGE-SECRET-KEY-PQ: not a 32-byte seed")
        return MLKEM768X25519Identity(data)
    if line.startswith(("age1", "ssh-ed25519 ", "ssh-rsa ")):
        raise KeyFormatError(
            f"{source}: this is a public key (recipient); give the private key (identity)"
        )
    if not line.startswith("AGE-SECRET-KEY-1"):
        raise KeyFormatError(f"{source}: expected an AGE-SECRET-KEY-1... line")
    try:
        hrp, data = bech32_decode(line)
    except ValueError as exc:
        raise KeyFormatError(f"{source}: malformed AGE-SECRET-KEY: {exc}") from exc
    if line.upper() != line or hrp != "age-secret-key-" or len(data) != 32:
        raise KeyFormatError(f"{source}: malformed AGE-SECRET-KEY: not an X25519 secret key")
    return X25519Identity(data)


_OPENSSH_MARKERS = (b"-----BEGIN OPENSSH PRIVATE KEY-----", b"-----BEGIN RSA PRIVATE KEY-----")


def parse_identities(data: bytes, source: str) -> list[Identity]:
    """Parse an age identity file or an unencrypted OpenSSH private key (ed25519 or rsa).

    An identity file holds `AGE-SECRET-KEY-1...` lines, `#` comments and blank
    lines. `source` (a path or a label) names the input in errors.
    """
    if any(marker in data for marker in _OPENSSH_MARKERS):
        return [_parse_ssh_private(data, source)]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise KeyFormatError(f"{source}: identity file is not UTF-8 text") from exc
    identities: list[Identity] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        identities.append(parse_identity(line, f"{source}:{number}"))
    if not identities:
        raise KeyFormatError(f"{source}: no identity found")
    return identities


def _parse_ssh_private(data: bytes, source: str) -> Identity:
    try:
        if b"-----BEGIN RSA PRIVATE KEY-----" in data:
            key = serialization.load_pem_private_key(data, password=None)
        else:
            key = serialization.load_ssh_private_key(data, password=None)
    except TypeError as exc:  # cryptography's way to say "needs a password"
        raise KeyFormatError(
            f"{source}: the SSH private key is encrypted with a passphrase; "
            "decrypt a copy with `ssh-keygen -p -N '' -f COPY` or use an age identity"
        ) from exc
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise KeyFormatError(f"{source}: unreadable SSH private key: {exc}") from exc
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return SshEd25519Identity(key)
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < RSA_MIN_BITS:
            raise KeyFormatError(f"{source}: ssh-rsa key of {key.key_size} bits, age needs >= 2048")
        return SshRsaIdentity(key)
    raise KeyFormatError(f"{source}: unsupported SSH key type (use ed25519 or rsa)")


def load_identities(path: Path) -> list[Identity]:
    """Read `path` and parse it with parse_identities (errors name the path)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise KeyFormatError(f"{path}: cannot read identity file: {exc.strerror}") from exc
    return parse_identities(data, str(path))
