"""pydantic validation errors rewritten as `file:line: field.path: problem` lines.

pydantic's own messages name Python types and internal error codes; an
operations engineer fixing a playbook wants the line, the YAML path and
words like "expected a list, got a string", and a suggestion for a mistyped
key. Separate from the loader so that the wording lives in one place.
"""

from __future__ import annotations

import difflib
from datetime import date
from typing import Annotated, Any, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from handover.contract.base import Loc, LocatedProblems, format_loc
from handover.contract.yaml_lines import ComposedYaml

_TYPE_WORDS = {
    "model_type": "expected a mapping",
    "model_attributes_type": "expected a mapping",
    "dict_type": "expected a mapping",
    "list_type": "expected a list",
    "string_type": "expected a string",
    "int_type": "expected an integer",
    "int_parsing": "expected an integer",
    "int_from_float": "expected a whole number",
    "float_type": "expected a number",
    "float_parsing": "expected a number",
    "bool_type": "expected true or false",
    "bool_parsing": "expected true or false",
    "date_type": "expected a date (YYYY-MM-DD)",
    "date_parsing": "expected a date (YYYY-MM-DD)",
    "date_from_datetime_parsing": "expected a date (YYYY-MM-DD)",
    "date_from_datetime_inexact": "expected a date (YYYY-MM-DD), not a date and time",
}


def describe(value: Any) -> str:
    """What kind of YAML value `value` is, in words ('a string', 'a list', 'null')."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, date):
        return "a date"
    return type(value).__name__


def _unwrap(annotation: Any) -> Any:
    """Strip Optional[...] and Annotated[...] down to the model or list type."""
    while True:
        args = get_args(annotation)
        if get_origin(annotation) is Annotated:
            annotation = args[0]
        elif args and type(None) in args and get_origin(annotation) is not list:
            rest = [a for a in args if a is not type(None)]
            if len(rest) != 1:
                return annotation
            annotation = rest[0]
        else:
            return annotation


def _allowed_keys(root: type[BaseModel], loc: Loc) -> list[str]:
    """The field names of the model at `loc` (the parent of an unknown key)."""
    annotation: Any = root
    for part in loc:
        annotation = _unwrap(annotation)
        if isinstance(part, int):
            if get_origin(annotation) is list:
                annotation = get_args(annotation)[0]
                continue
            return []
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = annotation.model_fields.get(part)
            if field is None:
                return []
            annotation = field.annotation
        else:
            return []
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return list(annotation.model_fields)
    return []


def _unknown_key_message(root: type[BaseModel], loc: Loc) -> str:
    key = str(loc[-1])
    allowed = _allowed_keys(root, loc[:-1])
    message = f"unknown key {key!r}"
    close = difflib.get_close_matches(key, allowed, n=1)
    if close:
        message += f" (did you mean {close[0]!r}?)"
    elif allowed:
        message += f" (allowed: {', '.join(allowed)})"
    return message


def _message(root: type[BaseModel], error: ErrorDetails) -> str:
    """One pydantic error in the playbook's words."""
    kind = error["type"]
    if kind == "extra_forbidden":
        return _unknown_key_message(root, tuple(error["loc"]))
    if kind == "missing":
        return "missing required field"
    if kind in _TYPE_WORDS:
        return f"wrong type: {_TYPE_WORDS[kind]}, got {describe(error.get('input'))}"
    if kind == "value_error":
        return error["msg"].removeprefix("Value error, ")
    message = error["msg"]
    if message and message[0].isupper() and not message[1:2].isupper():
        message = message[0].lower() + message[1:]
    return message


def error_lines(
    root: type[BaseModel],
    exc: ValidationError,
    file: str,
    source: ComposedYaml,
    skip: set[Loc],
) -> list[tuple[int, str]]:
    """(line, message) per problem of `exc`, raised validating `root` on `source`'s data.

    A `LocatedProblems` error becomes one line per problem at its own field.
    Errors at a location in `skip` (already reported otherwise) are left out.
    """
    out: list[tuple[int, str]] = []
    for error in exc.errors(include_url=False):
        loc: Loc = tuple(error["loc"])
        original = (error.get("ctx") or {}).get("error")
        if isinstance(original, LocatedProblems):
            located = [((*loc, *sub_loc), message) for sub_loc, message in original.items]
        elif loc in skip:
            continue
        else:
            located = [(loc, _message(root, error))]
        for full, message in located:
            line = source.line_of(full)
            out.append((line, f"{file}:{line}: {format_loc(full)}: {message}"))
    return out
