"""The `reversibility` section: how the client gets everything back at exit (réversibilité).

Recipients, signing key, delivery, the exit deadlines bounded by the EU Data
Act, and what is returned in which format, exempted, or owned by whom.

The bounds are law in the types: a playbook outside them does not validate.
A transition longer than the Data Act's 30 days is allowed only with its
legal basis declared (`transition_extension`), and only up to that basis's
maximum, so the exit calendar and documents can always say why it is long.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import AfterValidator, Field, model_validator

from handover.contract.base import LocatedProblems, PlaybookModel
from handover.contract.fields import NonEmpty, SecretRef
from handover.contract.recipients import RecipientList, load_recipients
from handover.contract.signers import SignerList


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


def _range_problem(name: str, value: int, low: int, high: int | None, why: str) -> str | None:
    """The message of a value outside [low, high]: the field, the bound and the rule behind it."""
    if low <= value and (high is None or value <= high):
        return None
    span = f"at least {low}" if high is None else f"between {low} and {high}"
    return f"{name} is {value}, must be {span}: {why}"


def _bound(name: str, low: int, high: int | None, why: str) -> AfterValidator:
    """A range check whose message names the field, the bound and the rule behind it."""

    def check(value: int) -> int:
        problem = _range_problem(name, value, low, high, why)
        if problem:
            raise ValueError(problem)
        return value

    return AfterValidator(check)


DATA_ACT_TRANSITION_DAYS = 30
"""Data Act art. 25(2): the transitional period is at most 30 calendar days."""

TransitionBasis = Literal["data-act-art-25-4", "contractual-tuilage"]

TRANSITION_MAX_DAYS: dict[str, int] = {
    # 7 months: any 7 consecutive months hold at least 212 days (August to February,
    # or February to August), so 212 days never exceed 7 months whatever the start.
    "data-act-art-25-4": 212,
    # handover's bound: 6 months of overlap. The outgoing provider keeps its access
    # and its copies all through the transition, and retrieval and erasure only
    # start at its end; an overlap longer than that is a new term of the contract
    # (an amendment), not an exit, and stays below the Data Act's 7-month ceiling.
    "contractual-tuilage": 180,
}

_EXTENSION_RULE: dict[str, str] = {
    "data-act-art-25-4": (
        "an alternative transitional period, notified because 30 days are technically "
        "unfeasible, may not exceed 7 months (Data Act art. 25(4)); 212 days fit in 7 months "
        "from any start date"
    ),
    "contractual-tuilage": (
        "a contractual overlap (tuilage) is at most 180 days (handover's bound: a longer "
        "overlap is a new term of the contract, not an exit)"
    ),
}


class TransitionExtension(PlaybookModel):
    """The legal basis of a transition longer than the Data Act's 30 days.

    Without it, `transition_days` above 30 does not validate: a longer
    transition keeps the client's data and the provider's access in place
    longer, so the playbook must say on what ground.
    """

    basis: TransitionBasis = Field(
        description="data-act-art-25-4: the 30 days are technically unfeasible; the provider "
        "notifies the client within 14 working days of the switching request, justifies it and "
        "states the alternative period (at most 7 months, taken as 212 days). "
        "contractual-tuilage: a reversibility phase agreed in the contract during which the "
        "outgoing and incoming providers overlap (at most 180 days, handover's bound)."
    )
    justification: NonEmpty = Field(
        description="Why the longer transition: the technical unfeasibility (data-act-art-25-4) "
        "or what the overlap is for (contractual-tuilage). Shown in the reversibility plan, "
        "the exit calendar and the exit report."
    )
    clause: str | None = Field(
        default=None,
        description="The contract clause that agrees the transition, e.g. 'Art. 12.2 Tuilage'; "
        "required for contractual-tuilage.",
    )

    @model_validator(mode="after")
    def _clause_for_tuilage(self) -> Self:
        if self.basis == "contractual-tuilage" and not (self.clause or "").strip():
            raise LocatedProblems(
                [(("clause",), "required for contractual-tuilage: the clause that agrees it")]
            )
        return self


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
    transition_days: int = Field(
        default=30,
        description="Transition period in days, from the end of the notice to the switch-over "
        "(the final export): 1..30 (Data Act art. 25(2)); up to 212 with "
        "transition_extension basis data-act-art-25-4, up to 180 with contractual-tuilage.",
    )
    transition_extension: TransitionExtension | None = Field(
        default=None,
        description="The legal basis of a transition longer than 30 days; required exactly "
        "when transition_days is above 30.",
    )
    retrieval_days: Annotated[
        int,
        _bound(
            "retrieval_days",
            30,
            None,
            "the client must have at least 30 days to retrieve its data (Data Act art. 25(2))",
        ),
    ] = Field(
        default=30,
        description="Retrieval period in days (>= 30), from the switch-over; erasure starts "
        "at its end unless the client's signed acceptance asks for early erasure.",
    )
    erasure_days: Annotated[
        int,
        _bound(
            "erasure_days",
            0,
            90,
            "provider copies must be erased within 90 days after retrieval (RGPD art. 28(3)(g); "
            "handover's upper bound)",
        ),
    ] = Field(
        default=30,
        description="Days after the end of retrieval by which provider copies are erased (0..90).",
    )

    @model_validator(mode="after")
    def _transition_within_its_basis(self) -> Self:
        """30 days at most, unless an extension names its basis; then within that basis."""
        extension = self.transition_extension
        if extension is None:
            low, high = 1, DATA_ACT_TRANSITION_DAYS
            why = (
                "the transitional period is at most 30 days (Data Act art. 25(2)); a longer "
                "one needs transition_extension with its legal basis (data-act-art-25-4 or "
                "contractual-tuilage)"
            )
        else:
            low, high = DATA_ACT_TRANSITION_DAYS + 1, TRANSITION_MAX_DAYS[extension.basis]
            if self.transition_days < low:
                why = (
                    "a transition of 30 days or less is within Data Act art. 25(2) and needs no "
                    "transition_extension; remove it"
                )
            else:
                why = (
                    f"with transition_extension.basis {extension.basis}, "
                    f"{_EXTENSION_RULE[extension.basis]}"
                )
        problem = _range_problem("transition_days", self.transition_days, low, high, why)
        if problem:
            raise LocatedProblems([(("transition_days",), problem)])
        return self

    def transition_basis(self) -> str:
        """The transition's legal basis in words, as the exit calendar and documents show it."""
        days = f"{self.transition_days} days"
        extension = self.transition_extension
        if extension is None:
            return f"Data Act art. 25(2): transitional period of {days} (30 days at most)"
        if extension.basis == "data-act-art-25-4":
            return (
                f"Data Act art. 25(4): alternative transitional period of {days} (at most "
                "7 months), the 30 days being technically unfeasible, notified to the client "
                f"within 14 working days of the switching request: {extension.justification}"
            )
        return (
            f"Contractual reversibility phase with overlap (tuilage), {extension.clause}: "
            f"{days} (at most 180 days, handover's bound): {extension.justification}"
        )


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
    client_signers: SignerList | None = Field(
        default=None,
        description="Who may sign the client's acceptance (procès-verbal de réception): "
        "allowed_signers lines '<principal> <keytype> <base64> [comment]' or file:PATH of an "
        "allowed_signers file. Optional to validate, but without it the exit never opens its "
        "one-way doors (an acceptance cannot be verified).",
    )
    delivery: Delivery
    deadlines: Deadlines = Field(default_factory=Deadlines)
    formats: list[DataFormat] = Field(default_factory=list)
    exempted: list[Exemption] = Field(default_factory=list)
    software_ownership: list[Ownership] = Field(default_factory=list)

    def load_recipients(self, base: Path) -> list[str]:
        """Literal recipients plus the lines of `file:` recipients files (see `load_recipients`)."""
        return load_recipients(self.recipients, base, "reversibility.recipients")
