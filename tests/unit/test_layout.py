"""The map of a contract's folder: the paths the writers, the readers and the erasure share."""

from __future__ import annotations

from handover.checklist.store import ChecklistStore
from handover.phases import PHASES, Phase
from handover.secrets.vault import Vault
from handover.state.home import contract_dir
from handover.state.layout import ContractPaths

CONTRACT = "acme-2026"


def test_every_path_is_inside_the_contract_folder() -> None:
    paths = ContractPaths(CONTRACT)
    root = contract_dir(CONTRACT)
    assert paths.root == root
    assert paths.phase_dir(Phase.TAKEOVER) == root / "takeover"
    assert paths.documents_dir(Phase.OPERATIONAL) == root / "operational" / "documents"
    assert paths.inventories_dir(Phase.REVERSIBILITY) == root / "reversibility" / "inventory"
    assert paths.bundle_work_dir("b1") == root / "bundles" / "b1"
    assert paths.credentials_export_dir("b1") == root / "reversibility" / "private" / "b1"
    assert paths.incidents_file == root / "incidents.json"
    assert paths.incidents_measured == root / "operational" / "incidents.json"
    assert paths.delivery_record == root / "reversibility" / "delivery.json"
    assert paths.known_hosts == root / "known_hosts"


def test_working_copies_are_the_folders_of_client_data_never_the_evidence() -> None:
    paths = ContractPaths(CONTRACT)
    folders = [folder for folder, _what in paths.working_copies()]
    assert paths.baselines_dir in folders and paths.drill_dir in folders
    assert paths.inventories_dir(Phase.TAKEOVER) in folders
    assert paths.inventories_dir(Phase.REVERSIBILITY) in folders
    kept = [paths.checklists_dir, paths.audit_log, paths.vault_file, paths.known_hosts]
    for folder in folders:
        assert folder.is_relative_to(paths.root)
        assert not any(k.is_relative_to(folder) or folder.is_relative_to(k) for k in kept)
        for phase in PHASES:
            assert not paths.documents_dir(phase).is_relative_to(folder)


def test_the_core_finds_its_files_through_the_map() -> None:
    paths = ContractPaths(CONTRACT)
    store = ChecklistStore()
    for phase in PHASES:
        assert store.path(CONTRACT, phase) == paths.checklist_file(phase)
    assert store.audit_log(CONTRACT).path == paths.audit_log
    assert Vault(CONTRACT).path == paths.vault_file
