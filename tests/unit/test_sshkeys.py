"""handover.sshkeys: one parser and one fingerprint for every OpenSSH public key."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from handover.errors import KeyFormatError, UsageError
from handover.sshkeys import (
    find_public_key,
    fingerprint,
    line_fingerprint,
    normalize_fingerprint,
    parse_public_key,
    public_key_problem,
)


def pub_line(key: object, comment: str = "ops@provider") -> str:
    raw = key.public_key().public_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    return f"{raw.decode()} {comment}".strip()


ED = pub_line(ed25519.Ed25519PrivateKey.generate())
RSA = pub_line(rsa.generate_private_key(public_exponent=65537, key_size=2048))
ECDSA = pub_line(ec.generate_private_key(ec.SECP256R1()))


@pytest.mark.parametrize("line", [ED, RSA, ECDSA], ids=["ed25519", "rsa", "ecdsa"])
def test_parse_public_key_keeps_type_blob_comment_and_line(line: str) -> None:
    key = parse_public_key(line)
    assert key.key_type == line.split()[0]
    assert key.comment == "ops@provider"
    assert key.line() == line
    expected = hashlib.sha256(base64.b64decode(line.split()[1])).digest()
    assert key.fingerprint == "SHA256:" + base64.b64encode(expected).decode().rstrip("=")
    assert fingerprint(key.blob) == key.fingerprint


def test_fingerprint_has_no_padding_and_43_characters() -> None:
    value = parse_public_key(ED).fingerprint
    assert value.startswith("SHA256:") and not value.endswith("=")
    assert len(value) == len("SHA256:") + 43


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("ssh-ed25519", "expected '<type> <base64> [comment]'"),
        ("ssh-dss AAAAB3NzaC1kc3M= x", "unknown key type 'ssh-dss'"),
        ("ssh-ed25519 not*base64", "not valid base64"),
        (f"ssh-rsa {ED.split()[1]}", "is a 'ssh-ed25519' key, not 'ssh-rsa'"),
        (f"ssh-ed25519 {ED.split()[1][:-8]}", "wrong length"),
        (f"{ED}\n{RSA}", "single line"),
    ],
    # Stable ids: the keys are generated per process, and parallel workers must collect alike.
    ids=["no-blob", "unknown-type", "bad-base64", "type-mismatch", "short-blob", "two-lines"],
)
def test_public_key_problem_names_what_is_wrong(line: str, problem: str) -> None:
    found = public_key_problem(line)
    assert found is not None and problem in found
    with pytest.raises(KeyFormatError, match="provider key 'ssh-"):
        parse_public_key(line, "provider key")


def test_find_public_key_skips_authorized_keys_options() -> None:
    line = f'from="10.0.0.1",no-pty {ED.split()[0]} {ED.split()[1]} handover:acme marker'
    found = find_public_key(line)
    assert found is not None
    index, key = found
    assert index == 1 and key.comment == "handover:acme marker"
    assert key.fingerprint == parse_public_key(ED).fingerprint
    assert find_public_key("# a comment line") is None
    assert find_public_key("ssh-ed25519 ***") is None


def test_line_fingerprint_is_none_for_non_keys() -> None:
    assert line_fingerprint(RSA) == parse_public_key(RSA).fingerprint
    assert line_fingerprint("age1qqqq") is None


def test_normalize_fingerprint_accepts_bare_and_padded_forms() -> None:
    value = parse_public_key(ED).fingerprint
    assert normalize_fingerprint(value) == value
    assert normalize_fingerprint(value.removeprefix("SHA256:")) == value
    assert normalize_fingerprint(value + "=") == value
    for bad in ("MD5:aa:bb", "SHA256:short", "SHA256:***"):
        with pytest.raises(UsageError):
            normalize_fingerprint(bad)
