"""The demo contract's credential vault: a few client credentials and one the provider created.

Apart from the sandbox hosts (`estate.py`) and keys (`keys.py`): the demo
and the flow tests fill the vault the same way, so the exit exports the same
KDBX and the tests can check its entries.
"""

from __future__ import annotations

import os
import secrets

from handover.secrets.references import Secret
from handover.secrets.vault import CreatedBy, Kind, Vault, VaultEntry
from handover.secrets.vault_key import KEY_ENV, create_key_file, default_key_file

DEMO_CREDENTIALS = [
    # name, kind, username, url, group, created_by
    (
        "db01-postgres",
        "password",
        "postgres",
        "postgresql://db01:5432",
        "Servers/Database",
        "client",
    ),
    (
        "web01-admin",
        "password",
        "admin",
        "https://web01.demo-estate.example/admin",
        "Servers/Web",
        "client",
    ),
    (
        "files01-backup-operator",
        "password",
        "svc-backup",
        "smb://files01",
        "Servers/Files",
        "provider",
    ),
]


def prepare_vault(contract: str) -> int:
    """The demo contract's vault: a few client credentials and one the provider created.

    Entries already there are kept (their values too); returns how many the vault holds.
    """
    # The vault key lives outside .handover/ (default ~/.config/handover/vault.key).
    if not os.environ.get(KEY_ENV) and not default_key_file().exists():
        create_key_file(default_key_file())
    vault = Vault(contract)
    vault.init()
    have = set(vault.names())
    for name, kind, username, url, group, created_by in DEMO_CREDENTIALS:
        if name in have:
            continue
        entry = VaultEntry(
            name=name,
            kind=Kind(kind),
            username=username,
            url=url,
            group=group,
            created_by=CreatedBy(created_by),
        )
        vault.add(entry, Secret(secrets.token_urlsafe(18).encode()))
    return len(vault.names())
