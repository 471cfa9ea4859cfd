"""Fuzzing the age reader (#12): any mutation of an age file ends in a documented error.

Headers and payloads of real files (X25519, SSH Ed25519 and scrypt
recipients, plain and armored) are truncated, bit-flipped, spliced and
given odd stanza lines. Each input either decrypts to exactly the original
plaintext (a mutation that changed nothing that matters cannot exist: the
header MAC and chunk tags cover every byte) or raises a BundleError
(AgeFormatError, NoMatchingIdentity, BundleCorrupt); never anything else,
never a hang. Deterministic (derandomize) and small: a few seconds in CI.
"""

from __future__ import annotations

import base64
import io
import signal
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handover.bundle.age import (
    AgeReader,
    AgeWriter,
    ArmoredReader,
    Identity,
    ScryptIdentity,
    ScryptRecipient,
    X25519Identity,
    parse_identities,
    parse_recipient,
)
from handover.errors import AgeFormatError, BundleError

PLAINTEXT = bytes(range(256)) * 300  # two chunks of 64 KiB and a bit
SETTINGS = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@contextmanager
def within(seconds: float) -> Iterator[None]:
    """Fail the example (TimeoutError) instead of hanging the suite."""

    def expired(_signum: int, _frame: object) -> None:
        raise TimeoutError(f"no answer within {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _ssh_identity() -> tuple[Identity, str]:
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )
    return parse_identities(private.encode(), "fuzz")[0], public


def _sealed() -> dict[str, tuple[bytes, list[Identity]]]:
    x25519 = X25519Identity.generate()
    ssh_identity, ssh_public = _ssh_identity()
    files: dict[str, tuple[bytes, list[Identity]]] = {}
    for name, recipients, identities in (
        ("x25519", [x25519.recipient()], [x25519]),
        ("ssh", [parse_recipient(ssh_public)], [ssh_identity]),
        ("two", [x25519.recipient(), parse_recipient(ssh_public)], [ssh_identity]),
        (
            "scrypt",
            [ScryptRecipient(b"fuzz", work_factor=2)],
            [ScryptIdentity(b"fuzz", max_work_factor=10)],
        ),
    ):
        out = io.BytesIO()
        with AgeWriter(out, recipients) as age:  # type: ignore[arg-type]
            age.write(PLAINTEXT)
        files[name] = (out.getvalue(), identities)
    return files


SEALED = _sealed()


def decrypt(data: bytes, identities: list[Identity], armored: bool = False) -> bytes:
    """Read the whole file as verify and open do; only BundleError may come out."""
    source: object = io.BytesIO(data)
    if armored:
        source = ArmoredReader(source)  # type: ignore[arg-type]
    with within(5), AgeReader(source, identities, name="fuzz.age") as age:  # type: ignore[arg-type]
        out = bytearray()
        while chunk := age.read(1 << 16):
            out += chunk
    return bytes(out)


def outcome(data: bytes, identities: list[Identity], armored: bool = False) -> str:
    try:
        plain = decrypt(data, identities, armored)
    except BundleError as exc:
        assert str(exc) and "\n" not in str(exc), repr(exc)
        return type(exc).__name__
    assert plain == PLAINTEXT, "a mutated file decrypted to other plaintext"
    return "ok"


def _header_end(data: bytes) -> int:
    return data.index(b"\n---") + 48  # '--- ' + 43 base64 characters + newline


MUTATIONS = st.sampled_from(["flip", "truncate", "insert", "delete", "replace-line"])


def mutate(data: bytes, how: str, position: int, value: bytes) -> bytes:
    position %= len(data) + 1
    if how == "flip":
        position = min(position, len(data) - 1)
        return (
            data[:position]
            + bytes([data[position] ^ (value[0] if value else 1) or 1])
            + data[position + 1 :]
        )
    if how == "truncate":
        return data[:position]
    if how == "insert":
        return data[:position] + value + data[position:]
    if how == "delete":
        return data[:position] + data[position + len(value) + 1 :]
    lines = data[: _header_end(data)].split(b"\n")
    index = position % len(lines)
    lines[index] = value
    return b"\n".join(lines) + data[_header_end(data) :]


@SETTINGS
@given(
    name=st.sampled_from(sorted(SEALED)),
    how=MUTATIONS,
    position=st.integers(min_value=0, max_value=400),
    value=st.binary(min_size=0, max_size=80),
)
def test_mutated_headers_end_in_documented_errors(
    name: str, how: str, position: int, value: bytes
) -> None:
    data, identities = SEALED[name]
    end = _header_end(data)
    mutated = mutate(data[:end], how, position, value) + data[end:]
    assert outcome(mutated, identities) in {
        "ok",
        "AgeFormatError",
        "NoMatchingIdentity",
        "BundleCorrupt",
    }


STANZA_LINES = st.sampled_from(
    [
        b"-> X25519",
        b"-> X25519 " + b"A" * 43 + b" extra",
        b"-> scrypt AAAAAAAAAAAAAAAAAAAAAA 40",
        b"-> scrypt AAAAAAAAAAAAAAAAAAAAAA 99999999999999999999",
        b"-> ssh-ed25519 AAAAAA " + b"B" * 43,
        b"-> \x00\xff",
        b"-> " + b"x" * 5000,
        b"A" * 65,
        b"",
        b"--- ",
        b"age-encryption.org/v1",
        b"-> mlkem768x25519 " + b"C" * 1500,
    ]
)


@SETTINGS
@given(
    name=st.sampled_from(sorted(SEALED)),
    line=STANZA_LINES,
    where=st.integers(min_value=1, max_value=8),
)
def test_hostile_stanza_lines_end_in_documented_errors(name: str, line: bytes, where: int) -> None:
    data, identities = SEALED[name]
    end = _header_end(data)
    lines = data[:end].split(b"\n")
    where = min(where, len(lines) - 2)
    mutated = b"\n".join([*lines[:where], line, *lines[where:]]) + data[end:]
    assert outcome(mutated, identities) in {"AgeFormatError", "NoMatchingIdentity"}


@SETTINGS
@given(
    how=st.sampled_from(["flip", "truncate", "insert", "delete"]),
    position=st.integers(min_value=0, max_value=len(SEALED["x25519"][0])),
    value=st.binary(min_size=1, max_size=40),
)
def test_mutated_payloads_never_yield_other_plaintext(
    how: str, position: int, value: bytes
) -> None:
    data, identities = SEALED["x25519"]
    end = _header_end(data)
    mutated = data[:end] + mutate(data[end:], how, position, value)
    result = outcome(mutated, identities)
    assert result in {"ok", "AgeFormatError"}
    if mutated != data:
        assert result == "AgeFormatError"


def _armored(data: bytes) -> bytes:
    body = base64.b64encode(data).decode()
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return "\n".join(
        ["-----BEGIN AGE ENCRYPTED FILE-----", *lines, "-----END AGE ENCRYPTED FILE-----", ""]
    ).encode()


ARMORED = _armored(SEALED["x25519"][0])


def test_the_armored_file_decrypts() -> None:
    assert outcome(ARMORED, SEALED["x25519"][1], armored=True) == "ok"


@SETTINGS
@given(
    how=st.sampled_from(["flip", "truncate", "insert", "delete"]),
    position=st.integers(min_value=0, max_value=len(ARMORED)),
    value=st.binary(min_size=1, max_size=20),
)
def test_mutated_armor_ends_in_documented_errors(how: str, position: int, value: bytes) -> None:
    result = outcome(mutate(ARMORED, how, position, value), SEALED["x25519"][1], armored=True)
    assert result in {"ok", "AgeFormatError", "NoMatchingIdentity", "BundleCorrupt"}


def test_a_hang_would_fail_not_block() -> None:
    """The guard itself: a reader that never answers is stopped by `within`."""

    class Stalled(io.RawIOBase):
        def readable(self) -> bool:
            return True

        def readinto(self, buffer: object) -> int:
            import time

            time.sleep(10)
            return 0

    with pytest.raises(TimeoutError), within(0.2):
        AgeReader(Stalled(), [X25519Identity.generate()])  # type: ignore[arg-type]
    assert issubclass(AgeFormatError, BundleError)
