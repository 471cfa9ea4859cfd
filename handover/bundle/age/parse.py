"""Text to recipients and identities: the one entry point that knows every key format.

Recipients come from playbooks, `--to` options and recipients files;
identities from identity files and SSH private keys. Each recipient type
lives in its own module; this one only recognises which type a text is and
hands it over, so callers never pick a class themselves. Errors quote the
(shortened) input and the cause, never a private key.
"""

from __future__ import annotations

from pathlib import Path

from handover.bundle.age.bech32 import bech32_decode
from handover.bundle.age.mlkem import MLKEM768X25519Identity, MLKEM768X25519Recipient
from handover.bundle.age.ssh import (
    OPENSSH_MARKERS,
    SSH_RECIPIENT_TYPES,
    parse_ssh_private_key,
    parse_ssh_recipient,
)
from handover.bundle.age.stanza import Identity, Recipient
from handover.bundle.age.x25519 import X25519Identity, X25519Recipient
from handover.errors import KeyFormatError
from handover.sshkeys import shown


def parse_recipient(text: str) -> Recipient:
    """Parse `age1...`, `ssh-ed25519 AAAA... [comment]` or `ssh-rsa AAAA... [comment]`.

    Raises KeyFormatError quoting the (truncated) input and the cause.
    """
    stripped = text.strip()
    if stripped.startswith("age1pq1"):
        try:
            hrp, data = bech32_decode(stripped)
        except ValueError as exc:
            raise KeyFormatError(f"malformed age recipient {shown(stripped)!r}: {exc}") from exc
        if hrp != "age1pq":
            raise KeyFormatError(f"malformed age recipient {shown(stripped)!r}: bad prefix")
        try:
            return MLKEM768X25519Recipient(data)
        except KeyFormatError as exc:
            raise KeyFormatError(f"malformed age recipient {shown(stripped)!r}: {exc}") from exc
    if stripped.startswith("age1"):
        try:
            hrp, data = bech32_decode(stripped)
        except ValueError as exc:
            raise KeyFormatError(f"malformed age recipient {shown(stripped)!r}: {exc}") from exc
        if hrp != "age" or len(data) != 32:
            raise KeyFormatError(f"malformed age recipient {shown(stripped)!r}: not an X25519 key")
        return X25519Recipient(data)
    fields = stripped.split(None, 2)
    if len(fields) >= 2 and fields[0] in SSH_RECIPIENT_TYPES:
        return parse_ssh_recipient(stripped)
    raise KeyFormatError(
        f"unknown recipient {shown(stripped)!r}: expected age1..., ssh-ed25519 AAAA... "
        "or ssh-rsa AAAA..."
    )


def parse_identity(line: str, source: str = "identity") -> Identity:
    """Parse one `AGE-SECRET-KEY-1...` line. The key itself is never quoted in errors."""
    if line.startswith("AGE-PLUGIN-"):
        raise KeyFormatError(f"{source}: age plugin identities are not supported")
    if line.startswith("AGE-SECRET-KEY-PQ-"):
        try:
            hrp, data = bech32_decode(line)
        except ValueError as exc:
            raise KeyFormatError(f"{source}: malformed AGE-SECRET-KEY-PQ: {exc}") from exc
        if line.upper() != line or hrp != "age-secret-key-pq-" or len(data) != 32:
            raise KeyFormatError(f"{source}: malformed AGE-SECRET-KEY-PQ: not a 32-byte seed")
        return MLKEM768X25519Identity(data)
    if line.startswith(("age1", "ssh-ed25519 ", "ssh-rsa ")):
        raise KeyFormatError(
            f"{source}: this is a public key (recipient); give the private key (identity)"
        )
    if not line.startswith("AGE-SECRET-KEY-1"):
        raise KeyFormatError(f"{source}: expected an AGE-SECRET-KEY-1... line")
    try:
        hrp, data = bech32_decode(line)
    except ValueError as exc:
        raise KeyFormatError(f"{source}: malformed AGE-SECRET-KEY: {exc}") from exc
    if line.upper() != line or hrp != "age-secret-key-" or len(data) != 32:
        raise KeyFormatError(f"{source}: malformed AGE-SECRET-KEY: not an X25519 secret key")
    return X25519Identity(data)


def parse_identities(data: bytes, source: str) -> list[Identity]:
    """Parse an age identity file or an unencrypted OpenSSH private key (ed25519 or rsa).

    An identity file holds `AGE-SECRET-KEY-1...` lines, `#` comments and blank
    lines. `source` (a path or a label) names the input in errors.
    """
    if any(marker in data for marker in OPENSSH_MARKERS):
        return [parse_ssh_private_key(data, source)]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise KeyFormatError(f"{source}: identity file is not UTF-8 text") from exc
    identities: list[Identity] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        identities.append(parse_identity(line, f"{source}:{number}"))
    if not identities:
        raise KeyFormatError(f"{source}: no identity found")
    return identities


def load_identities(path: Path) -> list[Identity]:
    """Read `path` and parse it with parse_identities (errors name the path)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise KeyFormatError(f"{path}: cannot read identity file: {exc.strerror}") from exc
    return parse_identities(data, str(path))
