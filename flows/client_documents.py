"""Takeover's collection of the client's own documents, as evidence of `documentation-collected`.

Apart from `flows/takeover.py` so that the phase reads as its items: the
collection runs as one task, its index becomes the item's evidence (its
SHA-256 covers every document's), and a source that gave nothing fails the
item with one line naming it.
"""

from __future__ import annotations

from flows._phase import StepFailed
from handover.checklist.model import Evidence, evidence_for_file
from handover.contract.playbook import Playbook
from handover.estate.client_documents import INDEX_NAME
from handover.state.layout import ContractPaths
from tasks.client_documents import collect_documents
from tasks.runtime import flow_run_id


def client_documents_evidence(playbook_path: str, playbook: Playbook) -> list[Evidence]:
    """Collect the playbook's documentation sources; the index's evidence, or StepFailed."""
    if not playbook.documentation.sources:
        return []
    summaries = collect_documents(playbook_path)
    failed = [f"documentation source {s.name}: {s.error}" for s in summaries if s.error]
    if failed:
        raise StepFailed("; ".join(failed))
    index = ContractPaths(playbook.contract_id).client_documents_dir / INDEX_NAME
    return [evidence_for_file(index, "document", flow_run_id())]
