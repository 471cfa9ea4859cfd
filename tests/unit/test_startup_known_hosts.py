"""known_hosts read without paramiko (issue 16: `handover seal ssh://` starts `ssh` sooner).

`sshkeys.known_hosts_keys` decides only plain files, and then must give
exactly the keys paramiko's `HostKeys` (the reference, `known_hosts.known_keys`)
would check the host against: the first line of each type naming the host,
literally or hashed. Anything else is None, and `openssh.pinned_host_keys`
asks paramiko. Each case here is compared with paramiko's own reading.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import os
import tempfile
from pathlib import Path

import paramiko
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from handover.connectors.ssh.known_hosts import known_keys
from handover.connectors.ssh.openssh import PinnedHostKey, pinned_host_keys
from handover.sshkeys import known_hosts_keys


def _public(key: ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> str:
    raw = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    return raw.decode("ascii")


ED = [_public(ed25519.Ed25519PrivateKey.generate()) for _ in range(2)]
EC256 = _public(ec.generate_private_key(ec.SECP256R1()))
EC384 = _public(ec.generate_private_key(ec.SECP384R1()))
EC521 = _public(ec.generate_private_key(ec.SECP521R1()))
RSA = _public(rsa.generate_private_key(public_exponent=65537, key_size=2048))
HOST = "[127.0.0.1]:2222"


def _hashed(name: str, salt: bytes | None = None) -> str:
    salt = salt or os.urandom(20)
    digest = hmac.new(salt, name.encode(), hashlib.sha1).digest()
    return f"|1|{base64.b64encode(salt).decode()}|{base64.b64encode(digest).decode()}"


def _paramiko(text: str, name: str) -> dict[str, str]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "known_hosts"
        path.write_bytes(text.encode())
        found = paramiko.HostKeys(str(path)).lookup(name)
    return {} if found is None else {t: f"{t} {k.get_base64()}" for t, k in dict(found).items()}


def _ours(text: str, name: str) -> dict[str, str] | None:
    found = known_hosts_keys(io.StringIO(text), name)
    if found is None:
        return None
    return {t: " ".join(key.line().split()[:2]) for t, key in found.items()}


PLAIN = [
    f"{HOST} {ED[0]}\n",
    f"# a comment\n\n   \n{HOST} {ED[0]} root@host\n",
    f"other,{HOST} {EC256}\n{HOST} {RSA}\n",
    f"{HOST} {ED[0]}\n{HOST} {ED[1]}\n",  # the first of a type counts
    f"{HOST} {EC256}\n{HOST} {EC384}\n{HOST}\t{EC521}\n{HOST} {ED[1]}\n",
    f"{_hashed(HOST)} {ED[1]}\n{_hashed('other')} {ED[0]}\n",
    f"{_hashed('other')} {ED[0]}\n{_hashed(HOST)},x {RSA}\n",
    f"127.0.0.1 {ED[0]}\n[127.0.0.1]:22 {ED[1]}\n",  # names are literal: neither is HOST
    f"{HOST} {ED[0]}",  # no final newline
    f"{HOST} {ED[0]}\r\n{HOST} {EC256}\r\n",
    f"short line\n{HOST} {ED[0]}\n",  # fewer than 3 fields: skipped by both
]


@pytest.mark.parametrize("text", PLAIN, ids=range(len(PLAIN)))
def test_a_plain_file_gives_exactly_paramikos_keys(text: str) -> None:
    assert _ours(text, HOST) == _paramiko(text, HOST)
    assert _ours(text, "other") in (None, _paramiko(text, "other"))


UNDECIDED = [
    f"{HOST} ssh-ed25519-cert-v01@openssh.com {ED[0].split()[1]}\n",
    f"@cert-authority {HOST} {ED[0]}\n",
    f"@revoked {HOST} {ED[0]}\n",
    f"{HOST}  {ED[0]}\n",  # two spaces: paramiko reads an empty key type
    f"{HOST} ssh-ed25519 {ED[0].split()[1][:-4]}\n",  # truncated blob
    f"{HOST} ssh-ed25519 {EC256.split()[1]}\n",  # another type's blob
    f"{HOST} ssh-ed25519 not*base64\n",
    f"|1|c2hvcnQ=|AAAA {ED[0]}\n",  # salt of the wrong size
    f"other {ED[0]}\n{HOST} sk-ssh-ed25519@openssh.com AAAA\n",
]


@pytest.mark.parametrize("text", UNDECIDED, ids=range(len(UNDECIDED)))
def test_anything_else_is_left_to_paramiko(text: str) -> None:
    assert _ours(text, HOST) is None


def test_pinned_host_keys_reads_without_paramiko_and_falls_back_to_it(tmp_path: Path) -> None:
    path = tmp_path / "known_hosts"
    assert pinned_host_keys(path, "127.0.0.1", 2222) == {}  # no file: nothing pinned
    path.write_text(f"{HOST} {ED[0]}\n{_hashed(HOST)} {RSA}\n")
    expected = {
        kind: PinnedHostKey.from_pkey(key)
        for kind, key in known_keys(path, "127.0.0.1", 2222).items()
    }
    assert pinned_host_keys(path, "127.0.0.1", 2222) == expected
    assert set(expected) == {"ssh-ed25519", "ssh-rsa"}
    kind, body = ED[1].split()
    lenient = f"{body[:20]}*{body[20:]}"  # paramiko's base64 decoding skips the `*`
    path.write_text(f"{HOST} {kind} {lenient}\n")
    assert known_hosts_keys(io.StringIO(path.read_text()), HOST) is None  # paramiko decides
    assert pinned_host_keys(path, "127.0.0.1", 2222) == {"ssh-ed25519": PinnedHostKey(kind, body)}
