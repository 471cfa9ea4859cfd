"""Who may sign for the client: `reversibility.client_signers`, in OpenSSH allowed_signers form.

The client's acceptance of the restitution bundle opens the exit's one-way
doors, so it must come from a key the contract names, not from whoever
reaches the Prefect UI. The entries follow `ssh-keygen -Y verify`'s
allowed_signers format (`principal[,principal] [options] keytype base64
[comment]`) so the same lines, or the same file, let the client check its
own signature with OpenSSH. A `file:PATH` entry names such a file, read when
a flow runs (like `file:` recipients; relative to the working directory, as
every path of a playbook). Apart from `recipients.py` because signers are
SSH public keys checked with sshsig, not age recipients.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, Field

from handover.contract.fields import literal_secret_kind
from handover.errors import KeyFormatError
from handover.sshkeys import SSH_KEY_TYPES, SshPublicKey, parse_public_key, shown

FILE_PREFIX = "file:"
# allowed_signers options handover understands; any other option is refused rather than ignored
# (ignoring a restriction would accept a signature OpenSSH would refuse).
_KNOWN_OPTIONS = ("namespaces=",)


@dataclass(frozen=True)
class AllowedSigner:
    """One allowed_signers line: who (principals), which key, for which namespaces."""

    principals: tuple[str, ...]
    key: SshPublicKey
    namespaces: tuple[str, ...] | None = None  # None: any namespace
    source: str = ""  # where the line came from (playbook field or file:line), for messages

    @property
    def principal(self) -> str:
        return ",".join(self.principals)

    @property
    def fingerprint(self) -> str:
        return self.key.fingerprint

    def allows(self, namespace: str) -> bool:
        return self.namespaces is None or namespace in self.namespaces

    def line(self) -> str:
        """The entry as an allowed_signers line (what `ssh-keygen -Y verify -f` reads)."""
        options = f' namespaces="{",".join(self.namespaces)}"' if self.namespaces else ""
        return f"{self.principal}{options} {self.key.line()}"


def _split_options(text: str) -> list[str]:
    """Comma-separated options, commas inside double quotes kept (`namespaces="a,b"`)."""
    options, current, quoted = [], "", False
    for char in text:
        if char == '"':
            quoted = not quoted
        if char == "," and not quoted:
            options.append(current)
            current = ""
        else:
            current += char
    options.append(current)
    return [o for o in options if o]


def _namespaces(options_text: str) -> tuple[str, ...] | None:
    namespaces: tuple[str, ...] | None = None
    for option in _split_options(options_text):
        if not option.lower().startswith(_KNOWN_OPTIONS):
            raise ValueError(
                f'option {option[:40]!r} is not supported (only namespaces="..."); '
                "certificate authorities and validity windows are not accepted for client signers"
            )
        value = option.split("=", 1)[1].strip('"')
        namespaces = tuple(n.strip() for n in value.split(",") if n.strip())
    return namespaces


def parse_allowed_signer(line: str, source: str = "") -> AllowedSigner:
    """Parse one allowed_signers line; KeyFormatError names `source` and says what is wrong."""
    where = f"{source}: " if source else ""
    if literal_secret_kind(line):
        raise KeyFormatError(f"{where}holds a secret key: give the public key instead")
    tokens = line.split()
    if tokens and tokens[0] in SSH_KEY_TYPES:
        raise KeyFormatError(
            f"{where}{shown(line)!r}: begins with the key; an allowed signer begins with who "
            "signs, e.g. 'dsi@client.example ssh-ed25519 AAAA... comment'"
        )
    key_at = next((i for i, token in enumerate(tokens) if token in SSH_KEY_TYPES), None)
    if key_at is None or key_at + 1 >= len(tokens):
        raise KeyFormatError(
            f"{where}{shown(line)!r}: expected '<principal> [options] <keytype> <base64> "
            "[comment]', as in an ssh-keygen allowed_signers file"
        )
    principals = tuple(p for p in tokens[0].strip('"').split(",") if p)
    if not principals:
        raise KeyFormatError(f"{where}{shown(line)!r}: no principal before the key")
    try:
        namespaces = _namespaces(" ".join(tokens[1:key_at]))
    except ValueError as exc:
        raise KeyFormatError(f"{where}{exc}") from exc
    key = parse_public_key(" ".join(tokens[key_at:]), f"{where}signer key")
    return AllowedSigner(principals, key, namespaces, source)


def _check_signer_entry(value: str) -> str:
    if value.startswith(FILE_PREFIX):
        if not value.removeprefix(FILE_PREFIX).strip():
            raise ValueError("'file:' must be followed by the path of an allowed_signers file")
        return value
    try:
        parse_allowed_signer(value.strip())
    except KeyFormatError as exc:
        raise ValueError(f"bad client signer: {exc}") from exc
    return value


SignerEntry = Annotated[
    str,
    AfterValidator(_check_signer_entry),
    Field(
        description="'<principal> <keytype> <base64> [comment]' (an ssh-keygen allowed_signers "
        "line), or file:PATH of an allowed_signers file."
    ),
]
SignerList = Annotated[list[SignerEntry], Field(min_length=1)]


def _read_signers_file(path: Path, field: str) -> list[AllowedSigner]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise KeyFormatError(
            f"{field}: allowed signers file {path}: cannot read ({reason})"
        ) from exc
    signers = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip() and not line.strip().startswith("#"):
            signers.append(parse_allowed_signer(line.strip(), f"{path}:{number}"))
    return signers


def load_signers(entries: Sequence[str], base: Path, field: str) -> list[AllowedSigner]:
    """Expand signer entries: literal lines as they are, `file:PATH` as the lines of that file.

    Relative paths are taken under `base` (the directory the command runs in).
    Raises KeyFormatError naming the file and line of an entry that does not
    parse, the file that cannot be read, or the field when no signer is left.
    """
    signers: list[AllowedSigner] = []
    for number, entry in enumerate(entries):
        if not entry.startswith(FILE_PREFIX):
            signers.append(parse_allowed_signer(entry.strip(), f"{field}[{number}]"))
            continue
        path = Path(entry.removeprefix(FILE_PREFIX).strip()).expanduser()
        signers.extend(_read_signers_file(path if path.is_absolute() else base / path, field))
    if not signers:
        raise KeyFormatError(f"{field}: no allowed signer found")
    return signers
