"""The documentation that leaves with the client, listed over the map of the contract's folder."""

from __future__ import annotations

from pathlib import Path

from handover.exit.documentation import exit_documents
from handover.phases import Phase
from handover.state.layout import ContractPaths


def test_every_phase_documents_the_checklists_and_the_audit_log(tmp_path: Path) -> None:
    paths = ContractPaths("acme-2026", contracts_root=tmp_path)
    assert exit_documents(paths) == {}
    takeover = paths.documents_dir(Phase.TAKEOVER)
    takeover.mkdir(parents=True)
    (takeover / "baseline.md").write_text("# b\n")
    (takeover / "baseline.html").write_text("<p>b</p>")
    (takeover / "not-a-file").mkdir()
    paths.checklists_dir.mkdir()
    paths.checklist_file(Phase.TAKEOVER).write_text("{}")
    paths.checklist_file(Phase.OPERATIONAL).write_text("{}")
    paths.audit_log.write_text("{}\n")

    assert exit_documents(paths) == {
        "documents/takeover/baseline.html": str(takeover / "baseline.html"),
        "documents/takeover/baseline.md": str(takeover / "baseline.md"),
        "checklists/takeover.json": str(paths.checklist_file(Phase.TAKEOVER)),
        "checklists/operational.json": str(paths.checklist_file(Phase.OPERATIONAL)),
        "audit/audit.log": str(paths.audit_log),
    }
