"""Reversibility plan: exit calendar, recipients, returned data, and the client's checks."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from handover.contract.checklists import load_phase_template
from handover.contract.playbook import Playbook
from handover.documents.reversibility_plan import reversibility_plan
from tests.unit.documents_fixtures import NOW, check_html, in_language, load_test_playbook


@pytest.fixture(scope="module")
def playbook(tmp_path_factory: pytest.TempPathFactory) -> Playbook:
    """In English (the French rendering is tested in test_documents_language)."""
    return in_language(load_test_playbook(tmp_path_factory), "en")


def test_reversibility_plan_computes_deadlines_from_the_notice(playbook: Playbook) -> None:
    doc = reversibility_plan(playbook, NOW, notice_date=date(2026, 12, 31))
    md = doc.markdown
    assert "| Exit notice received | — | 2026-12-31 |" in md
    assert "| End of notice, transition starts | 2 months | 2027-02-28 |" in md
    assert (
        "| Switch-over: end of transition, final export and delivery | 30 days | 2027-03-30 |"
        in (md)
    )
    assert "| End of retrieval period: erasure from | 30 days | 2027-04-29 |" in md
    assert (
        "| Provider copies erased, certificate issued, at the latest | 30 days | 2027-05-29 |"
        in (md)
    )
    assert (
        "- **Transition's legal basis:** Data Act art. 25(2): transitional period of 30 days "
        "(30 days at most)" in md
    )
    assert "- **Final export:** on the switch-over, 2027-03-30, not before" in md
    assert (
        "- **Erasure window:** from 2027-04-29 to 2027-05-29; earlier only if the client's "
        "signed acceptance asks for early erasure" in md
    )
    assert "(example)" not in md
    assert "Code de commerce L123-22, 10 ans" in md
    assert "| invoices | kept by the provider for its own accounts |" in md
    assert "`file:.handover/demo/keys/client.recipients`" in md
    assert "`.handover/demo/deliveries`" in md
    assert "KeePass KDBX 4" in md
    assert "| runbooks and operating documentation produced for the client | client |" in md
    assert "SHA256:6tSlLenhk/42CIbjzEFAbLAeFdYkD9o7Ars46YsWYpw" in md  # ssh-keygen -lf
    assert "-n handover-bundle -s SHA256SUMS.sig < SHA256SUMS" in md
    check_html(doc)


def test_reversibility_plan_without_notice_shows_an_example_and_expanded_recipients(
    playbook: Playbook,
) -> None:
    recipient = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"
    doc = reversibility_plan(playbook, NOW, recipients=[recipient])
    assert "| Step | Delay | Date (example) |" in doc.markdown
    assert "dates are an example for a notice given on 2026-02-03" in doc.markdown
    assert f"| 1 | age X25519 | `{recipient}` |" in doc.markdown
    assert "client.recipients" not in doc.markdown


def _with_deadlines(playbook: Playbook, **deadlines: Any) -> Playbook:
    data = playbook.model_dump(mode="json", exclude_none=True)
    data["reversibility"]["deadlines"].update(deadlines)
    return Playbook.model_validate(data)


def test_reversibility_plan_states_an_extended_transition_and_its_basis(
    playbook: Playbook,
) -> None:
    extended = _with_deadlines(
        playbook,
        transition_days=120,
        transition_extension={
            "basis": "contractual-tuilage",
            "justification": "the incoming team runs the estate beside the provider",
            "clause": "Art. 12.2 Tuilage",
        },
    )
    md = reversibility_plan(extended, NOW, notice_date=date(2026, 3, 1)).markdown
    assert (
        "| Switch-over: end of transition, final export and delivery | 120 days | 2026-08-29 |"
        in (md)
    )
    assert "| End of retrieval period: erasure from | 30 days | 2026-09-28 |" in md
    assert (
        "- **Transition's legal basis:** Contractual reversibility phase with overlap (tuilage), "
        "Art. 12.2 Tuilage: 120 days (at most 180 days, handover's bound): the incoming team "
        "runs the estate beside the provider" in md
    )
    assert "before the switch-over on 2026-08-29, the provider hands" in md


def test_reversibility_plan_lists_the_knowledge_transfer_items_of_the_checklist(
    playbook: Playbook,
) -> None:
    language = playbook.contract.language  # the checklist's titles are in the contract's
    items = load_phase_template("reversibility", language)
    template = [i for i in items if i["id"].startswith("knowledge")]
    assert template, "the reversibility template holds knowledge-transfer items"
    data = playbook.model_dump(mode="json", exclude_none=True)
    data["phases"]["reversibility"] = {
        "add": [
            {
                "id": "knowledge-transfer-network",
                "title": "Network walkthrough with the incoming team",
                "clause": "Art. 12.2 Transfert de compétences",
                "owner": "provider",
                "evidence_kind": "human",
            }
        ],
        "waive": [{"id": t["id"], "reason": "no incoming team"} for t in template[1:]],
    }
    doc = reversibility_plan(Playbook.model_validate(data), NOW)
    section = doc.markdown.split("## Knowledge transfer")[1]
    section = section.split("\n## ")[0]
    assert "before the switch-over on 2026-05-03 (example)" in section
    assert (
        "| `knowledge-transfer-network` | Network walkthrough with the incoming team | provider "
        "| human | Art. 12.2 Transfert de compétences |" in section
    )
    for item in template:  # whatever the template holds under that id prefix, in its order
        assert f"| `{item['id']}` | {item['title']}" in section
    for item in template[1:]:
        assert f"{item['title']} (waived: no incoming team)" in section
    assert "`exit-notice`" not in section and "`bundle-sealed`" not in section
    check_html(doc)
