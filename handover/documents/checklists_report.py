"""The checklists of the contract as one document (suivi des obligations).

Exported into the bundle at exit so the client keeps, in a readable form,
what was done, waived or left open in every phase.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from handover.checklist.model import Checklist
from handover.documents.builder import DocumentBuilder
from handover.documents.document import Document
from handover.documents.sections import checklist_sections, header_fields
from handover.i18n import Texts

if TYPE_CHECKING:
    from handover.contract.playbook import Playbook


def checklists_report(
    playbook: Playbook, checklists: Sequence[Checklist], generated_at: datetime | None = None
) -> Document:
    """The checklists of the contract as one document (exported into the bundle at exit)."""
    b = DocumentBuilder(Texts.for_contract(playbook.contract))
    t = b.t
    header_fields(b, playbook, generated_at)
    open_points = checklist_sections(b, checklists, level=2)
    b.h(2, t._("Open items"))
    b.bullets(open_points, empty=t._("None: every item is done or waived."))
    return b.document("checklists", t._("Checklists: {title}", title=playbook.contract.title))
