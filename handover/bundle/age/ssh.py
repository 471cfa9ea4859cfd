"""SSH keys as age recipients: ssh-ed25519 and ssh-rsa (C2SP age spec, as `age -R ~/.ssh/id.pub`).

A client who already has an SSH key needs no new key to open a bundle. This
module holds both SSH recipient types and their identities, the tag that
says which key a stanza is for, the Ed25519 to X25519 map, and reading the
keys themselves (a `.pub` line, an unencrypted OpenSSH or PEM private key).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from typing import ClassVar

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa, x25519

from handover.bundle.age.primitives import (
    FILE_KEY_SIZE,
    aead_unwrap,
    aead_wrap,
    b64encode_raw,
    hkdf_sha256,
)
from handover.bundle.age.stanza import Identity, Recipient, Stanza
from handover.bundle.age.x25519 import exchange, stanza_share
from handover.errors import AgeFormatError, KeyFormatError
from handover.sshkeys import SshPublicKey, parse_public_key, shown

ED25519_LABEL = b"age-encryption.org/v1/ssh-ed25519"
RSA_LABEL = b"age-encryption.org/v1/ssh-rsa"
RSA_MIN_BITS = 2048
SSH_RECIPIENT_TYPES = ("ssh-ed25519", "ssh-rsa")
OPENSSH_MARKERS = (b"-----BEGIN OPENSSH PRIVATE KEY-----", b"-----BEGIN RSA PRIVATE KEY-----")
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


def _oaep() -> padding.OAEP:
    return padding.OAEP(
        mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=RSA_LABEL
    )


class _SshRecipient(Recipient):
    """What both SSH recipient types share: the key's wire form, its age tag, its comment."""

    key_type: ClassVar[str]

    def __init__(self, public: ed25519.Ed25519PublicKey | rsa.RSAPublicKey, comment: str) -> None:
        # The wire form is re-encoded from the key, as age does, so the tag matches age's.
        self._wire = _ssh_wire(public)
        self._tag = _ssh_tag(self._wire)
        self.comment = comment

    @property
    def ssh_key(self) -> SshPublicKey:
        return SshPublicKey(self.key_type, self._wire, self.comment)

    @property
    def key_text(self) -> str:
        return self.ssh_key.line(comment="")

    def __str__(self) -> str:
        """`ssh-... AAAA... comment` (the comment only when there is one)."""
        return self.ssh_key.line()


class SshEd25519Recipient(_SshRecipient):
    """An `ssh-ed25519 AAAA...` public key used as an age recipient."""

    key_type = "ssh-ed25519"

    def __init__(self, public: ed25519.Ed25519PublicKey, comment: str = "") -> None:
        super().__init__(public, comment)
        self._mont = x25519.X25519PublicKey.from_public_bytes(
            _ed25519_to_x25519_public(public.public_bytes_raw())
        )
        self._mont_bytes = self._mont.public_bytes_raw()

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
        return [Stanza("ssh-ed25519", args, aead_wrap(wrap_key, file_key))]


class SshRsaRecipient(_SshRecipient):
    """An `ssh-rsa AAAA...` public key (at least 2048 bits) used as an age recipient."""

    key_type = "ssh-rsa"

    def __init__(self, public: rsa.RSAPublicKey, comment: str = "") -> None:
        if public.key_size < RSA_MIN_BITS:
            raise KeyFormatError(f"ssh-rsa key of {public.key_size} bits: age needs >= 2048")
        super().__init__(public, comment)
        self._public = public

    def wrap(self, file_key: bytes) -> list[Stanza]:
        body = self._public.encrypt(file_key, _oaep())
        return [Stanza("ssh-rsa", [self._tag], body)]


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
            share = stanza_share(stanza.args[1], "ssh-ed25519")
            if stanza.args[0] != self._tag:
                continue
            secret = exchange(self._key, share, "ssh-ed25519")
            tweak = hkdf_sha256(b"", self._wire, ED25519_LABEL)
            secret = exchange(
                x25519.X25519PrivateKey.from_private_bytes(tweak),
                x25519.X25519PublicKey.from_public_bytes(secret),
                "ssh-ed25519",
            )
            salt = share.public_bytes_raw() + self._mont_bytes
            file_key = aead_unwrap(hkdf_sha256(secret, salt, ED25519_LABEL), stanza.body, "ssh")
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


def parse_ssh_recipient(text: str) -> Recipient:
    """Parse `ssh-ed25519 AAAA... [comment]` or `ssh-rsa AAAA... [comment]` (stripped).

    The line is read by `handover.sshkeys` like every public key of handover;
    `cryptography` then checks the key itself (a point on the curve, an RSA
    modulus). Raises KeyFormatError quoting the (shortened) line and the cause.
    """
    line = parse_public_key(text, "malformed SSH public key")
    try:
        key = serialization.load_ssh_public_key(line.line(comment="").encode("ascii"))
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise KeyFormatError(f"malformed SSH public key {shown(text)!r}: {exc}") from exc
    try:
        if isinstance(key, ed25519.Ed25519PublicKey):
            return SshEd25519Recipient(key, line.comment)
        if isinstance(key, rsa.RSAPublicKey):
            return SshRsaRecipient(key, line.comment)
    except KeyFormatError as exc:
        raise KeyFormatError(f"unusable SSH public key {shown(text)!r}: {exc}") from exc
    raise KeyFormatError(f"unsupported SSH public key {shown(text)!r}")


def parse_ssh_private_key(data: bytes, source: str) -> Identity:
    """An identity from an unencrypted OpenSSH (or PEM RSA) private key; errors name `source`."""
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
