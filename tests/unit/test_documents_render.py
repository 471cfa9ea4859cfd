"""Rendering: Markdown escaping, secrets scrubbed from host text, both forms written atomically."""

from __future__ import annotations

from pathlib import Path

import pytest

from handover.contract.playbook import Playbook
from handover.documents.formatting import scrub
from handover.documents.hotline_procedure import hotline_procedure
from handover.documents.render_markdown import escape_line_start
from handover.documents.reversibility_plan import reversibility_plan
from tests.unit.documents_fixtures import NOW, in_language, load_test_playbook


@pytest.fixture(scope="module")
def playbook(tmp_path_factory: pytest.TempPathFactory) -> Playbook:
    """In English (the French rendering is tested in test_documents_language)."""
    return in_language(load_test_playbook(tmp_path_factory), "en")


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("mysql -uroot -pS3cret db", "mysql -uroot -p*** db"),
        ("curl --password=S3cret x", "curl --password=*** x"),
        ("PGPASSWORD=S3cret pg_dump", "PGPASSWORD=*** pg_dump"),
        ("rclone https://bob:S3cret@host/x", "rclone https://bob:***@host/x"),
        ("curl -H 'Authorization: Bearer S3cret'", "curl -H 'Authorization: Bearer ***"),
        ("tar -cpf /b.tar /etc", "tar -cpf /b.tar /etc"),
    ],
)
def test_scrub_masks_inline_secrets(line: str, expected: str) -> None:
    assert scrub(line) == expected


def test_document_write_is_atomic_and_writes_both_forms(playbook: Playbook, tmp_path: Path) -> None:
    doc = hotline_procedure(playbook)
    paths = doc.write(tmp_path / "docs")
    assert [p.name for p in paths] == ["hotline-procedure.md", "hotline-procedure.html"]
    assert paths[0].read_text() == doc.markdown and paths[1].read_text() == doc.html
    assert sorted(p.name for p in (tmp_path / "docs").iterdir()) == [
        "hotline-procedure.html",
        "hotline-procedure.md",
    ]


def test_markdown_escapes_line_starts_and_table_pipes(playbook: Playbook) -> None:
    data = playbook.model_dump()
    data["reversibility"]["exempted"] = [
        {"category": "a|b", "reason": "# not a heading", "legal_basis": "1. not a list"}
    ]
    doc = reversibility_plan(Playbook.model_validate(data), NOW)
    assert "| a\\|b | # not a heading | 1. not a list |" in doc.markdown


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("# title", "\\# title"),
        ("- item", "\\- item"),
        ("2026. a year", "2026\\. a year"),
        ("> quote", "\\> quote"),
        ("plain 1. text", "plain 1. text"),
    ],
)
def test_markdown_line_starts_are_escaped(text: str, expected: str) -> None:
    assert escape_line_start(text) == expected
