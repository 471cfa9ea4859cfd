"""Credential references and their resolution.

A playbook never holds a secret, only a reference: `env:NAME`, `file:PATH`,
`prefect-secret:BLOCK` or `vault:CONTRACT/ENTRY`. References are resolved
inside the code that uses the secret, at the last moment, and the value is
wrapped in `Secret` so that printing, logging or returning it by mistake
shows a mask instead of the value.

The core knows `env:` and `file:`; other modules register the schemes they
own (`tasks` registers `prefect-secret:`, `handover.secrets.vault_references`
registers `vault:`), so the core stays free of Prefect and this module
depends on nothing it resolves. Importing any module of `handover.secrets`
runs the package's `__init__`, which registers `vault:`: code that imports
`resolve_secret` from here can always resolve vault references.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

from handover.errors import SecretRefError

REF_PATTERN = re.compile(r"^(env|file|prefect-secret|vault):(\S+)$")
SCHEMES = ("env", "file", "prefect-secret", "vault")


class Secret:
    """A secret value that refuses to show itself in repr, str or f-strings."""

    __slots__ = ("_value",)

    def __init__(self, value: bytes) -> None:
        self._value = value

    def reveal(self) -> bytes:
        """Return the raw bytes; call only where the secret is consumed."""
        return self._value

    def reveal_text(self) -> str:
        """Return the value as UTF-8 text, without a trailing newline."""
        return self._value.decode("utf-8").rstrip("\r\n")

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("a Secret cannot be pickled or serialized")


Resolver = Callable[[str], bytes]
_resolvers: dict[str, Resolver] = {}


def register_resolver(scheme: str, resolver: Resolver) -> None:
    """Make `scheme:` references resolvable by `resolver(rest) -> bytes`."""
    _resolvers[scheme] = resolver


def parse_ref(ref: str) -> tuple[str, str]:
    """Split a reference into (scheme, rest); raise SecretRefError when malformed."""
    match = REF_PATTERN.match(ref)
    if not match:
        raise SecretRefError(
            f"malformed credential reference {ref!r}: expected one of "
            + ", ".join(f"{s}:..." for s in SCHEMES)
        )
    return match.group(1), match.group(2)


def is_ref(value: str) -> bool:
    """True when `value` has the form of a credential reference."""
    return REF_PATTERN.match(value) is not None


def _resolve_env(name: str) -> bytes:
    value = os.environ.get(name)
    if value is None:
        raise SecretRefError(f"env:{name}: environment variable is not set")
    return value.encode("utf-8")


def _resolve_file(path: str) -> bytes:
    try:
        return Path(path).expanduser().read_bytes()
    except OSError as exc:
        raise SecretRefError(f"file:{path}: cannot read ({exc.strerror})") from exc


register_resolver("env", _resolve_env)
register_resolver("file", _resolve_file)


def resolve_secret(ref: str) -> Secret:
    """Resolve a reference to its value; raise SecretRefError naming the reference."""
    scheme, rest = parse_ref(ref)
    resolver = _resolvers.get(scheme)
    if resolver is None:
        raise SecretRefError(f"{ref}: no resolver for '{scheme}:' references in this process")
    return Secret(resolver(rest))
