"""The `backups` section: the provider's own backups during the operational phase.

Encrypted to the provider's backup keys, not the client's: these are the
provider's copies, erased at exit like any other.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from handover.contract.base import PlaybookModel
from handover.contract.cron import CronExpression
from handover.contract.fields import NonEmpty, SecretRef
from handover.contract.recipients import RecipientList, load_recipients


class Backups(PlaybookModel):
    """Provider-side backups during the operational phase."""

    target: NonEmpty = Field(description="A folder, or s3://bucket/prefix.")
    retention_days: int = Field(default=30, ge=1)
    keep_last: int = Field(
        default=7, ge=1, description="Always keep this many, whatever their age."
    )
    schedule: CronExpression | None = Field(
        default=None, description="Cron expression of the backups (contract's time zone)."
    )
    recipients: RecipientList = Field(min_length=1, description="The provider's backup keys.")
    identity: SecretRef | None = Field(
        default=None,
        description="Reference to the backup identity, used by the sample restore check.",
    )

    def load_recipients(self, base: Path) -> list[str]:
        """Literal recipients plus the lines of `file:` recipients files (see `load_recipients`)."""
        return load_recipients(self.recipients, base, "backups.recipients")
