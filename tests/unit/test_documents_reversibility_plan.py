"""Reversibility plan: exit calendar, recipients, returned data, and the client's checks."""

from __future__ import annotations

from datetime import date

import pytest

from handover.contract.playbook import Playbook
from handover.documents.reversibility_plan import reversibility_plan
from tests.unit.documents_fixtures import NOW, check_html, load_test_playbook


@pytest.fixture(scope="module")
def playbook(tmp_path_factory: pytest.TempPathFactory) -> Playbook:
    return load_test_playbook(tmp_path_factory)


def test_reversibility_plan_computes_deadlines_from_the_notice(playbook: Playbook) -> None:
    doc = reversibility_plan(playbook, NOW, notice_date=date(2026, 12, 31))
    md = doc.markdown
    assert "| Exit notice received | — | 2026-12-31 |" in md
    assert "| End of notice, switching starts | 2 months | 2027-02-28 |" in md
    assert "| End of transition: bundle delivered | 30 days | 2027-03-30 |" in md
    assert "| End of retrieval period | 30 days | 2027-04-29 |" in md
    assert "| Provider copies erased, certificate issued | 30 days | 2027-05-29 |" in md
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
