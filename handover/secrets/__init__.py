"""Secrets: references (env:, file:, prefect-secret:, vault:), the vault, KDBX/CSV import-export.

Importing the package registers the `vault:` scheme, so that any code resolving
references through `handover.secrets.references` can resolve vault references.
"""

from handover.secrets import vault_references as _vault_references  # noqa: F401  (registers vault:)
