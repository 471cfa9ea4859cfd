"""Round trips, truncation, tampering and aborted writes of the age writer and reader."""

from __future__ import annotations

import base64
import io
import os
import random
import tracemalloc
from collections.abc import Sequence

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from handover.bundle.age import (
    CHUNK_SIZE,
    AgeReader,
    AgeWriter,
    ArmoredReader,
    Identity,
    MLKEM768X25519Identity,
    Recipient,
    ScryptIdentity,
    ScryptRecipient,
    SshEd25519Identity,
    X25519Identity,
    X25519Recipient,
    client_requirements,
    load_identities,
    parse_identities,
    parse_recipient,
)
from handover.bundle.age.bech32 import bech32_decode, bech32_encode
from handover.errors import AgeFormatError, BundleCorrupt, KeyFormatError, NoMatchingIdentity

ENC = CHUNK_SIZE + 16


def seal(
    data: bytes, recipients: Sequence[Recipient], pieces: int = 1, background: bool = False
) -> bytes:
    out = io.BytesIO()
    with AgeWriter(out, recipients, background=background) as writer:
        step = max(1, len(data) // pieces)
        for i in range(0, len(data), step):
            assert writer.write(data[i : i + step]) == len(data[i : i + step])
    return out.getvalue()


def unseal(blob: bytes, identities: Sequence[Identity]) -> bytes:
    with AgeReader(io.BytesIO(blob), identities) as reader:
        return reader.read()


def payload_offset(blob: bytes) -> int:
    """Offset of the first payload chunk: after the MAC line and the 16-byte nonce."""
    return blob.index(b"\n", blob.index(b"\n---") + 1) + 1 + 16


SIZES = [0, 1, 1000, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 2 * CHUNK_SIZE]
SIZES += [17 * CHUNK_SIZE + 5]


@pytest.mark.parametrize("background", [False, True], ids=["inline", "background"])
@pytest.mark.parametrize("size", [*SIZES, 16 * CHUNK_SIZE, 32 * CHUNK_SIZE, 16 * CHUNK_SIZE + 1])
@pytest.mark.parametrize("pieces", [1, 3, 997])
def test_round_trip(size: int, pieces: int, background: bool) -> None:
    identity = X25519Identity.generate()
    data = os.urandom(size)
    blob = seal(data, [identity.recipient()], pieces, background)
    assert unseal(blob, [identity]) == data
    chunks = max(1, -(-size // CHUNK_SIZE))
    assert len(blob) - payload_offset(blob) == size + 16 * chunks


@pytest.mark.parametrize("size", [0, 5, CHUNK_SIZE, 3 * CHUNK_SIZE + 7])
@pytest.mark.parametrize("step", [1, 4099, CHUNK_SIZE, CHUNK_SIZE + 3, 1 << 20])
def test_read_sizes_and_readinto(size: int, step: int) -> None:
    identity = X25519Identity.generate()
    data = os.urandom(size if step > 1 else min(size, 300))
    blob = seal(data, [identity.recipient()])
    reader = AgeReader(io.BytesIO(blob), [identity])
    got = bytearray()
    while part := reader.read(step):
        assert len(part) <= step
        got += part
    assert bytes(got) == data
    assert reader.read(10) == b""
    reader = AgeReader(io.BytesIO(blob), [identity])
    buf = bytearray(step)
    got = bytearray()
    while n := reader.readinto(buf):
        got += buf[:n]
    assert bytes(got) == data


def test_writer_accepts_memoryview_bytearray_and_non_byte_formats() -> None:
    identity = X25519Identity.generate()
    out = io.BytesIO()
    data = os.urandom(CHUNK_SIZE * 2 + 28)
    with AgeWriter(out, [identity.recipient()]) as writer:
        writer.write(memoryview(data)[:10])
        writer.write(bytearray(data[10:20]))
        writer.write(memoryview(data[20:]).cast("Q"))
    assert unseal(out.getvalue(), [identity]) == data


def test_multiple_recipients_each_open() -> None:
    ids = [X25519Identity.generate() for _ in range(3)]
    data = os.urandom(70_000)
    blob = seal(data, [i.recipient() for i in ids])
    for identity in ids:
        assert unseal(blob, [identity]) == data
    assert unseal(blob, [X25519Identity.generate(), ids[2]]) == data


def test_wrong_identity_is_no_match() -> None:
    blob = seal(b"secret", [X25519Identity.generate().recipient()])
    with pytest.raises(NoMatchingIdentity, match="X25519"):
        unseal(blob, [X25519Identity.generate()])


def test_writer_does_not_close_dst_and_close_is_idempotent() -> None:
    identity = X25519Identity.generate()
    out = io.BytesIO()
    writer = AgeWriter(out, [identity.recipient()])
    writer.write(b"abc")
    writer.close()
    writer.close()
    assert not out.closed
    assert unseal(out.getvalue(), [identity]) == b"abc"
    with pytest.raises(ValueError):
        writer.write(b"more")


@pytest.mark.parametrize("background", [False, True], ids=["inline", "background"])
@pytest.mark.parametrize("size", [0, 10, CHUNK_SIZE, 3 * CHUNK_SIZE + 1, 40 * CHUNK_SIZE])
def test_writer_aborted_in_with_block_is_not_decryptable(size: int, background: bool) -> None:
    identity = X25519Identity.generate()
    out = io.BytesIO()
    recipients = [identity.recipient()]
    with pytest.raises(RuntimeError), AgeWriter(out, recipients, background=background) as writer:
        writer.write(os.urandom(size))
        raise RuntimeError("source failed")
    with pytest.raises(AgeFormatError) as info:
        unseal(out.getvalue(), [identity])
    assert info.value.kind == "payload"


class FailingSink:
    """Accepts `limit` bytes, then fails like a full disk."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.data = bytearray()

    def write(self, data: memoryview) -> int:
        if len(self.data) + len(data) > self.limit:
            raise OSError(28, "No space left on device")
        self.data += data
        return len(data)


@pytest.mark.parametrize("background", [False, True], ids=["inline", "background"])
def test_sink_error_reaches_the_caller(background: bool) -> None:
    identity = X25519Identity.generate()
    sink = FailingSink(3 << 20)
    recipients = [identity.recipient()]
    with (
        pytest.raises(OSError, match="No space"),
        AgeWriter(sink, recipients, background=background) as writer,
    ):
        for _ in range(20):
            writer.write(os.urandom(1 << 20))
    with pytest.raises(AgeFormatError):
        unseal(bytes(sink.data), [identity])


def test_background_writer_copies_caller_buffer() -> None:
    """The caller may reuse its buffer as soon as write() returns."""
    identity = X25519Identity.generate()
    out = io.BytesIO()
    buffer = bytearray(300_000)
    expected = bytearray()
    with AgeWriter(out, [identity.recipient()], background=True) as writer:
        for i in range(40):
            buffer[:] = bytes([i]) * len(buffer)
            writer.write(buffer)
            expected += buffer
    assert unseal(out.getvalue(), [identity]) == bytes(expected)


def test_truncation_at_many_positions_fails() -> None:
    identity = X25519Identity.generate()
    data = os.urandom(3 * CHUNK_SIZE + 100)
    blob = seal(data, [identity.recipient()])
    start = payload_offset(blob)
    cuts = set(range(0, start + 40, 7)) | {start - 1, start, start + 1, start + ENC - 1}
    cuts |= {start + ENC, start + ENC + 1, start + 2 * ENC, start + 3 * ENC, len(blob) - 1}
    cuts |= set(random.Random(1).sample(range(start, len(blob)), 40))
    for cut in sorted(cuts):
        with pytest.raises((AgeFormatError, NoMatchingIdentity)) as info:
            unseal(blob[:cut], [identity])
        if cut >= start:
            assert isinstance(info.value, AgeFormatError) and info.value.kind == "payload", cut
        elif cut < blob.index(b"\n---"):
            assert isinstance(info.value, AgeFormatError) and info.value.kind == "header", cut


def test_truncated_payload_gives_no_unauthenticated_bytes() -> None:
    """Everything returned before the error belongs to authenticated chunks."""
    identity = X25519Identity.generate()
    data = os.urandom(5 * CHUNK_SIZE)
    blob = seal(data, [identity.recipient()])
    cut = payload_offset(blob) + 2 * ENC + 500
    reader = AgeReader(io.BytesIO(blob[:cut]), [identity])
    got = bytearray()
    with pytest.raises(AgeFormatError):
        while part := reader.read(1000):
            got += part
    assert len(got) <= 2 * CHUNK_SIZE
    assert bytes(got) == data[: len(got)]


def test_flipped_bytes_anywhere_fail() -> None:
    identity = X25519Identity.generate()
    data = os.urandom(2 * CHUNK_SIZE + 10)
    blob = seal(data, [identity.recipient()])
    start = payload_offset(blob)
    positions = set(range(0, start)) | set(random.Random(2).sample(range(start, len(blob)), 60))
    positions |= {len(blob) - 1, start + ENC - 1, start + ENC}
    for pos in sorted(positions):
        bad = bytearray(blob)
        bad[pos] ^= 0x01
        with pytest.raises((BundleCorrupt, NoMatchingIdentity)) as info:
            unseal(bytes(bad), [identity])
        if pos >= start:
            assert isinstance(info.value, AgeFormatError) and info.value.kind == "payload"


def test_nonce_flip_is_payload_failure_and_mac_flip_is_hmac_failure() -> None:
    identity = X25519Identity.generate()
    blob = seal(b"hello", [identity.recipient()])
    start = payload_offset(blob)
    bad = bytearray(blob)
    bad[start - 1] ^= 0x80  # last nonce byte
    with pytest.raises(AgeFormatError) as info:
        unseal(bytes(bad), [identity])
    assert info.value.kind == "payload"
    mac_line = blob.index(b"\n---") + 5
    bad = bytearray(blob)
    bad[mac_line + 3] = ord("A") if bad[mac_line + 3] != ord("A") else ord("B")
    with pytest.raises(AgeFormatError) as info:
        unseal(bytes(bad), [identity])
    assert info.value.kind in ("hmac", "header")


def test_trailing_data_after_final_chunk_fails() -> None:
    identity = X25519Identity.generate()
    for size in (10, CHUNK_SIZE):
        blob = seal(os.urandom(size), [identity.recipient()])
        with pytest.raises(AgeFormatError, match=r"trailing|authentication") as info:
            unseal(blob + b"x" * 20, [identity])
        assert info.value.kind == "payload"
        with pytest.raises(AgeFormatError) as info:
            unseal(blob + blob[-(size + 16) :], [identity])
        assert info.value.kind == "payload"


def test_not_an_age_file() -> None:
    for blob in (b"", b"hello\n", b"age-encryption.org/v2\n-> X\n\n--- AAAA\n"):
        with pytest.raises(AgeFormatError) as info:
            unseal(blob, [X25519Identity.generate()])
        assert info.value.kind == "header"


def test_reader_errors_name_the_file(tmp_path: os.PathLike[str]) -> None:
    identity = X25519Identity.generate()
    path = os.path.join(tmp_path, "vol.tar.age")
    with open(path, "wb") as fh:
        fh.write(seal(b"x" * 100, [identity.recipient()])[:-3])
    with open(path, "rb") as fh, pytest.raises(AgeFormatError, match=r"vol\.tar\.age"):
        AgeReader(fh, [identity]).read()


# --- keys ----------------------------------------------------------------------------------


def test_identity_text_round_trip() -> None:
    identity = X25519Identity.generate()
    text = str(identity)
    assert text.startswith("AGE-SECRET-KEY-1") and text.upper() == text
    (parsed,) = parse_identities(f"# created: now\n\n{text}\n".encode(), "key.txt")
    assert isinstance(parsed, X25519Identity)
    assert str(parsed.recipient()) == str(identity.recipient())
    assert str(identity) not in repr(identity)


def test_recipient_text_round_trip() -> None:
    recipient = X25519Identity.generate().recipient()
    text = str(recipient)
    assert text.startswith("age1") and len(text) == 62
    assert parse_recipient(text) == recipient
    assert parse_recipient(f"  {text}\n") == recipient


@pytest.mark.parametrize(
    "text",
    [
        "",
        "age1",
        "age1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqar9jk6",  # wrong length
        "AGE1ACGDVQAAH38V7JXAFYU6JS2NMKHJMTQQ3N5GFUWLX2MW9Q9XRAZQQE0E9n",  # mixed case
        "age1acgdvqaah38v7jxafyu6js2nmkhjmtqq3n5gfuwlx2mw9q9xrazqqe0e9m",  # checksum
        "ssh-ed25519 AAAAnotbase64!",
        "ssh-dss AAAAB3NzaC1kc3MAAACBAP",
        "pgp:ABCDEF",
    ],
)
def test_bad_recipients(text: str) -> None:
    with pytest.raises(KeyFormatError) as info:
        parse_recipient(text)
    assert repr(text.strip()[:20])[1:-1] in str(info.value)


def test_known_recipient_from_age_keygen_vector() -> None:
    # From the CCTV x25519 vector: identity and its recipient must agree with age's bech32.
    identity_text = "AGE-SECRET-KEY-1EGTZVFFV20835NWYV6270LXYVK2VKNX2MMDKWYKLMGR48UAWX40Q2P2LM0"
    (identity,) = parse_identities(identity_text.encode(), "vector")
    assert str(identity) == identity_text
    assert isinstance(identity, X25519Identity)
    assert isinstance(parse_recipient(str(identity.recipient())), X25519Recipient)


def test_bech32_rejects_bad_padding_and_round_trips() -> None:
    data = bytes(range(32))
    text = bech32_encode("age", data)
    assert bech32_decode(text) == ("age", data)
    assert bech32_decode(text.upper()) == ("age", data)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "no identity"),
        (b"# only a comment\n", "no identity"),
        (b"AGE-SECRET-KEY-1XYZ\n", "malformed"),
        (b"AGE-PLUGIN-YUBIKEY-1ABC\n", "plugin"),
        (b"age1acgdvqaah38v7jxafyu6js2nmkhjmtqq3n5gfuwlx2mw9q9xrazqqe0e9n\n", "public key"),
        (b"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA== me\n", "public key"),
        (b"\xff\xfe", "UTF-8"),
        (b"-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n", "SSH"),
    ],
)
def test_bad_identity_files(data: bytes, message: str) -> None:
    with pytest.raises(KeyFormatError, match=message) as info:
        parse_identities(data, "keys/client.txt")
    assert "keys/client.txt" in str(info.value)


def test_load_identities_missing_file(tmp_path: os.PathLike[str]) -> None:
    from pathlib import Path

    path = Path(tmp_path) / "nope.txt"
    with pytest.raises(KeyFormatError, match=r"nope\.txt"):
        load_identities(path)


# --- scrypt and armor ----------------------------------------------------------------------


def test_scrypt_round_trip_and_wrong_passphrase() -> None:
    data = os.urandom(70_000)
    blob = seal(data, [ScryptRecipient("correct horse", work_factor=10)])
    assert unseal(blob, [ScryptIdentity("correct horse")]) == data
    with pytest.raises(NoMatchingIdentity):
        unseal(blob, [ScryptIdentity("battery staple")])
    with pytest.raises(AgeFormatError, match="above the limit") as info:
        unseal(blob, [ScryptIdentity("correct horse", max_work_factor=9)])
    assert info.value.kind == "header"
    assert "correct horse" not in str(ScryptRecipient("correct horse", 10))


def test_scrypt_must_be_alone() -> None:
    with pytest.raises(KeyFormatError, match="only recipient"):
        AgeWriter(io.BytesIO(), [ScryptRecipient("pw", 10), X25519Identity.generate().recipient()])


def armor(blob: bytes, eol: str = "\n") -> bytes:
    text = base64.b64encode(blob).decode()
    lines = [text[i : i + 64] for i in range(0, len(text), 64)]
    body = eol.join(
        ["-----BEGIN AGE ENCRYPTED FILE-----", *lines, "-----END AGE ENCRYPTED FILE-----"]
    )
    return (body + eol).encode()


@pytest.mark.parametrize("size", [0, 47, 48, 1000, CHUNK_SIZE + 1])
@pytest.mark.parametrize("eol", ["\n", "\r\n"])
def test_armored_round_trip(size: int, eol: str) -> None:
    identity = X25519Identity.generate()
    data = os.urandom(size)
    armored = armor(seal(data, [identity.recipient()]), eol)
    with AgeReader(ArmoredReader(io.BytesIO(b"\n  \n" + armored + b"\n")), [identity]) as r:
        assert r.read() == data


@pytest.mark.parametrize(
    ("mutate", "kind"),
    [
        (lambda a: a.replace(b"-----END AGE ENCRYPTED FILE-----\n", b""), "armor"),
        (lambda a: a + b"garbage\n", "armor"),
        (lambda a: b"x" + a, "armor"),
        (lambda a: a.replace(b"BEGIN AGE", b"BEGIN PGP"), "armor"),
        (lambda a: a.replace(b"\n", b"\n\n", 2), "armor"),
    ],
)
def test_armor_failures(mutate: object, kind: str) -> None:
    identity = X25519Identity.generate()
    armored = armor(seal(os.urandom(5000), [identity.recipient()]))
    bad = mutate(armored)  # type: ignore[operator]
    with (
        pytest.raises(AgeFormatError) as info,
        AgeReader(ArmoredReader(io.BytesIO(bad)), [identity]) as reader,
    ):
        reader.read()
    assert info.value.kind == kind


def test_readinto_failure_leaves_no_unauthenticated_bytes_in_callers_buffer() -> None:
    identity = X25519Identity.generate()
    data = b"\x11" * (4 * CHUNK_SIZE)
    blob = bytearray(seal(data, [identity.recipient()]))
    blob[payload_offset(bytes(blob)) + ENC + 10] ^= 0xFF  # inside chunk 1
    reader = AgeReader(io.BytesIO(bytes(blob)), [identity])
    buffer = bytearray(4 * CHUNK_SIZE)
    with pytest.raises(AgeFormatError) as info:
        reader.readinto(buffer)
    assert info.value.kind == "payload" and "chunk 1" in str(info.value)
    assert buffer[CHUNK_SIZE : 2 * CHUNK_SIZE] == bytes(CHUNK_SIZE)


# --- SSH keys as recipients and identities (keys made by cryptography; the CLI tests are in
# --- tests/integration/test_age_interop.py) ---------------------------------------------------


PrivateKey = ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey


def _openssh(private: PrivateKey, password: bytes = b"") -> bytes:
    encryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    return private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, encryption
    )


def _public_line(private: PrivateKey) -> str:
    line = private.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    return line.decode() + " ops@provider"


@pytest.fixture(scope="module")
def ssh_keys() -> dict[str, PrivateKey]:
    return {
        "ssh-ed25519": ed25519.Ed25519PrivateKey.generate(),
        "ssh-rsa": rsa.generate_private_key(public_exponent=65537, key_size=2048),
    }


@pytest.mark.parametrize("kind", ["ssh-ed25519", "ssh-rsa"])
def test_ssh_round_trip(kind: str, ssh_keys: dict[str, PrivateKey]) -> None:
    private = ssh_keys[kind]
    recipient = parse_recipient(_public_line(private))
    assert str(recipient) == _public_line(private)
    assert parse_recipient(str(recipient)) == recipient
    (identity,) = parse_identities(_openssh(private), "id_key")
    data = os.urandom(CHUNK_SIZE + 5)
    blob = seal(data, [recipient])
    assert f"-> {kind} ".encode() in blob
    assert unseal(blob, [identity]) == data
    other = X25519Identity.generate()
    with pytest.raises(NoMatchingIdentity):
        unseal(blob, [other])


def test_ssh_ed25519_conversion_matches_private_side(
    ssh_keys: dict[str, PrivateKey],
) -> None:
    private = ssh_keys["ssh-ed25519"]
    (identity,) = parse_identities(_openssh(private), "id_ed25519")
    assert isinstance(identity, SshEd25519Identity)
    assert (
        str(identity.recipient()) == str(parse_recipient(_public_line(private))).rsplit(" ", 1)[0]
    )


def test_encrypted_openssh_key_is_a_clear_error(
    ssh_keys: dict[str, PrivateKey],
) -> None:
    try:
        data = _openssh(ssh_keys["ssh-ed25519"], b"secret")
    except Exception as exc:  # bcrypt missing: cryptography cannot encrypt OpenSSH keys
        pytest.fail(f"cannot make an encrypted key for the test: {exc}")
    with pytest.raises(KeyFormatError, match="passphrase") as info:
        parse_identities(data, "keys/id_ed25519")
    assert "keys/id_ed25519" in str(info.value)


def test_small_rsa_keys_are_refused() -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(KeyFormatError, match="2048"):
        parse_recipient(_public_line(small))
    with pytest.raises(KeyFormatError, match="2048"):
        parse_identities(_openssh(small), "id_rsa")


def test_ssh_recipient_equality_ignores_comments(ssh_keys: dict[str, PrivateKey]) -> None:
    line = _public_line(ssh_keys["ssh-ed25519"])
    with_comment = parse_recipient(line)
    without = parse_recipient(line.rsplit(" ", 1)[0])
    assert with_comment == without and hash(with_comment) == hash(without)
    assert str(with_comment).endswith(" ops@provider") and with_comment.key_text == str(without)
    assert with_comment != parse_recipient(_public_line(ssh_keys["ssh-rsa"]))


def test_reading_on_after_an_early_stop_checks_the_end() -> None:
    identity = X25519Identity.generate()
    data = os.urandom(5 * CHUNK_SIZE)
    blob = seal(data, [identity.recipient()])
    reader = AgeReader(io.BytesIO(blob), [identity])
    assert reader.read(100) == data[:100]
    assert len(reader.read()) == len(data) - 100
    assert reader.read(10) == b""
    big = seal(os.urandom(40 * CHUNK_SIZE), [identity.recipient()])
    truncated = AgeReader(io.BytesIO(big[: -(CHUNK_SIZE + 16)]), [identity])
    assert len(truncated.read(100)) == 100  # the first batch of 16 chunks is fine
    with pytest.raises(AgeFormatError, match="final chunk missing after chunk 38"):
        truncated.read()


class NullSink:
    def write(self, data: memoryview) -> int:
        return len(data)


def test_memory_stays_bounded_on_a_large_stream() -> None:
    """64 MiB through the writer and the reader: peak Python allocations stay a few MiB."""
    identity = X25519Identity.generate()
    block = os.urandom(1 << 20)
    sealed = io.BytesIO()
    tracemalloc.start()
    try:
        with AgeWriter(NullSink(), [identity.recipient()]) as writer:
            for _ in range(64):
                writer.write(block)
        _, writer_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    with AgeWriter(sealed, [identity.recipient()]) as writer:
        for _ in range(16):
            writer.write(block)
    sealed.seek(0)
    tracemalloc.start()
    try:
        reader = AgeReader(sealed, [identity])
        buffer = bytearray(1 << 20)
        total = 0
        while n := reader.readinto(buffer):
            total += n
        _, reader_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total == 16 << 20
    assert writer_peak < 4 << 20, writer_peak
    assert reader_peak < 4 << 20, reader_peak


# --- post-quantum hybrid (checked against the CCTV vectors in test_age_vectors.py) ---------


def test_post_quantum_round_trip_and_texts() -> None:
    identity = MLKEM768X25519Identity.generate()
    recipient = identity.recipient()
    text = str(recipient)
    assert text.startswith("age1pq1") and len(text) == 1959
    assert parse_recipient(text) == recipient
    (parsed,) = parse_identities(f"{identity}\n".encode(), "pq.key")
    assert str(parsed).startswith("AGE-SECRET-KEY-PQ-1") and str(parsed) == str(identity)
    data = os.urandom(CHUNK_SIZE + 3)
    other = MLKEM768X25519Identity.generate()
    blob = seal(data, [recipient, other.recipient()])
    assert b"-> mlkem768x25519 " in blob
    assert unseal(blob, [parsed]) == data
    assert unseal(blob, [other]) == data
    with pytest.raises(NoMatchingIdentity):
        unseal(blob, [MLKEM768X25519Identity.generate(), X25519Identity.generate()])


def test_post_quantum_and_classic_recipients_are_not_mixed() -> None:
    """A usage error (exit 2), refused before anything is written."""
    pq = MLKEM768X25519Identity.generate().recipient()
    out = io.BytesIO()
    with pytest.raises(KeyFormatError, match="cannot be mixed"):
        AgeWriter(out, [pq, X25519Identity.generate().recipient()])
    assert out.getvalue() == b""
    with pytest.raises(KeyFormatError, match="no recipient"):
        AgeWriter(out, [])


def test_post_quantum_recipients_warn_that_the_client_needs_age_1_3(
    ssh_keys: dict[str, PrivateKey],
) -> None:
    pq = MLKEM768X25519Identity.generate().recipient()
    (warning,) = client_requirements([pq])
    assert "1.3.0" in warning and "1.1.1" in warning
    assert str(pq)[:30] in warning and len(warning) < 200  # names the key, shortened
    classic = [
        X25519Identity.generate().recipient(),
        parse_recipient(_public_line(ssh_keys["ssh-ed25519"])),
        parse_recipient(_public_line(ssh_keys["ssh-rsa"])),
        ScryptRecipient("passphrase"),
    ]
    assert client_requirements(classic) == []
