"""The C2SP CCTV age vectors (tests/data/age): every applicable one gives its outcome.

Each vector is key-value lines, a blank line, then the age file (zlib-compressed
when `compressed: zlib`). `expect` is success (the plaintext's SHA-256 must match
`payload`), or the failure class the reader must raise. Vectors that need a
feature handover does not implement are skipped with the reason, and
`test_vector_coverage` prints how many were skipped per reason.
"""

from __future__ import annotations

import hashlib
import io
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from handover.bundle import age
from handover.errors import AgeFormatError, KeyFormatError, NoMatchingIdentity
from tests.conftest import VECTORS_DIR


@dataclass
class Vector:
    name: str
    expect: str
    payload: str | None
    identities: list[str] = field(default_factory=list)
    passphrases: list[str] = field(default_factory=list)
    armored: bool = False
    body: bytes = b""


def load_vector(path: Path) -> Vector:
    raw = path.read_bytes()
    head, _, body = raw.partition(b"\n\n")
    values: dict[str, list[str]] = {}
    for line in head.decode("utf-8").splitlines():
        key, _, value = line.partition(": ")
        values.setdefault(key, []).append(value)
    if values.get("compressed") == ["zlib"]:
        body = zlib.decompress(body)
    return Vector(
        name=path.name,
        expect=values["expect"][0],
        payload=values.get("payload", [None])[0],
        identities=values.get("identity", []),
        passphrases=values.get("passphrase", []),
        armored=values.get("armored") == ["yes"],
        body=body,
    )


def all_vectors() -> list[Vector]:
    return [load_vector(p) for p in sorted(VECTORS_DIR.iterdir()) if p.name != "README.md"]


VECTORS = all_vectors()


def skip_reason(vector: Vector) -> str | None:
    """Why a vector cannot run here, or None when it is applicable."""
    pq = any(i.startswith("AGE-SECRET-KEY-PQ-") for i in vector.identities)
    if pq and not hasattr(age, "MLKEM768X25519Identity"):
        return "post-quantum (mlkem768x25519) identities are not implemented"
    if vector.passphrases and not hasattr(age, "ScryptIdentity"):
        return "scrypt passphrases are not implemented"
    if vector.armored and not hasattr(age, "ArmoredReader"):
        return "ASCII armor is not implemented"
    return None


def run_vector(vector: Vector) -> bytes:
    identities: list[age.Identity] = [age.parse_identity(i, vector.name) for i in vector.identities]
    for passphrase in vector.passphrases:
        identities.append(age.ScryptIdentity(passphrase.encode()))  # type: ignore[attr-defined]
    src: io.BufferedIOBase = io.BytesIO(vector.body)
    if vector.armored:
        src = age.ArmoredReader(src)  # type: ignore[attr-defined]
    with age.AgeReader(src, identities, name=vector.name) as reader:  # type: ignore[arg-type]
        return reader.read()


EXPECTED_KIND = {
    "HMAC failure": "hmac",
    "header failure": "header",
    "payload failure": "payload",
    "armor failure": "armor",
}


def test_vectors_are_present() -> None:
    assert len(VECTORS) > 100, f"age vectors missing under {VECTORS_DIR}"


@pytest.mark.parametrize("vector", VECTORS, ids=[v.name for v in VECTORS])
def test_vector(vector: Vector) -> None:
    reason = skip_reason(vector)
    if reason:
        pytest.skip(reason)
    if vector.expect == "success":
        plaintext = run_vector(vector)
        assert hashlib.sha256(plaintext).hexdigest() == vector.payload
    elif vector.expect == "no match":
        with pytest.raises(NoMatchingIdentity):
            run_vector(vector)
    else:
        kind = EXPECTED_KIND[vector.expect]
        with pytest.raises((AgeFormatError, KeyFormatError)) as info:
            run_vector(vector)
        assert isinstance(info.value, AgeFormatError), info.value
        assert info.value.kind == kind, f"{info.value.kind}: {info.value}"


def test_vector_coverage(capsys: pytest.CaptureFixture[str]) -> None:
    """Print, whatever the capture mode, how many vectors ran and how many were skipped why."""
    reasons = Counter(r for v in VECTORS if (r := skip_reason(v)))
    applicable = len(VECTORS) - sum(reasons.values())
    lines = [f"age vectors: {len(VECTORS)} total, {applicable} applicable"]
    lines += [f"  skipped {count}: {reason}" for reason, count in sorted(reasons.items())]
    with capsys.disabled():
        print("\n" + "\n".join(lines))
    assert applicable > 60, lines
