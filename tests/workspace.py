"""A demo workspace for flow tests: sandbox estate, keys, vault, playbook, in a temp folder.

The demo playbook names its paths relative to the working directory
(`.handover/demo/...`), so a workspace chdirs into its folder and points
HANDOVER_HOME at `<folder>/.handover`, the layout `handover demo` uses.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT


@dataclass
class Workspace:
    root: Path
    playbook: Path
    client_key: Path
    contract: str = "demo-estate"

    @property
    def home(self) -> Path:
        return self.root / ".handover"


def make_workspace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, vault: bool = True
) -> Workspace:
    from handover.demo.credentials import prepare_vault
    from handover.demo.estate import build_demo_estate
    from handover.demo.incidents import record_demo_incidents
    from handover.demo.keys import make_demo_keys

    root = tmp_path / "ws"
    root.mkdir()
    monkeypatch.chdir(root)
    monkeypatch.setenv("HANDOVER_HOME", str(root / ".handover"))
    monkeypatch.setenv("HANDOVER_VAULT_KEY_FILE", str(tmp_path / "vault.key"))
    build_demo_estate(root / ".handover" / "demo")
    keys = make_demo_keys(root / ".handover" / "demo" / "keys")
    # The demo playbook names client.allowed_signers; --accept signs with this key.
    monkeypatch.setenv("HANDOVER_TEST_SIGNER_KEY", str(keys.client_signing_key))
    playbook = root / "demo.yaml"
    shutil.copy(PROJECT_ROOT / "playbooks" / "examples" / "demo.yaml", playbook)
    if vault:
        prepare_vault("demo-estate")
    record_demo_incidents("demo-estate")  # the operational run needs an incident journal
    return Workspace(root=root, playbook=playbook, client_key=keys.client_key)
