"""Checklists report: every phase's items and the ones still open."""

from __future__ import annotations

from pathlib import Path

import pytest

from handover.checklist.store import ChecklistStore
from handover.checklist.templates import draft_checklist
from handover.contract.playbook import Playbook, phase_items
from handover.documents.checklists_report import checklists_report
from handover.phases import Phase
from tests.unit.documents_fixtures import NOW, check_html, in_language, load_test_playbook


@pytest.fixture(scope="module")
def playbook(tmp_path_factory: pytest.TempPathFactory) -> Playbook:
    """In English (the French rendering is tested in test_documents_language)."""
    return in_language(load_test_playbook(tmp_path_factory), "en")


def test_checklists_report_lists_every_phase_and_open_items(
    playbook: Playbook, tmp_path: Path
) -> None:
    store = ChecklistStore(tmp_path)
    contract = playbook.contract.id
    store.open(contract, Phase.TAKEOVER, phase_items(playbook, "takeover"))
    store.start(contract, Phase.TAKEOVER, "inventory", "flow")
    store.fail(contract, Phase.TAKEOVER, "inventory", "flow", "db01: unreachable")
    implementation = draft_checklist(
        contract, Phase.IMPLEMENTATION, phase_items(playbook, "implementation")
    )
    doc = checklists_report(playbook, [store.load(contract, Phase.TAKEOVER), implementation], NOW)
    md = doc.markdown
    assert doc.name == "checklists"
    assert "## Takeover" in md and "## Implementation" in md
    assert "| `credentials-received` |" in md and "Démo: hôtes locaux" in md
    assert "- Takeover: `inventory` is failed: db01: unreachable" in md
    assert "- Implementation: `runbooks` is pending" in md
    check_html(doc)
