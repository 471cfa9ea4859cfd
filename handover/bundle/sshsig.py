"""SSH signatures compatible with `ssh-keygen -Y sign` / `ssh-keygen -Y verify` (PROTOCOL.sshsig).

A client checks a bundle's SHA256SUMS with the OpenSSH tools it already has:

    ssh-keygen -Y verify -f allowed_signers -I provider -n handover-bundle \
        -s SHA256SUMS.sig < SHA256SUMS

The signed blob is "SSHSIG", the namespace, an empty reserved field, the hash
algorithm name and the SHA-512 of the message, so a signature made for one
namespace (say, `handover-bundle`) can never be replayed in another.
Signing keys are Ed25519; verification also accepts RSA signatures
(rsa-sha2-256/512) made by `ssh-keygen -Y sign` with an RSA key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from handover.errors import BundleCorrupt, KeyFormatError
from handover.sshkeys import SshPublicKey, parse_public_key

MAGIC = b"SSHSIG"
SIG_VERSION = 1
HASH_ALGORITHM = "sha512"
ARMOR_BEGIN = "-----BEGIN SSH SIGNATURE-----"
ARMOR_END = "-----END SSH SIGNATURE-----"
_LINE_LEN = 70  # what ssh-keygen writes


def _string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


class _Cursor:
    """Reads SSH wire-format fields; raises ValueError on short input."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, size: int) -> bytes:
        if self.pos + size > len(self.data):
            raise ValueError("truncated")
        out = self.data[self.pos : self.pos + size]
        self.pos += size
        return out

    def uint32(self) -> int:
        value: int = struct.unpack(">I", self.take(4))[0]
        return value

    def string(self) -> bytes:
        return self.take(self.uint32())

    def done(self) -> bool:
        return self.pos == len(self.data)


class SigningKey:
    """The provider's Ed25519 signing key (OpenSSH format on disk)."""

    def __init__(self, private: ed25519.Ed25519PrivateKey) -> None:
        self._private = private

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(ed25519.Ed25519PrivateKey.generate())

    @classmethod
    def load(cls, path: Path) -> SigningKey:
        """Load an unencrypted OpenSSH Ed25519 private key; KeyFormatError names the path."""
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise KeyFormatError(f"{path}: cannot read signing key: {exc.strerror}") from exc
        return cls.from_openssh(data, str(path))

    @classmethod
    def from_openssh(cls, data: bytes, where: str) -> SigningKey:
        """Parse an unencrypted OpenSSH Ed25519 private key; KeyFormatError names `where`.

        `where` says where the bytes came from (a path, a secret reference),
        never the key itself.
        """
        try:
            key = serialization.load_ssh_private_key(data, password=None)
        except TypeError as exc:
            raise KeyFormatError(
                f"{where}: the signing key is encrypted with a passphrase; "
                "handover needs an unencrypted key (keep it in the vault instead)"
            ) from exc
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise KeyFormatError(f"{where}: not an OpenSSH private key: {exc}") from exc
        if not isinstance(key, ed25519.Ed25519PrivateKey):
            raise KeyFormatError(f"{where}: signing key must be Ed25519 (ssh-keygen -t ed25519)")
        return cls(key)

    def private_openssh(self) -> bytes:
        """The key in OpenSSH PEM form, unencrypted: `ssh-keygen -Y sign -f` reads it."""
        return self._private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )

    def public_wire(self) -> bytes:
        """The public key in SSH wire format (string "ssh-ed25519", string key)."""
        raw = self._private.public_key().public_bytes_raw()
        return _string(b"ssh-ed25519") + _string(raw)

    def public_key(self, comment: str = "") -> SshPublicKey:
        """The public half as every public key of handover is held (line, fingerprint)."""
        return SshPublicKey("ssh-ed25519", self.public_wire(), comment)

    def public_line(self, comment: str = "handover") -> str:
        """`ssh-ed25519 AAAA... comment`, as in a .pub or allowed_signers file."""
        return self.public_key(comment.rstrip()).line()

    def fingerprint(self) -> str:
        """`SHA256:...` as `ssh-keygen -l` prints it."""
        return self.public_key().fingerprint

    def _sign_raw(self, data: bytes) -> bytes:
        return self._private.sign(data)

    def __repr__(self) -> str:
        return f"<SigningKey {self.fingerprint()}>"


def _signed_blob(namespace: str, digest: bytes, hash_algorithm: str = HASH_ALGORITHM) -> bytes:
    return (
        MAGIC
        + _string(namespace.encode("utf-8"))
        + _string(b"")
        + _string(hash_algorithm.encode("ascii"))
        + _string(digest)
    )


def _check_namespace(namespace: str) -> None:
    if not namespace:
        raise ValueError("an SSH signature needs a non-empty namespace")


def sign(data: bytes, key: SigningKey, namespace: str) -> str:
    """Armored `-----BEGIN SSH SIGNATURE-----` text over `data`, as `ssh-keygen -Y sign`."""
    _check_namespace(namespace)
    raw_sig = key._sign_raw(_signed_blob(namespace, hashlib.sha512(data).digest()))
    blob = (
        MAGIC
        + struct.pack(">I", SIG_VERSION)
        + _string(key.public_wire())
        + _string(namespace.encode("utf-8"))
        + _string(b"")
        + _string(HASH_ALGORITHM.encode("ascii"))
        + _string(_string(b"ssh-ed25519") + _string(raw_sig))
    )
    text = base64.b64encode(blob).decode("ascii")
    lines = [text[i : i + _LINE_LEN] for i in range(0, len(text), _LINE_LEN)]
    return "\n".join([ARMOR_BEGIN, *lines, ARMOR_END]) + "\n"


def _unarmor(signature: str) -> bytes:
    text = signature.strip()
    if not text.startswith(ARMOR_BEGIN) or not text.endswith(ARMOR_END):
        raise BundleCorrupt("signature: not an armored SSH SIGNATURE block")
    body = "".join(text[len(ARMOR_BEGIN) : -len(ARMOR_END)].split())
    try:
        return base64.b64decode(body, validate=True)
    except binascii.Error as exc:
        raise BundleCorrupt("signature: armored block is not valid base64") from exc


def _verify_raw(wire: bytes, sig: bytes, signed: bytes) -> None:
    """Check the inner SSH signature `sig` of `signed` under the public key `wire`."""
    key_cur = _Cursor(wire)
    key_type = key_cur.string()
    sig_cur = _Cursor(sig)
    sig_type = sig_cur.string()
    sig_bytes = sig_cur.string()
    try:
        if key_type == b"ssh-ed25519" and sig_type == b"ssh-ed25519":
            ed25519.Ed25519PublicKey.from_public_bytes(key_cur.string()).verify(sig_bytes, signed)
            return
        if key_type == b"ssh-rsa" and sig_type in (b"rsa-sha2-256", b"rsa-sha2-512"):
            e = int.from_bytes(key_cur.string(), "big")
            n = int.from_bytes(key_cur.string(), "big")
            public = rsa.RSAPublicNumbers(e, n).public_key()
            algo: hashes.HashAlgorithm = (
                hashes.SHA512() if sig_type == b"rsa-sha2-512" else hashes.SHA256()
            )
            public.verify(sig_bytes, signed, padding.PKCS1v15(), algo)
            return
    except InvalidSignature as exc:
        raise BundleCorrupt("signature does not match the data (tampered?)") from exc
    raise BundleCorrupt(
        f"signature: unsupported key/signature type {key_type.decode(errors='replace')}"
        f"/{sig_type.decode(errors='replace')}"
    )


def _verify_digests(
    digest_of: dict[str, bytes], signature: str, public_line: str, namespace: str
) -> None:
    """Verify with precomputed digests (`{"sha512": ..., "sha256": ...}`); see verify()."""
    wire = parse_public_key(public_line, "signer key").blob
    blob = _unarmor(signature)
    try:
        cur = _Cursor(blob)
        if cur.take(6) != MAGIC:
            raise BundleCorrupt("signature: missing SSHSIG magic")
        version = cur.uint32()
        if version != SIG_VERSION:
            raise BundleCorrupt(f"signature: unsupported SSHSIG version {version}")
        signer = cur.string()
        sig_namespace = cur.string()
        _reserved = cur.string()
        hash_algorithm = cur.string().decode("ascii", errors="replace")
        sig = cur.string()
        if not cur.done():
            raise BundleCorrupt("signature: trailing bytes after the SSHSIG blob")
    except ValueError as exc:
        raise BundleCorrupt("signature: truncated SSHSIG blob") from exc
    if signer != wire:
        raise BundleCorrupt("signature was made by another key than the expected signer")
    if sig_namespace != namespace.encode("utf-8"):
        raise BundleCorrupt(
            f"signature namespace is {sig_namespace.decode(errors='replace')!r}, "
            f"expected {namespace!r}"
        )
    if hash_algorithm not in digest_of:
        raise BundleCorrupt(f"signature: unsupported hash algorithm {hash_algorithm!r}")
    try:
        _verify_raw(wire, sig, _signed_blob(namespace, digest_of[hash_algorithm], hash_algorithm))
    except ValueError as exc:
        raise BundleCorrupt("signature: malformed key or signature field") from exc


def verify(data: bytes, signature: str, public_line: str, namespace: str) -> None:
    """Check an armored SSH signature of `data` by `public_line` in `namespace`.

    Returns None when good; raises BundleCorrupt saying what is wrong (another
    signer, another namespace, tampered data, malformed block), or
    KeyFormatError when `public_line` itself does not parse.
    """
    _check_namespace(namespace)
    digests = {"sha512": hashlib.sha512(data).digest(), "sha256": hashlib.sha256(data).digest()}
    _verify_digests(digests, signature, public_line, namespace)
