"""Who can open a bundle or a backup, as a playbook names them: recipients and recipients files.

Separate from the other field types because both `reversibility` and
`backups` name recipients, and because a recipients file is read when a flow
runs, not when the playbook is validated. A recipient is accepted only if
`handover.bundle.age.parse_recipient`, the parser that encrypts, accepts it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, Field

from handover.bundle.age import parse_recipient, recipients_problem
from handover.contract.fields import literal_secret_kind
from handover.errors import KeyFormatError

FILE_PREFIX = "file:"


def recipient_problem(text: str) -> str | None:
    """Return why `text` is not a usable age recipient, or None when it parses."""
    if literal_secret_kind(text):
        return "holds a secret key: give the recipient (public key) instead"
    try:
        parse_recipient(text)
    except KeyFormatError as exc:
        return str(exc)
    return None


def _check_recipient_entry(value: str) -> str:
    if value.startswith(FILE_PREFIX):
        if not value.removeprefix(FILE_PREFIX).strip():
            raise ValueError("'file:' must be followed by the path of an age recipients file")
        return value
    problem = recipient_problem(value.strip())
    if problem:
        raise ValueError(f"bad recipient: {problem}")
    return value


RecipientEntry = Annotated[
    str,
    AfterValidator(_check_recipient_entry),
    Field(
        description="age recipient (age1...), ssh-ed25519/ssh-rsa public key, "
        "or file:PATH of an age -R recipients file."
    ),
]


def _read_recipients_file(path: Path, field: str) -> list[str]:
    """The recipients of an `age -R` file: one per line, blank lines and `#` comments ignored."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise KeyFormatError(f"{field}: recipients file {path}: cannot read ({reason})") from exc
    recipients: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        problem = recipient_problem(line)
        if problem:
            raise KeyFormatError(f"{path}:{number}: bad recipient: {problem}")
        recipients.append(line)
    return recipients


def load_recipients(entries: Sequence[str], base: Path, field: str) -> list[str]:
    """Expand recipient entries: literals as they are, `file:PATH` as the lines of that file.

    A recipients file follows `age -R`: one recipient per line, blank lines and
    `#` comments ignored. Relative paths are taken under `base` (the directory
    the command runs in). Raises KeyFormatError naming the file and line of a
    recipient that does not parse, or the file that cannot be read.
    """
    result: list[str] = []
    for entry in entries:
        if not entry.startswith(FILE_PREFIX):
            result.append(entry.strip())
            continue
        path = Path(entry.removeprefix(FILE_PREFIX)).expanduser()
        result.extend(_read_recipients_file(path if path.is_absolute() else base / path, field))
    if not result:
        raise KeyFormatError(f"{field}: no recipient found")
    problem = recipients_problem([parse_recipient(text) for text in result])
    if problem is not None:
        raise KeyFormatError(f"{field}: {problem}")
    return result


def _check_recipient_list(entries: list[str]) -> list[str]:
    """The age rules on who may share a file, for the literal entries (files are read later)."""
    literals = [e.strip() for e in entries if not e.startswith(FILE_PREFIX)]
    problem = recipients_problem([parse_recipient(text) for text in literals]) if literals else None
    if problem is not None:
        raise ValueError(problem)
    return entries


RecipientList = Annotated[list[RecipientEntry], AfterValidator(_check_recipient_list)]
