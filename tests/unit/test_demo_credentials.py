"""The demo contract's credential vault."""

from __future__ import annotations

from pathlib import Path

import pytest

from handover.demo.credentials import DEMO_CREDENTIALS, prepare_vault
from handover.secrets.vault import Vault


def test_prepare_vault_fills_the_demo_vault_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HANDOVER_VAULT_KEY_FILE", str(tmp_path / "vault.key"))
    monkeypatch.delenv("HANDOVER_VAULT_KEY", raising=False)
    assert prepare_vault("demo-estate") == len(DEMO_CREDENTIALS)
    assert (tmp_path / "vault.key").exists()  # created outside the handover home
    vault = Vault("demo-estate")
    before = vault.secret("web01-admin").reveal()
    assert prepare_vault("demo-estate") == len(DEMO_CREDENTIALS)
    assert vault.secret("web01-admin").reveal() == before  # existing values are kept
    providers = [e.name for e in vault.entries() if e.created_by == "provider"]
    assert providers == ["files01-backup-operator"]
