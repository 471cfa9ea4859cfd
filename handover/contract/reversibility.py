"""The `reversibility` section: how the client gets everything back at exit (réversibilité).

Recipients, signing key, delivery, the exit deadlines bounded by the EU Data
Act, and what is returned in which format, exempted, or owned by whom.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import AfterValidator, Field, model_validator

from handover.contract.base import LocatedProblems, PlaybookModel
from handover.contract.fields import NonEmpty, SecretRef
from handover.contract.recipients import RecipientList, load_recipients


class Delivery(PlaybookModel):
    """Where the restitution bundle goes: a local folder, or S3 with presigned links."""

    kind: Literal["local", "s3"]
    path: str | None = Field(default=None, description="local: destination folder.")
    bucket: str | None = Field(default=None, description="s3: bucket holding the bundle.")
    prefix: str = Field(default="", description="s3: key prefix.")
    link_expiry_days: int = Field(
        default=7,
        ge=1,
        le=7,
        description="s3: presigned link lifetime; S3 (SigV4) allows at most 7 days, "
        "links are re-issued on request during the retrieval period.",
    )
    client_bucket: str | None = Field(
        default=None, description="s3: also copy into the client's bucket."
    )

    @model_validator(mode="after")
    def _by_kind(self) -> Self:
        if self.kind == "local" and not self.path:
            raise LocatedProblems([(("path",), "required for local delivery")])
        if self.kind == "s3" and not self.bucket:
            raise LocatedProblems([(("bucket",), "required for s3 delivery")])
        return self


def _bound(name: str, low: int, high: int | None, why: str) -> AfterValidator:
    """A range check whose message names the field, the bound and the rule behind it."""
    span = f"at least {low}" if high is None else f"between {low} and {high}"

    def check(value: int) -> int:
        if value < low or (high is not None and value > high):
            raise ValueError(f"{name} is {value}, must be {span}: {why}")
        return value

    return AfterValidator(check)


class Deadlines(PlaybookModel):
    """Exit deadlines, bounded by the switching rules of the EU Data Act (2023/2854, art. 25)."""

    notice_months: Annotated[
        int,
        _bound(
            "notice_months",
            0,
            2,
            "the switching notice may not exceed 2 months (Data Act art. 25(2))",
        ),
    ] = Field(default=2, description="Exit notice period in months (0..2).")
    transition_days: Annotated[
        int,
        _bound(
            "transition_days",
            1,
            30,
            "the transitional period is at most 30 days (Data Act art. 25(2)); an extension "
            "is a separate notice",
        ),
    ] = Field(default=30, description="Transition period in days (1..30).")
    retrieval_days: Annotated[
        int,
        _bound(
            "retrieval_days",
            30,
            None,
            "the client must have at least 30 days to retrieve its data (Data Act art. 25(2))",
        ),
    ] = Field(default=30, description="Retrieval period in days (>= 30).")
    erasure_days: Annotated[
        int,
        _bound(
            "erasure_days",
            0,
            90,
            "provider copies must be erased within 90 days after retrieval (RGPD art. 28(3)(g); "
            "handover's upper bound)",
        ),
    ] = Field(default=30, description="Delay before provider copies are erased, in days (0..90).")


class Exemption(PlaybookModel):
    """A data category not returned or kept by the provider, and why."""

    category: NonEmpty
    reason: NonEmpty
    legal_basis: str | None = Field(
        default=None, description="e.g. 'Code de commerce L123-22, 10 ans'."
    )


class Ownership(PlaybookModel):
    """Who owns a deliverable produced during the contract."""

    item: NonEmpty
    owner: Literal["provider", "client", "third-party"]
    notes: str | None = None


class DataFormat(PlaybookModel):
    """Format in which a category of data is returned."""

    data: NonEmpty = Field(description="Category, e.g. 'databases'.")
    format: NonEmpty = Field(description="e.g. 'PostgreSQL custom dump (pg_restore)'.")


class Reversibility(PlaybookModel):
    """How the client gets everything back at exit (réversibilité)."""

    recipients: RecipientList = Field(
        min_length=1, description="Who can open the bundle: the client and/or the new provider."
    )
    signing_key: SecretRef = Field(description="Reference to the provider's OpenSSH Ed25519 key.")
    delivery: Delivery
    deadlines: Deadlines = Field(default_factory=Deadlines)
    formats: list[DataFormat] = Field(default_factory=list)
    exempted: list[Exemption] = Field(default_factory=list)
    software_ownership: list[Ownership] = Field(default_factory=list)

    def load_recipients(self, base: Path) -> list[str]:
        """Literal recipients plus the lines of `file:` recipients files (see `load_recipients`)."""
        return load_recipients(self.recipients, base, "reversibility.recipients")
