"""Interop with the real tools: Debian's `age`, pyrage (rage), and `ssh-keygen -Y`.

A client opens a bundle with `age -d -i KEY` and checks its signature with
`ssh-keygen -Y verify`: these tests run exactly those commands on what
handover writes, and read with handover what those tools write, for X25519,
ssh-ed25519 and ssh-rsa keys made by `age-keygen` and `ssh-keygen`.
"""

from __future__ import annotations

import io
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pyrage
import pytest

from handover.bundle.age import (
    CHUNK_SIZE,
    AgeReader,
    AgeWriter,
    ArmoredReader,
    Identity,
    Recipient,
    ScryptIdentity,
    ScryptRecipient,
    load_identities,
    parse_recipient,
)
from handover.bundle.sshsig import SigningKey, sign, verify
from handover.errors import BundleCorrupt, KeyFormatError, NoMatchingIdentity
from tests.conftest import require_binary

pytestmark = pytest.mark.integration

KINDS = ["x25519", "ssh-ed25519", "ssh-rsa"]
SIZES = [0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 5 * 1024 * 1024 + 3]
NS = "handover-bundle"


@dataclass
class Key:
    kind: str
    private_path: Path  # what `age -d -i` and pyrage read
    recipient_text: str  # age1... or the .pub line (with comment)

    def recipient(self) -> Recipient:
        return parse_recipient(self.recipient_text)

    def identities(self) -> list[Identity]:
        return load_identities(self.private_path)

    def pyrage_identity(self) -> object:
        if self.kind == "x25519":
            lines = self.private_path.read_text().splitlines()
            secret = next(line for line in lines if line.startswith("AGE-SECRET-KEY-"))
            return pyrage.x25519.Identity.from_str(secret)
        return pyrage.ssh.Identity.from_buffer(self.private_path.read_bytes())

    def pyrage_recipient(self) -> object:
        if self.kind == "x25519":
            return pyrage.x25519.Recipient.from_str(self.recipient_text)
        return pyrage.ssh.Recipient.from_str(self.recipient_text)

    def age_recipient_args(self, tmp: Path) -> list[str]:
        if self.kind == "x25519":
            return ["-r", self.recipient_text]
        pub = tmp / f"{self.kind}.pub"
        pub.write_text(self.recipient_text + "\n")
        return ["-R", str(pub)]


def run(args: list[str], data: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(args, input=data, capture_output=True, timeout=120, check=False)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Key]:
    """One key of each kind, made by the standard tools."""
    age_keygen = require_binary("age-keygen", "age")
    ssh_keygen = require_binary("ssh-keygen", "openssh-client")
    folder = tmp_path_factory.mktemp("keys")
    x_path = folder / "key.txt"
    result = run([age_keygen, "-o", str(x_path)])
    assert result.returncode == 0, result.stderr
    x_recipient = next(
        line.split(": ", 1)[1]
        for line in x_path.read_text().splitlines()
        if line.startswith("# public key: ")
    )
    out = {"x25519": Key("x25519", x_path, x_recipient)}
    for kind, args in (
        ("ssh-ed25519", ["-t", "ed25519"]),
        ("ssh-rsa", ["-t", "rsa", "-b", "3072"]),
    ):
        path = folder / f"id_{kind}"
        result = run([ssh_keygen, *args, "-N", "", "-C", "client@example", "-q", "-f", str(path)])
        assert result.returncode == 0, result.stderr
        out[kind] = Key(kind, path, Path(f"{path}.pub").read_text().strip())
    return out


def seal(data: bytes, recipients: list[Recipient]) -> bytes:
    out = io.BytesIO()
    with AgeWriter(out, recipients) as writer:
        for i in range(0, len(data), 300_000):
            writer.write(data[i : i + 300_000])
    return out.getvalue()


def unseal(blob: bytes, identities: list[Identity]) -> bytes:
    with AgeReader(io.BytesIO(blob), identities) as reader:
        return reader.read()


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("kind", KINDS)
def test_handover_to_age_cli_and_pyrage(keys: dict[str, Key], kind: str, size: int) -> None:
    age = require_binary("age", "age")
    key = keys[kind]
    data = os.urandom(size)
    blob = seal(data, [key.recipient()])
    result = run([age, "-d", "-i", str(key.private_path)], blob)
    assert result.returncode == 0, result.stderr
    assert result.stdout == data
    assert pyrage.decrypt(blob, [key.pyrage_identity()]) == data


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("kind", KINDS)
def test_age_cli_and_pyrage_to_handover(
    keys: dict[str, Key], kind: str, size: int, tmp_path: Path
) -> None:
    age = require_binary("age", "age")
    key = keys[kind]
    data = os.urandom(size)
    result = run([age, *key.age_recipient_args(tmp_path)], data)
    assert result.returncode == 0, result.stderr
    assert unseal(result.stdout, key.identities()) == data
    blob = pyrage.encrypt(data, [key.pyrage_recipient()])
    assert unseal(blob, key.identities()) == data


def test_multiple_recipients_both_ways(keys: dict[str, Key], tmp_path: Path) -> None:
    age = require_binary("age", "age")
    data = os.urandom(3 * CHUNK_SIZE + 11)
    blob = seal(data, [k.recipient() for k in keys.values()])
    for key in keys.values():
        result = run([age, "-d", "-i", str(key.private_path)], blob)
        assert result.returncode == 0, (key.kind, result.stderr)
        assert result.stdout == data
        assert pyrage.decrypt(blob, [key.pyrage_identity()]) == data
    args = [a for k in keys.values() for a in k.age_recipient_args(tmp_path)]
    result = run([age, *args], data)
    assert result.returncode == 0, result.stderr
    for key in keys.values():
        assert unseal(result.stdout, key.identities()) == data


def test_pem_rsa_key_from_ssh_keygen(tmp_path: Path) -> None:
    """`ssh-keygen -m PEM` writes `BEGIN RSA PRIVATE KEY`: age reads it, so must we."""
    age = require_binary("age", "age")
    ssh_keygen = require_binary("ssh-keygen", "openssh-client")
    path = tmp_path / "id_rsa_pem"
    result = run(
        [ssh_keygen, "-t", "rsa", "-b", "2048", "-m", "PEM", "-N", "", "-q", "-f", str(path)]
    )
    assert result.returncode == 0, result.stderr
    assert path.read_bytes().startswith(b"-----BEGIN RSA PRIVATE KEY-----")
    recipient = parse_recipient(Path(f"{path}.pub").read_text())
    blob = seal(b"pem key data", [recipient])
    assert unseal(blob, load_identities(path)) == b"pem key data"
    result = run([age, "-d", "-i", str(path)], blob)
    assert result.returncode == 0 and result.stdout == b"pem key data", result.stderr


def test_passphrase_protected_ssh_key_is_a_clear_error(tmp_path: Path) -> None:
    ssh_keygen = require_binary("ssh-keygen", "openssh-client")
    path = tmp_path / "id_locked"
    result = run([ssh_keygen, "-t", "ed25519", "-N", "s3cret-pass", "-q", "-f", str(path)])
    assert result.returncode == 0, result.stderr
    with pytest.raises(KeyFormatError, match="passphrase") as info:
        load_identities(path)
    assert str(path) in str(info.value) and "s3cret-pass" not in str(info.value)


def test_wrong_key_is_refused_by_both_sides(keys: dict[str, Key]) -> None:
    age = require_binary("age", "age")
    blob = seal(b"client data", [keys["ssh-ed25519"].recipient()])
    result = run([age, "-d", "-i", str(keys["x25519"].private_path)], blob)
    assert result.returncode != 0
    with pytest.raises(NoMatchingIdentity):
        unseal(blob, keys["ssh-rsa"].identities() + keys["x25519"].identities())


def test_file_streams_on_disk(keys: dict[str, Key], tmp_path: Path) -> None:
    """Writer to a real file and age CLI output to a file, read back through open files."""
    age = require_binary("age", "age")
    data = os.urandom(2 * 1024 * 1024 + 77)
    plain = tmp_path / "plain.bin"
    plain.write_bytes(data)
    sealed = tmp_path / "out.age"
    recipients = [keys["x25519"].recipient()]
    with sealed.open("wb") as dst, AgeWriter(dst, recipients) as writer, plain.open("rb") as src:
        while chunk := src.read(1 << 20):
            writer.write(chunk)
    back = tmp_path / "back.bin"
    result = run([age, "-d", "-i", str(keys["x25519"].private_path), "-o", str(back), str(sealed)])
    assert result.returncode == 0, result.stderr
    assert back.read_bytes() == data
    with sealed.open("rb") as src, AgeReader(src, keys["x25519"].identities()) as reader:
        assert reader.name == str(sealed)
        assert reader.read() == data


def test_truncated_file_is_refused_by_age_cli_too(keys: dict[str, Key]) -> None:
    """An aborted writer leaves a file that `age -d` rejects as well."""
    age = require_binary("age", "age")
    out = io.BytesIO()
    with pytest.raises(OSError), AgeWriter(out, [keys["x25519"].recipient()]) as writer:
        writer.write(os.urandom(3 * CHUNK_SIZE))
        raise OSError("source disappeared")
    result = run([age, "-d", "-i", str(keys["x25519"].private_path)], out.getvalue())
    assert result.returncode != 0


# --- SSH signatures ------------------------------------------------------------------------


@pytest.fixture
def signer(tmp_path: Path) -> tuple[SigningKey, Path]:
    key = SigningKey.generate()
    path = tmp_path / "provider-signing"
    path.write_bytes(key.private_openssh())
    path.chmod(0o600)
    return key, path


def ssh_verify(
    tmp_path: Path, public_line: str, data: bytes, signature: str, namespace: str = NS
) -> subprocess.CompletedProcess[bytes]:
    ssh_keygen = require_binary("ssh-keygen", "openssh-client")
    allowed = tmp_path / "allowed_signers"
    allowed.write_text(f"provider {public_line}\n")
    sig = tmp_path / "data.sig"
    sig.write_text(signature)
    args = [ssh_keygen, "-Y", "verify", "-f", str(allowed), "-I", "provider", "-n", namespace]
    return run([*args, "-s", str(sig)], data)


def test_our_signature_verifies_with_ssh_keygen(
    signer: tuple[SigningKey, Path], tmp_path: Path
) -> None:
    key, _ = signer
    data = b"abc  volumes/0001-web01-www.tar.age\n" * 50
    signature = sign(data, key, NS)
    result = ssh_verify(tmp_path, key.public_line(), data, signature)
    assert result.returncode == 0, result.stderr
    assert b"Good" in result.stdout
    assert ssh_verify(tmp_path, key.public_line(), data + b"x", signature).returncode != 0
    assert ssh_verify(tmp_path, key.public_line(), data, signature, "file").returncode != 0
    other = SigningKey.generate()
    assert ssh_verify(tmp_path, other.public_line(), data, signature).returncode != 0


def test_ssh_keygen_signature_verifies_with_ours(
    signer: tuple[SigningKey, Path], tmp_path: Path
) -> None:
    ssh_keygen = require_binary("ssh-keygen", "openssh-client")
    key, path = signer
    data = os.urandom(100_000)
    message = tmp_path / "SHA256SUMS"
    message.write_bytes(data)
    result = run([ssh_keygen, "-Y", "sign", "-f", str(path), "-n", NS, str(message)])
    assert result.returncode == 0, result.stderr
    signature = Path(f"{message}.sig").read_text()
    verify(data, signature, key.public_line(), NS)
    with pytest.raises(BundleCorrupt, match="namespace"):
        verify(data, signature, key.public_line(), "other-namespace")
    with pytest.raises(BundleCorrupt, match="another key"):
        verify(data, signature, SigningKey.generate().public_line(), NS)
    with pytest.raises(BundleCorrupt, match="does not match"):
        verify(data[:-1] + bytes([data[-1] ^ 1]), signature, key.public_line(), NS)


def test_allowed_signers_line_works_with_ssh_keygen(tmp_path: Path) -> None:
    ssh_keygen = require_binary("ssh-keygen", "openssh-client")
    key = SigningKey.generate()
    data = b"sums\n"
    allowed = tmp_path / "allowed_signers"
    allowed.write_text(f'provider namespaces="{NS}" {key.public_line("")}\n')
    (tmp_path / "sig").write_text(sign(data, key, NS))
    args = [ssh_keygen, "-Y", "verify", "-f", str(allowed), "-I", "provider", "-s"]
    assert run([*args, str(tmp_path / "sig"), "-n", NS], data).returncode == 0
    (tmp_path / "sig").write_text(sign(data, key, "file"))
    assert run([*args, str(tmp_path / "sig"), "-n", "file"], data).returncode != 0


def test_ssh_keygen_made_ed25519_key_loads_and_signs(tmp_path: Path) -> None:
    ssh_keygen = require_binary("ssh-keygen", "openssh-client")
    path = tmp_path / "id_ed25519"
    result = run([ssh_keygen, "-t", "ed25519", "-N", "", "-q", "-f", str(path)])
    assert result.returncode == 0, result.stderr
    key = SigningKey.load(path)
    pub_fields = Path(f"{path}.pub").read_text().split()
    assert key.public_line().split()[:2] == pub_fields[:2]
    data = b"signed by a key ssh-keygen made\n"
    assert ssh_verify(tmp_path, key.public_line(), data, sign(data, key, NS)).returncode == 0


def test_ssh_keygen_rsa_signature_verifies_with_ours(tmp_path: Path) -> None:
    ssh_keygen = require_binary("ssh-keygen", "openssh-client")
    path = tmp_path / "id_rsa"
    assert (
        run([ssh_keygen, "-t", "rsa", "-b", "3072", "-N", "", "-q", "-f", str(path)]).returncode
        == 0
    )
    message = tmp_path / "m"
    message.write_bytes(b"rsa signed\n")
    result = run([ssh_keygen, "-Y", "sign", "-f", str(path), "-n", NS, str(message)])
    assert result.returncode == 0, result.stderr
    public_line = Path(f"{path}.pub").read_text()
    verify(b"rsa signed\n", Path(f"{message}.sig").read_text(), public_line, NS)
    with pytest.raises(BundleCorrupt):
        verify(b"rsa signed!\n", Path(f"{message}.sig").read_text(), public_line, NS)


# --- armor and passphrases -----------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 100, CHUNK_SIZE + 1])
def test_armored_output_of_age_and_pyrage_reads_back(
    keys: dict[str, Key], tmp_path: Path, size: int
) -> None:
    age = require_binary("age", "age")
    key = keys["ssh-ed25519"]
    data = os.urandom(size)
    result = run([age, "-a", *key.age_recipient_args(tmp_path)], data)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(b"-----BEGIN AGE ENCRYPTED FILE-----")
    for armored in (result.stdout, pyrage.encrypt(data, [key.pyrage_recipient()], armored=True)):
        with AgeReader(ArmoredReader(io.BytesIO(armored)), key.identities()) as reader:
            assert reader.read() == data


def test_passphrase_files_with_pyrage_both_ways() -> None:
    data = os.urandom(CHUNK_SIZE * 2 + 9)
    blob = seal(data, [ScryptRecipient("hunter2 hunter2", work_factor=12)])
    assert pyrage.passphrase.decrypt(blob, "hunter2 hunter2") == data
    with pytest.raises(NoMatchingIdentity):
        unseal(blob, [ScryptIdentity("wrong")])
    theirs = pyrage.passphrase.encrypt(data, "hunter2 hunter2")  # work factor 18: ~1 s
    assert unseal(theirs, [ScryptIdentity("hunter2 hunter2")]) == data
