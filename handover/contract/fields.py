"""Field types of the playbook: what a slug, a reference, a fingerprint or a key must look like.

Each check is an `Annotated` type, so that a section model states a field's
rule in its annotation and the rule lives here once. Messages never quote a
value that could be a secret: `literal_secret_kind` names what a value looks
like instead. OpenSSH keys and fingerprints are checked by `handover.sshkeys`,
the parser every other part of handover uses.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field

from handover.errors import UsageError
from handover.secrets.references import SCHEMES, is_ref
from handover.sshkeys import normalize_fingerprint, public_key_problem
from handover.state.home import CONTRACT_ID_PATTERN

SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

# Values that are private keys or tokens, wherever they appear in a playbook.
_LITERAL_SECRETS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----"), "a PEM private key"),
    (re.compile(r"AGE-SECRET-KEY-1", re.IGNORECASE), "an age secret key"),
    (re.compile(r"PuTTY-User-Key-File-"), "a PuTTY private key"),
    (re.compile(r"(?<![A-Za-z0-9/+=])AKIA[0-9A-Z]{16}(?![A-Za-z0-9])"), "an AWS access key id"),
    (re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36}\b"), "a GitHub token"),
    (re.compile(r"\bxox[abpr]-[A-Za-z0-9-]{10,}"), "a Slack token"),
)

REF_HELP = ", ".join(f"{s}:..." for s in SCHEMES)
"""The reference forms, as messages that refuse a literal value list them."""


def literal_secret_kind(value: str) -> str | None:
    """Name the kind of secret `value` looks like (e.g. 'a PEM private key'), or None."""
    for pattern, kind in _LITERAL_SECRETS:
        if pattern.search(value):
            return kind
    return None


def _check_slug(value: str) -> str:
    if not SLUG_RE.match(value):
        raise ValueError(
            f"bad slug {value[:70]!r}: use 1 to 63 characters among a-z, 0-9 and '-', "
            "starting with a letter or digit"
        )
    return value


def _check_contract_id(value: str) -> str:
    if not CONTRACT_ID_PATTERN.match(value):
        raise ValueError(
            f"bad slug {value[:70]!r}: a contract id takes 2 to 63 characters among a-z, 0-9 "
            "and '-', starting with a letter or digit (it names the contract's state and vault)"
        )
    return value


def _check_ref(value: str) -> str:
    if not is_ref(value):
        if literal_secret_kind(value):
            raise ValueError(f"holds a literal secret; store it and give a reference ({REF_HELP})")
        raise ValueError(
            f"must be a credential reference ({REF_HELP}), not a literal value; "
            "store the secret in the vault, a file or the environment"
        )
    return value


def _check_fingerprint(value: str) -> str:
    """Exactly the `SHA256:...` form `ssh-keygen -l` prints (one trailing '=' tolerated).

    `normalize_fingerprint` is the reader the SSH connector compares with; a
    playbook must already hold the form it returns, so what the file says is
    what handover prints.
    """
    try:
        well_formed = normalize_fingerprint(value) in (value, value.removesuffix("="))
    except UsageError:
        well_formed = False
    if not well_formed:
        raise ValueError(
            f"bad host key fingerprint {value[:80]!r}: expected 'SHA256:' followed by 43 "
            "base64 characters, as printed by `ssh-keygen -lf` or `ssh-keyscan | ssh-keygen -lf -`"
        )
    return value


def _check_email(value: str) -> str:
    if not _EMAIL_RE.match(value):
        raise ValueError(f"bad e-mail address {value[:80]!r}")
    return value


def _check_abs_path(value: str) -> str:
    if not value.startswith("/"):
        raise ValueError(f"path {value[:120]!r} must be absolute (start with '/')")
    return value


def _check_public_key(value: str) -> str:
    if literal_secret_kind(value):
        raise ValueError("holds a private key: give the public key (the .pub file) instead")
    problem = public_key_problem(value)
    if problem:
        raise ValueError(f"not an OpenSSH public key: {problem}")
    return value


Slug = Annotated[str, AfterValidator(_check_slug)]
ContractId = Annotated[str, AfterValidator(_check_contract_id)]
SecretRef = Annotated[
    str,
    AfterValidator(_check_ref),
    Field(
        description="Credential reference: env:NAME, file:PATH, prefect-secret:BLOCK "
        "or vault:CONTRACT/ENTRY."
    ),
]
Fingerprint = Annotated[str, AfterValidator(_check_fingerprint)]
Email = Annotated[str, AfterValidator(_check_email)]
AbsPath = Annotated[str, AfterValidator(_check_abs_path)]
PublicKey = Annotated[str, AfterValidator(_check_public_key)]
NonEmpty = Annotated[str, Field(min_length=1)]
