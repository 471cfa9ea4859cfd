"""The index of the client's own documents, as a section of the baseline report.

The takeover collects the documents the playbook's `documentation.sources`
name; the report lists each source (what it gave, or why nothing) and each
document with its size and SHA-256, so the client can check, on the copy
the exit bundle returns, that each is the document handed over on day one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from handover.documents.blocks import Inline, badge, code
from handover.documents.builder import DocumentBuilder
from handover.sizes import size_text

if TYPE_CHECKING:
    from handover.contract.playbook import Playbook
    from handover.estate.client_documents import ClientDocumentsIndex


def client_documents_section(
    b: DocumentBuilder, playbook: Playbook, index: ClientDocumentsIndex | None
) -> None:
    """Sources and documents collected; a source named but not collected is said so."""
    t = b.t
    b.h(2, t._("Client documentation"))
    sources = playbook.documentation.sources
    if not sources:
        b.p(t._("The playbook names no source of client documentation."), "note")
        return
    by_name = {s.name: s for s in (index.sources if index else [])}
    rows: list[list[Inline]] = []
    for spec in sources:
        got = by_name.get(spec.name)
        if got is None:
            state = badge(t._("not collected"), "failed")
            rows.append([code(spec.name), code(spec.origin), "—", "—", state])
        elif got.error:
            state = badge(t._("failed: {error}", error=got.error), "failed")
            rows.append([code(spec.name), code(spec.origin), "—", "—", state])
        else:
            text = (
                t._("collected, {count} link(s) skipped", count=len(got.skipped))
                if got.skipped
                else t._("collected")
            )
            rows.append(
                [
                    code(spec.name),
                    code(spec.origin),
                    str(got.files),
                    size_text(got.bytes),
                    badge(text, "done"),
                ]
            )
    b.table([t._("Source"), t._("Where"), t._("Files"), t._("Size"), t._("State")], rows)
    documents = index.documents if index else []
    b.h(3, t._("Documents"))
    b.table(
        [t._("Source"), t._("Document"), t._("Size"), "SHA-256"],
        [[code(d.source), code(d.name), size_text(d.size), code(d.sha256)] for d in documents],
        t._("No document was collected."),
    )
    b.p(
        t._(
            "The exit bundle returns each document under client-documents/<source>/; "
            "sha256sum on the returned copy prints the SHA-256 above."
        ),
        "note",
    )
