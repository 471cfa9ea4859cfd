"""Status words the documents and the erasure certificate share, in the reader's language.

A checklist item's status and an erasure target's status are recorded as
English identifiers (`done`, `erased`); shown to a reader they are words of
the document's language. Kept here, beside the catalogue, because both the
documents and the exit's certificate show them and neither may import the other.
"""

from __future__ import annotations

import re

from handover.i18n import N_, Texts


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


# What the erasure keeps as the provider's records (`handover.exit.erasure_targets`): recorded
# in English, shown in the certificate's language. A wording not listed is shown as recorded;
# a test renders `kept_records` in French so a changed wording is noticed.
_KEPT = {
    "evidence of how the contract was performed (the provider's own record)": N_(
        "evidence of how the contract was performed (the provider's own record)"
    ),
    "the contract's checklists (each item's status and evidence)": N_(
        "the contract's checklists (each item's status and evidence)"
    ),
    "the hash-chained audit log of every checklist change": N_(
        "the hash-chained audit log of every checklist change"
    ),
    "the incidents recorded during the contract": N_("the incidents recorded during the contract"),
    "the SSH host keys the provider trusted": N_("the SSH host keys the provider trusted"),
    "the Prefect run history (flow and task runs of this contract, their logs and artifacts)": N_(
        "the Prefect run history (flow and task runs of this contract, their logs and artifacts)"
    ),
    "another record of the contract's folder": N_("another record of the contract's folder"),
    "not one of the working copies the erasure deletes; kept with the contract's records": N_(
        "not one of the working copies the erasure deletes; kept with the contract's records"
    ),
    "the Prefect server the flows ran on": N_("the Prefect server the flows ran on"),
    (
        "the contract's checklists, audit log, signed checkpoints, journals and trusted SSH host "
        "keys, in the team's state database"
    ): N_(
        "the contract's checklists, audit log, signed checkpoints, journals and trusted SSH host "
        "keys, in the team's state database"
    ),
    (
        "the contract's evidence files and reports (the working copies in it are erased, listed "
        "above), and their index"
    ): N_(
        "the contract's evidence files and reports (the working copies in it are erased, listed "
        "above), and their index"
    ),
}
_PHASE_REPORTS = re.compile(r"the (\w+) phase's reports")
_PHASE_EVIDENCE = re.compile(
    r"the (\w+) phase's evidence files \(the working copies inside it are erased, listed above\)"
)
_PREFECT_SERVER = re.compile(r"Prefect server (\S+)")


def phase_name(t: Texts, phase: str) -> str:
    """A phase's identifier as a word of the reader's language (`takeover`, `reprise`...)."""
    words = {
        "takeover": t._("takeover"),
        "implementation": t._("implementation"),
        "operational": t._("operational"),
        "reversibility": t._("reversibility"),
    }
    return words.get(phase, phase)


def kept_text(t: Texts, recorded: str) -> str:
    """What the erasure keeps, or why, in the reader's language (as recorded if not known)."""
    if recorded in _KEPT:
        return t._(_KEPT[recorded])
    if match := _PHASE_REPORTS.fullmatch(recorded):
        return t._("the {phase} phase's reports", phase=phase_name(t, match.group(1)))
    if match := _PHASE_EVIDENCE.fullmatch(recorded):
        return t._(
            "the {phase} phase's evidence files (the working copies inside it are erased, "
            "listed above)",
            phase=phase_name(t, match.group(1)),
        )
    if match := _PREFECT_SERVER.fullmatch(recorded):
        return t._("Prefect server {url}", url=match.group(1))
    return recorded


def owner_text(t: Texts, owner: str) -> str:
    """Who owns a deliverable or an item (`provider`, `client`, `third-party`)."""
    words = {
        "provider": t._("provider"),
        "client": t._("client"),
        "third-party": t._("third party"),
    }
    return words.get(owner, owner)


def evidence_kind_text(t: Texts, kind: str) -> str:
    """The kind of evidence a checklist item expects."""
    words = {
        "document": t._("document"),
        "report": t._("report"),
        "bundle": t._("bundle"),
        "inventory": t._("inventory"),
        "snapshot": t._("snapshot"),
        "human": t._("human"),
        "log": t._("log"),
        "certificate": t._("certificate"),
    }
    return words.get(kind, kind)
