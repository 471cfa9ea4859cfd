"""Status words the documents and the erasure certificate share, in the reader's language.

A checklist item's status and an erasure target's status are recorded as
English identifiers (`done`, `erased`); shown to a reader they are words of
the document's language. Kept here, beside the catalogue, because both the
documents and the exit's certificate show them and neither may import the other.
"""

from __future__ import annotations

from handover.i18n import Texts


def status_text(t: Texts, status: str) -> str:
    """A checklist status as the reader's language says it (`done`, `fait`...)."""
    words = {
        "done": t._("done"),
        "waived": t._("waived"),
        "failed": t._("failed"),
        "running": t._("running"),
        "pending": t._("pending"),
    }
    return words.get(status, status)


def erasure_status_text(t: Texts, status: str) -> str:
    """An erasure target's status in the reader's language (`erased`, `effacé`...)."""
    words = {
        "erased": t._("erased"),
        "absent": t._("absent"),
        "failed": t._("failed"),
        "refused": t._("refused"),
        "postponed": t._("postponed"),
    }
    return words.get(status, status_text(t, status))
