"""SSH signatures: round trips, key files, and every way a signature must fail."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from handover.bundle.sshsig import (
    ARMOR_BEGIN,
    ARMOR_END,
    SigningKey,
    sign,
    verify,
)
from handover.errors import BundleCorrupt, KeyFormatError

NS = "handover-bundle"


def test_sign_verify_round_trip() -> None:
    key = SigningKey.generate()
    data = os.urandom(5000)
    signature = sign(data, key, NS)
    assert signature.startswith(ARMOR_BEGIN + "\n") and signature.endswith(ARMOR_END + "\n")
    assert all(len(line) <= 70 for line in signature.splitlines())
    verify(data, signature, key.public_line(), NS)
    verify(data, signature, key.public_line("other comment"), NS)


def test_signature_blob_layout() -> None:
    key = SigningKey.generate()
    signature = sign(b"x", key, NS)
    blob = base64.b64decode("".join(signature.splitlines()[1:-1]))
    assert blob[:6] == b"SSHSIG"
    assert int.from_bytes(blob[6:10], "big") == 1
    assert key.public_wire() in blob and NS.encode() in blob and b"sha512" in blob


def test_wrong_namespace_fails() -> None:
    key = SigningKey.generate()
    signature = sign(b"data", key, NS)
    with pytest.raises(BundleCorrupt, match="namespace"):
        verify(b"data", signature, key.public_line(), "file")


def test_wrong_key_fails() -> None:
    key, other = SigningKey.generate(), SigningKey.generate()
    signature = sign(b"data", key, NS)
    with pytest.raises(BundleCorrupt, match="another key"):
        verify(b"data", signature, other.public_line(), NS)


def test_tampered_data_fails() -> None:
    key = SigningKey.generate()
    signature = sign(b"data", key, NS)
    with pytest.raises(BundleCorrupt, match="does not match"):
        verify(b"datA", signature, key.public_line(), NS)


def test_tampered_signature_bytes_fail() -> None:
    key = SigningKey.generate()
    data = b"SHA256SUMS content\n"
    signature = sign(data, key, NS)
    lines = signature.splitlines()
    blob = bytearray(base64.b64decode("".join(lines[1:-1])))
    for pos in range(0, len(blob), 3):
        bad = bytearray(blob)
        bad[pos] ^= 0x04
        text = base64.b64encode(bytes(bad)).decode()
        armored = f"{ARMOR_BEGIN}\n{text}\n{ARMOR_END}\n"
        with pytest.raises(BundleCorrupt):
            verify(data, armored, key.public_line(), NS)


@pytest.mark.parametrize(
    "signature",
    ["", "hello", f"{ARMOR_BEGIN}\n!!!!\n{ARMOR_END}\n", f"{ARMOR_BEGIN}\nAAAA\n{ARMOR_END}\n"],
)
def test_malformed_signatures(signature: str) -> None:
    key = SigningKey.generate()
    with pytest.raises(BundleCorrupt, match="signature"):
        verify(b"data", signature, key.public_line(), NS)


def test_bad_public_line() -> None:
    key = SigningKey.generate()
    with pytest.raises(KeyFormatError):
        verify(b"d", sign(b"d", key, NS), "not a key", NS)


def test_key_file_round_trip(tmp_path: Path) -> None:
    key = SigningKey.generate()
    path = tmp_path / "provider-signing"
    path.write_bytes(key.private_openssh())
    assert path.read_bytes().startswith(b"-----BEGIN OPENSSH PRIVATE KEY-----")
    loaded = SigningKey.load(path)
    assert loaded.public_line() == key.public_line()
    assert key.fingerprint().startswith("SHA256:")
    assert "PRIVATE" not in repr(key)


def test_load_rejects_rsa_encrypted_and_missing(tmp_path: Path) -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path / "rsa"
    path.write_bytes(
        rsa_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
    )
    with pytest.raises(KeyFormatError, match="Ed25519"):
        SigningKey.load(path)
    with pytest.raises(KeyFormatError, match="cannot read"):
        SigningKey.load(tmp_path / "missing")
    garbage = tmp_path / "garbage"
    garbage.write_text("hello")
    with pytest.raises(KeyFormatError, match="garbage"):
        SigningKey.load(garbage)


def test_empty_namespace_refused() -> None:
    with pytest.raises(ValueError):
        sign(b"x", SigningKey.generate(), "")


def test_from_openssh_names_where_the_bytes_came_from_never_the_key(tmp_path: Path) -> None:
    key = SigningKey.generate()
    parsed = SigningKey.from_openssh(key.private_openssh(), "vault:acme/signing")
    assert parsed.public_line() == key.public_line()
    with pytest.raises(KeyFormatError, match=r"^vault:acme/signing: not an OpenSSH private key"):
        SigningKey.from_openssh(b"hello", "vault:acme/signing")
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = rsa_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    with pytest.raises(KeyFormatError, match=r"^env:KEY: signing key must be Ed25519") as info:
        SigningKey.from_openssh(pem, "env:KEY")
    assert "PRIVATE" not in str(info.value)
    encrypted = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.BestAvailableEncryption(b"passphrase"),
    )
    with pytest.raises(KeyFormatError, match="encrypted with a passphrase"):
        SigningKey.from_openssh(encrypted, "file:provider-signing")
