"""The documentation that leaves with the client, found over the map of the contract's folder.

Every phase's reports, every phase's checklist and the audit log, named as
the bundle's index names them (`documents/<phase>/...`, `checklists/...`,
`audit/audit.log`). Apart from the bundle writer, which seals whatever it is
given, because what the client receives is the contract's business.
"""

from __future__ import annotations

from handover.phases import PHASES
from handover.state.layout import ContractPaths


def exit_documents(paths: ContractPaths) -> dict[str, str]:
    """Index-relative name → file: every phase's documents, the checklists and the audit log."""
    documents: dict[str, str] = {}
    for phase in PHASES:
        folder = paths.documents_dir(phase)
        if folder.is_dir():
            for path in sorted(folder.iterdir()):
                if path.is_file():
                    documents[f"documents/{phase}/{path.name}"] = str(path)
        checklist = paths.checklist_file(phase)
        if checklist.is_file():
            documents[f"checklists/{phase}.json"] = str(checklist)
    audit = paths.audit_log
    if audit.is_file():
        documents["audit/audit.log"] = str(audit)
    checkpoints = paths.audit_checkpoints
    if checkpoints.is_file():
        documents["audit/checkpoints.jsonl"] = str(checkpoints)
    return documents
