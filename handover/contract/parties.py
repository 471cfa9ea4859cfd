"""The `contract` section: who the parties are, when the contract runs, how it is billed.

The header of a playbook: reports and the bundle README quote it, and the
contract id names every file and artifact of the contract.
"""

from __future__ import annotations

from datetime import date
from typing import Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from handover.contract.base import PlaybookModel
from handover.contract.fields import ContractId, Email, NonEmpty


class Contact(PlaybookModel):
    """A person to reach at one of the parties."""

    name: NonEmpty = Field(description="Full name.")
    role: str | None = Field(default=None, description="Role, e.g. 'DSI', 'Responsable de compte'.")
    email: Email | None = Field(default=None, description="E-mail address.")
    phone: str | None = Field(
        default=None, description="Phone number, international format preferred."
    )


class EscalationStep(PlaybookModel):
    """One level of the escalation path (niveau d'escalade), level 1 first."""

    level: int = Field(ge=1, description="Escalation level, 1 = first contact.")
    name: NonEmpty = Field(description="Person or team reached at this level.")
    email: Email | None = None
    phone: str | None = None
    after_minutes: int | None = Field(
        default=None,
        ge=0,
        description="Escalate to this level when unresolved after this many minutes.",
    )


class Party(PlaybookModel):
    """The provider (prestataire) or the client, as named in the contract."""

    legal_name: NonEmpty = Field(description="Legal name (raison sociale).")
    registration: str | None = Field(
        default=None, description="Company registration, e.g. 'SIREN 552 100 554'."
    )
    address: str | None = Field(default=None, description="Registered address.")
    contacts: list[Contact] = Field(default_factory=list, description="People to reach.")
    escalation: list[EscalationStep] = Field(
        default_factory=list, description="Escalation path, level 1 first."
    )

    @field_validator("escalation")
    @classmethod
    def _levels_unique(cls, steps: list[EscalationStep]) -> list[EscalationStep]:
        levels = [s.level for s in steps]
        if len(set(levels)) != len(levels):
            raise ValueError(f"escalation levels must be unique (got {levels})")
        return steps


class Parties(PlaybookModel):
    """The two parties of the contract."""

    provider: Party = Field(description="The managed-services provider (prestataire).")
    client: Party = Field(description="The client whose systems are managed.")


class ContractDates(PlaybookModel):
    """Dates and term of the contract."""

    signed: date = Field(description="Signature date (YYYY-MM-DD).")
    effective: date = Field(description="Date the services start (YYYY-MM-DD).")
    initial_term_months: int = Field(default=12, ge=1, description="Initial term in months.")
    renewal: Literal["tacit", "explicit", "none"] = Field(
        default="tacit", description="Renewal: tacit (tacite reconduction), explicit, or none."
    )
    notice_period_months: int = Field(
        default=3, ge=0, description="Termination notice (préavis de résiliation) in months."
    )

    @model_validator(mode="after")
    def _effective_after_signed(self) -> Self:
        if self.effective < self.signed:
            raise ValueError(f"effective date {self.effective} is before signature {self.signed}")
        return self


class Billing(PlaybookModel):
    """Billing model; informational only."""

    model: Literal["forfait", "per_ticket", "per_task"] = Field(
        description="forfait (flat fee), per_ticket or per_task."
    )
    notes: str | None = None


class Contract(PlaybookModel):
    """Who, when, how billed: the header of the contract."""

    id: ContractId = Field(description="Contract id (slug), used in file and artifact names.")
    title: NonEmpty = Field(description='Human title, e.g. "Infogérance du SI d\'ACME".')
    parties: Parties
    dates: ContractDates
    billing: Billing | None = None
    language: Literal["fr", "en"] = Field(
        default="fr",
        description="The client's language: every document (reports, plan, runbooks, "
        "certificate, acceptance statement) and the bundle's README.txt are written in it.",
    )
    timezone: str = Field(
        default="Europe/Paris",
        description="IANA time zone of the contract (e.g. Europe/Paris): business hours "
        "and the dates shown to the client are in it.",
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        """Refuse a zone zoneinfo does not know here rather than when a date is first shown."""
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value[:60]!r}: use an IANA name such as Europe/Paris"
            ) from None
        return value
