"""Reading a playbook file: every problem at once, one `file:line: field.path: problem` line each.

`load_playbook(path)` raises `PlaybookError` with one line per problem, each
of the form `playbooks/x.yaml:42: perimeter.datasets[1].host: unknown host
'db9' (hosts: web01, db01)`, sorted by line, so that an operations engineer
fixes a playbook in one pass. Line numbers come from the YAML node tree
(`yaml_lines`); the wording of pydantic's errors from `problem_lines`.

A value that looks like a literal secret is refused wherever it appears, and
no message ever quotes it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from handover.contract.base import Loc, format_loc
from handover.contract.fields import REF_HELP, literal_secret_kind
from handover.contract.playbook import Playbook, raw_reference_problems
from handover.contract.problem_lines import describe, error_lines
from handover.contract.yaml_lines import (
    MAX_PLAYBOOK_BYTES,
    ComposedYaml,
    compose,
    size_problem,
)
from handover.errors import PlaybookError


def _scan_literal_secrets(data: Any, loc: Loc = ()) -> Iterator[tuple[Loc, str, str]]:
    """Yield (location, kind, value) for every string value that looks like a literal secret."""
    if isinstance(data, dict):
        for key, value in data.items():
            yield from _scan_literal_secrets(value, (*loc, str(key)))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from _scan_literal_secrets(value, (*loc, index))
    elif isinstance(data, str):
        kind = literal_secret_kind(data)
        if kind:
            yield loc, kind, data


#: Longest problem line: a message quoting a huge value (a name of 5000 characters,
#: listed among the known names) would otherwise flood the terminal.
MAX_PROBLEM_CHARS = 500


def _bounded(message: str) -> str:
    """`message`, cut to MAX_PROBLEM_CHARS with the number of characters left out."""
    if len(message) <= MAX_PROBLEM_CHARS:
        return message
    keep = MAX_PROBLEM_CHARS - 40
    return f"{message[:keep]}... ({len(message) - keep} more characters)"


def _located(source: ComposedYaml, file: str, loc: Loc, message: str) -> tuple[int, str]:
    line = source.line_of(loc)
    return line, f"{file}:{line}: {format_loc(loc)}: {message}"


def _sections(source: ComposedYaml, file: str) -> dict[str, Any]:
    """The top-level mapping of the document; PlaybookError when it is empty or not a mapping."""
    if source.data is None:
        raise PlaybookError(file, [f"{file}:1: (top): empty playbook"])
    if not isinstance(source.data, dict):
        raise PlaybookError(
            file,
            [f"{file}:1: (top): expected a mapping of sections, got {describe(source.data)}"],
        )
    return source.data


def _secret_problems(
    source: ComposedYaml, file: str, secrets: list[tuple[Loc, str, str]]
) -> list[tuple[int, str]]:
    return [
        _located(
            source,
            file,
            loc,
            f"looks like a literal secret ({kind}); "
            f"store it in the vault or a file and give a reference ({REF_HELP})",
        )
        for loc, kind, _value in secrets
    ]


def _model_problems(
    data: dict[str, Any], source: ComposedYaml, file: str, skip: set[Loc]
) -> tuple[Playbook | None, list[tuple[int, str]]]:
    """The validated playbook, or None and a (line, message) per problem pydantic found."""
    try:
        return Playbook.model_validate(data), []
    except ValidationError as exc:
        found = error_lines(Playbook, exc, file, source, skip)
    # Cross references are checked by Playbook only when every field is valid:
    # check them on the raw data too, so that all problems show at once.
    found.extend(
        _located(source, file, loc, message) for loc, message in raw_reference_problems(data)
    )
    return None, found


def validate_playbook_text(text: str, file: str) -> Playbook:
    """Validate playbook YAML text; `file` is the name used in messages. Raises PlaybookError."""
    source = compose(text, file)
    data = _sections(source, file)
    secrets = list(_scan_literal_secrets(data))
    found = [*source.duplicate_keys, *_secret_problems(source, file, secrets)]
    playbook, model_problems = _model_problems(data, source, file, {loc for loc, *_ in secrets})
    found.extend(model_problems)
    if found:
        ordered = [message for _line, message in sorted(found, key=lambda p: p[0])]
        # Belt and braces: no line may quote a secret-looking value.
        for _loc, _kind, value in secrets:
            ordered = [m.replace(value, "<redacted>") for m in ordered]
        raise PlaybookError(file, list(dict.fromkeys(_bounded(m) for m in ordered)))
    assert playbook is not None
    return playbook


def read_playbook_text(path: Path) -> str:
    """The text of a playbook file, read no further than the size limit.

    Raises PlaybookError for a file over MAX_PLAYBOOK_BYTES (without reading
    it all: it may be a device or a huge file named by mistake), OSError and
    UnicodeDecodeError as `open` and `decode` do.
    """
    with open(path, "rb") as handle:
        data = handle.read(MAX_PLAYBOOK_BYTES + 1)
    if len(data) > MAX_PLAYBOOK_BYTES:
        size = max(len(data), _size_or_zero(path))
        raise PlaybookError(str(path), [size_problem(size, str(path)) or str(path)])
    return data.decode("utf-8")


def _size_or_zero(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def load_playbook(path: Path) -> Playbook:
    """Read and validate a playbook file.

    Raises PlaybookError with one `file:line: field.path: message` line per
    problem (YAML syntax, duplicate keys, unknown keys, types, slugs, cross
    references, deadlines, recipients, secrets), or naming the file when it
    cannot be read or is over the limits (1 MiB, nesting, number of values).
    """
    file = str(path)
    try:
        text = read_playbook_text(Path(path))
    except FileNotFoundError as exc:
        raise PlaybookError(file, [f"{file}: no such file"]) from exc
    except IsADirectoryError as exc:
        raise PlaybookError(file, [f"{file}: is a directory, not a playbook file"]) from exc
    except OSError as exc:
        raise PlaybookError(file, [f"{file}: cannot read ({exc.strerror})"]) from exc
    except UnicodeDecodeError as exc:
        raise PlaybookError(file, [f"{file}: not UTF-8 text (byte {exc.start})"]) from exc
    playbook = validate_playbook_text(text, file)
    playbook._source = Path(path)
    return playbook


def read_contract_id(path: Path) -> str | None:
    """The playbook's `contract.id` alone, without validating anything else; None when unreadable.

    For what must name a contract before (or without) loading its playbook,
    such as a flow run's name: it never raises, and reads the file with the
    same YAML composer as `load_playbook` (aliases checked, no arbitrary tags).
    """
    try:
        data = compose(read_playbook_text(Path(path)), str(path)).data
    except (OSError, ValueError, PlaybookError):  # UnicodeDecodeError is a ValueError
        return None
    contract = data.get("contract") if isinstance(data, dict) else None
    contract_id = contract.get("id") if isinstance(contract, dict) else None
    return None if contract_id is None else str(contract_id)
