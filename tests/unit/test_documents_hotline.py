"""Hotline and on-site procedure: hours, channels, severities, escalation and on-site delay."""

from __future__ import annotations

import pytest

from handover.contract.playbook import Playbook
from handover.documents.hotline_procedure import hotline_procedure
from tests.unit.documents_fixtures import check_html, in_language, load_test_playbook


@pytest.fixture(scope="module")
def playbook(tmp_path_factory: pytest.TempPathFactory) -> Playbook:
    """In English (the French rendering is tested in test_documents_language)."""
    return in_language(load_test_playbook(tmp_path_factory), "en")


def test_hotline_procedure_states_hours_channels_severities_onsite(playbook: Playbook) -> None:
    doc = hotline_procedure(playbook)
    md = doc.markdown
    assert "- **Opening hours:** Mon-Fri 08:00-18:00" in md
    assert "- **Channels:** phone, email" in md
    assert "- **Phone:** +33 1 84 88 00 00" in md
    assert "| **P4** | Demande d'évolution ou d'information | 8 h | 3 d |" in md
    assert "| 2 | Hugo Bernard | hugo.bernard@handover.example | +33 1 84 88 00 11 | 1 h |" in md
    assert "a technician on site within 8 h" in md
    assert "- **Maintenance window:** Tue 20:00-23:00" in md
    assert "99.5%, reported monthly" in md
    check_html(doc)
