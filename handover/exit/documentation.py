"""The documentation that leaves with the client, found over the map of the contract's folder.

Every phase's reports, every phase's checklist and the audit log, named as
the bundle's index names them (`documents/<phase>/...`, `checklists/...`,
`audit/audit.log`). Apart from the bundle writer, which seals whatever it is
given, because what the client receives is the contract's business.
"""

from __future__ import annotations

from handover.estate.client_documents import INDEX_NAME, document_files, read_index
from handover.phases import PHASES
from handover.state.layout import ContractPaths

CLIENT_DOCUMENTS = "client-documents"


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


def client_documents(paths: ContractPaths) -> dict[str, str]:
    """Index-relative name → file: the client's own documents collected at takeover.

    Named `client-documents/<source>/<path in the source>`, beside their
    `client-documents/index.json` (sizes and SHA-256). Taken from the index,
    so only what the takeover recorded goes back, and read when the bundle
    is sealed rather than kept in the exit state: these names are client
    file names, which the exit state never holds. A document gone since the
    takeover is left out here; the index still lists it, so its absence shows.
    """
    folder = paths.client_documents_dir
    index = read_index(folder)
    if index is None:
        return {}
    documents = {f"{CLIENT_DOCUMENTS}/{INDEX_NAME}": str(folder / INDEX_NAME)}
    for name, path in document_files(folder, index).items():
        if path.is_file() and not path.is_symlink():
            documents[f"{CLIENT_DOCUMENTS}/{name}"] = str(path)
    return documents
