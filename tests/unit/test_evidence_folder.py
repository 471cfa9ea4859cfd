"""HANDOVER_EVIDENCE_URL=file:///…: the contract folders in a folder every worker mounts."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from handover.errors import UsageError
from handover.state.home import EVIDENCE_URL_ENV, contracts_home, shared_contracts_folder
from handover.state.layout import ContractPaths


def test_unset_keeps_the_contract_folders_under_the_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HANDOVER_HOME", str(tmp_path / "home"))
    monkeypatch.delenv(EVIDENCE_URL_ENV, raising=False)
    assert shared_contracts_folder() is None
    assert ContractPaths("acme").root == tmp_path / "home" / "contracts" / "acme"


def test_a_file_url_puts_every_contract_folder_in_the_shared_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HANDOVER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv(EVIDENCE_URL_ENV, f"file://{tmp_path}/shared%20nfs")
    paths = ContractPaths("acme")
    assert paths.root == tmp_path / "shared nfs" / "acme"
    assert paths.phase_dir("takeover").parent == tmp_path / "shared nfs" / "acme"
    assert stat.S_IMODE((tmp_path / "shared nfs").stat().st_mode) == 0o700
    assert stat.S_IMODE(paths.root.stat().st_mode) == 0o700
    assert not (tmp_path / "home" / "contracts" / "acme").exists()


def test_an_s3_url_leaves_each_workers_copy_under_its_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HANDOVER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv(EVIDENCE_URL_ENV, "s3://evidence/team")
    assert contracts_home() == tmp_path / "home" / "contracts"


@pytest.mark.parametrize("url", ["file://nas/evidence", "file:relative/folder"])
def test_a_file_url_that_names_no_absolute_local_folder_is_refused(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(EVIDENCE_URL_ENV, url)
    with pytest.raises(UsageError, match="file:///absolute/path"):
        shared_contracts_folder()
