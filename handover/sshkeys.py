"""OpenSSH public keys: the one parser and the one `SHA256:` fingerprint of handover.

Public keys reach handover from many places (the playbook's provider keys and
recipients, authorized_keys files on client hosts, the bundle's
`provider.pub`, host keys read by paramiko), and each place shows or compares
fingerprints. They all go through this module, so that a key accepted in one
place is accepted everywhere and a fingerprint printed by handover is the one
`ssh-keygen -l` prints.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import struct
from collections.abc import Iterable
from dataclasses import dataclass

from handover.errors import KeyFormatError, UsageError

SSH_KEY_TYPES: tuple[str, ...] = (
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
)
FINGERPRINT_PREFIX = "SHA256:"
_ED25519_WIRE_SIZE = 4 + len("ssh-ed25519") + 4 + 32
_SHOWN_CHARS = 40


def fingerprint(blob: bytes) -> str:
    """`SHA256:<base64, no padding>` of a key's wire encoding, as `ssh-keygen -l` prints it."""
    digest = hashlib.sha256(blob).digest()
    return FINGERPRINT_PREFIX + base64.b64encode(digest).decode("ascii").rstrip("=")


def shown(line: str) -> str:
    """A key line shortened for an error message (the base64 body is long and says little)."""
    text = line.strip()
    return text if len(text) <= _SHOWN_CHARS else text[:_SHOWN_CHARS] + "..."


@dataclass(frozen=True)
class SshPublicKey:
    """A public key as a `.pub` line holds it: type, wire blob, comment."""

    key_type: str
    blob: bytes
    comment: str = ""

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.blob)

    def line(self, comment: str | None = None) -> str:
        """The `type base64 [comment]` line, with this key's comment unless one is given."""
        text = self.comment if comment is None else comment
        body = f"{self.key_type} {base64.b64encode(self.blob).decode('ascii')}"
        return f"{body} {text}" if text else body

    def problem(self) -> str | None:
        """Why the blob is not a key of `key_type`, or None when it is one."""
        try:
            (length,) = struct.unpack(">I", self.blob[:4])
            inner_type = self.blob[4 : 4 + length].decode("ascii")
        except (struct.error, UnicodeDecodeError):
            return "the key data is not an SSH public key"
        if inner_type != self.key_type:
            return f"the key data is a {inner_type[:_SHOWN_CHARS]!r} key, not {self.key_type!r}"
        if self.key_type == "ssh-ed25519" and len(self.blob) != _ED25519_WIRE_SIZE:
            return "the ssh-ed25519 key data has the wrong length (truncated?)"
        return None


def _decode(key_type: str, body: str, comment: str) -> SshPublicKey | None:
    try:
        blob = base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        return None
    return SshPublicKey(key_type, blob, comment)


def public_key_problem(line: str) -> str | None:
    """Why `line` is not an OpenSSH public key line (`type base64 [comment]`), or None."""
    if "\n" in line.strip() or "\r" in line or "\0" in line:
        return "must be a single line"
    parts = line.strip().split(None, 2)
    if len(parts) < 2:
        return "expected '<type> <base64> [comment]', as in a .pub file"
    key_type = parts[0]
    if key_type not in SSH_KEY_TYPES:
        known = ", ".join(SSH_KEY_TYPES)
        return f"unknown key type {key_type[:_SHOWN_CHARS]!r} (expected one of {known})"
    key = _decode(key_type, parts[1], parts[2].strip() if len(parts) > 2 else "")
    if key is None:
        return "the key data is not valid base64 of an SSH public key"
    return key.problem()


def parse_public_key(line: str, what: str = "public key") -> SshPublicKey:
    """Parse a `.pub` line; raise KeyFormatError naming `what` and the (shortened) line."""
    problem = public_key_problem(line)
    if problem is not None:
        raise KeyFormatError(f"{what} {shown(line)!r}: {problem}")
    key_type, body, *rest = line.strip().split(None, 2)
    key = _decode(key_type, body, rest[0].strip() if rest else "")
    assert key is not None  # public_key_problem decoded it
    return key


def find_public_key(line: str) -> tuple[int, SshPublicKey] | None:
    """Find `type base64` in an authorized_keys line, options allowed before it.

    Returns the index of the type token among the line's whitespace-separated
    tokens and the key (its comment: the tokens after the body), or None when
    the line holds no key of a known type. The blob is not checked against its
    type: lines written by others are read as they are; check with `problem()`.
    """
    tokens = line.split()
    for index, token in enumerate(tokens[:-1]):
        if token in SSH_KEY_TYPES:
            key = _decode(token, tokens[index + 1], " ".join(tokens[index + 2 :]))
            return None if key is None else (index, key)
    return None


def line_fingerprint(line: str) -> str | None:
    """The fingerprint of a public key line, or None when the line holds none (for display)."""
    found = find_public_key(line)
    return None if found is None else found[1].fingerprint


def normalize_fingerprint(value: str) -> str:
    """Accept `SHA256:xxx` or a bare `xxx` (padding optional); reject MD5 and garbage.

    Raises UsageError naming the value: fingerprints come from playbooks and
    from operators confirming a first contact.
    """
    text = value.strip()
    if text.upper().startswith("MD5:") or text.count(":") > 1:
        raise UsageError(f"host key {value!r}: only SHA256 fingerprints are accepted")
    text = text.removeprefix(FINGERPRINT_PREFIX).rstrip("=")
    try:
        raw = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except ValueError as exc:
        raise UsageError(f"host key {value!r}: not a SHA256:<base64> fingerprint") from exc
    if len(raw) != hashlib.sha256().digest_size:
        raise UsageError(f"host key {value!r}: a SHA256 fingerprint has 32 bytes")
    return FINGERPRINT_PREFIX + text


# -- known_hosts -----------------------------------------------------------------------------

#: Host key types `known_hosts_keys` decides on: OpenSSH's plain host keys. A file with a line
#: of any other type (certificates, `@cert-authority` / `@revoked` markers, security keys)
#: is left to paramiko, whose reading stays the reference.
KNOWN_HOSTS_KEY_TYPES: tuple[str, ...] = (
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "ssh-rsa",
)
_ECDSA_POINT_BYTES = {"nistp256": 65, "nistp384": 97, "nistp521": 133}
_HASHED_PREFIX = "|1|"
_SHA1_BYTES = 20


def known_hosts_name(address: str, port: int) -> str:
    """The name a host has in known_hosts: `address` on port 22, else `[address]:port`."""
    return address if port == 22 else f"[{address}]:{port}"


def _wire_strings(blob: bytes) -> list[bytes] | None:
    """The length-prefixed strings a key blob is made of, or None when it is not only those."""
    fields: list[bytes] = []
    offset = 0
    while offset < len(blob):
        if offset + 4 > len(blob):
            return None
        (length,) = struct.unpack_from(">I", blob, offset)
        offset += 4
        if offset + length > len(blob):
            return None
        fields.append(blob[offset : offset + length])
        offset += length
    return fields


def _clean_host_key(key_type: str, blob: bytes) -> bool:
    """Whether `blob` is, field by field, a well-formed public key of `key_type`."""
    fields = _wire_strings(blob)
    if not fields or fields[0] != key_type.encode("ascii"):
        return False
    if key_type == "ssh-ed25519":
        return len(fields) == 2 and len(fields[1]) == 32
    if key_type == "ssh-rsa":  # e, n: positive mpints without a superfluous leading byte
        return len(fields) == 3 and all(
            value and value[0] < 0x80 and not (value[0] == 0 and len(value) > 1 and value[1] < 0x80)
            for value in fields[1:]
        )
    curve = key_type.removeprefix("ecdsa-sha2-")
    return (
        len(fields) == 3
        and fields[1] == curve.encode("ascii")
        and len(fields[2]) == _ECDSA_POINT_BYTES[curve]
        and fields[2][0] == 0x04
    )


def _strict_b64(text: str) -> bytes | None:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def _hashed_name_matches(hashed: str, name: str) -> bool | None:
    """Whether `|1|salt|hmac` is `name` hashed as OpenSSH does; None when it is malformed."""
    parts = hashed.split("|")
    salt = _strict_b64(parts[2]) if len(parts) > 2 else None
    if salt is None or len(salt) != _SHA1_BYTES:
        return None
    digest = hmac.new(salt, name.encode("utf-8"), hashlib.sha1).digest()
    expected = "|".join(
        ("", "1", base64.b64encode(salt).decode("ascii"), base64.b64encode(digest).decode("ascii"))
    )
    return hmac.compare_digest(expected.encode("utf-8"), hashed.encode("utf-8"))


def known_hosts_keys(lines: Iterable[str], name: str) -> dict[str, SshPublicKey] | None:
    """The host keys known_hosts `lines` hold for `name`, by type; None if this cannot decide.

    `lines` are a known_hosts file's as paramiko reads them (the file opened
    in text mode), and are read as its `HostKeys` reads them, for the plain
    case: lines stripped, blank and `#` lines skipped, fields split on each
    space or tab, comma-separated names matched literally or as OpenSSH
    hashes (`|1|salt|hmac`), and for each type the first matching line in
    file order. None (let paramiko read the file: it is the reference) as
    soon as a line is anything else: a type outside KNOWN_HOSTS_KEY_TYPES,
    base64 or a key blob that is not clean, a malformed hashed name. So a
    key returned is the key paramiko would check the host's against, never
    one it would skip or not read at all.
    """
    found: dict[str, SshPublicKey] = {}
    for raw in lines:
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        fields = re.split(" |\t", line)
        if len(fields) < 3:
            continue  # paramiko skips it too
        names, key_type, body = fields[0].split(","), fields[1], fields[2]
        blob = _strict_b64(body)
        if key_type not in KNOWN_HOSTS_KEY_TYPES or blob is None:
            return None
        if not _clean_host_key(key_type, blob):
            return None
        matches = False
        for entry in names:
            if entry.startswith(_HASHED_PREFIX):
                hashed = _hashed_name_matches(entry, name)
                if hashed is None:
                    return None
                matches = matches or hashed
            else:
                matches = matches or entry == name
        if matches and key_type not in found:
            found[key_type] = SshPublicKey(key_type, blob)
    return found
