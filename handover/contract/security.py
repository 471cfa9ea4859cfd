"""The `security` section: access policy and the provider access installed and revoked.

The provider's public keys are installed at implementation and revoked at
exit; `verify_key` lets the exit prove the revocation by trying to log in.
"""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from handover.contract.base import PlaybookModel
from handover.contract.fields import NonEmpty, PublicKey, SecretRef

_ACCOUNT_RE = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")


class AccessRule(PlaybookModel):
    """Who may access what (politique d'accès)."""

    who: NonEmpty
    what: NonEmpty


class ProviderAccess(PlaybookModel):
    """Provider SSH access to install at implementation and revoke at exit."""

    host: str = Field(description="Host name from perimeter.hosts.")
    account: str = Field(description="Account whose authorized_keys receives the keys.")
    public_keys: list[PublicKey] = Field(min_length=1, description="OpenSSH public key lines.")
    purpose: str | None = None
    verify_key: SecretRef | None = Field(
        default=None,
        description="Reference to the provider's private key matching `public_keys`: at exit, "
        "handover tries to log in with it to prove the access is revoked (ssh hosts).",
    )

    @field_validator("account")
    @classmethod
    def _account(cls, value: str) -> str:
        if not _ACCOUNT_RE.match(value):
            raise ValueError(f"bad account name {value[:40]!r}")
        return value


class Security(PlaybookModel):
    """Confidentiality, access policy and provider access."""

    confidentiality: str | None = None
    access_policy: list[AccessRule] = Field(default_factory=list)
    provider_access: list[ProviderAccess] = Field(default_factory=list)
