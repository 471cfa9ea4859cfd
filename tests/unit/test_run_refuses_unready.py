"""`handover run` refuses, before any flow run exists, what `validate` refuses."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

import flows.commands  # noqa: F401  (registers `run` on the app)
from handover.cli import _register, app

_register()  # `validate` too: the run refuses what it refuses, with the same line

DEMO = Path(__file__).resolve().parents[2] / "playbooks" / "examples" / "demo.yaml"


def test_run_without_a_contact_exits_2_naming_the_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = re.sub(
        r"      contacts:\n        - \{name: Camille.*\n        - \{name: Hugo.*\n",
        "",
        DEMO.read_text(),
        count=1,
    )
    playbook = tmp_path / "p.yaml"
    playbook.write_text(text)
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")  # never reached
    result = CliRunner().invoke(app, ["run", "takeover", str(playbook)])
    assert result.exit_code == 2
    assert "p.yaml:" in result.output and "no contact for the provider" in result.output
    assert "Traceback" not in result.output


def test_run_refuses_a_documentation_source_on_a_host_outside_the_perimeter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same line `validate` prints for it, exit 2, and no flow run (no server reached)."""
    source = "      host: files01\n      path: /srv/docs\n"
    assert source in DEMO.read_text(), "the demo's documentation source is not on files01 any more"
    text = DEMO.read_text().replace(source, source.replace("files01", "nas99"), 1)
    playbook = tmp_path / "p.yaml"
    playbook.write_text(text)
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")  # never reached
    validated = CliRunner().invoke(app, ["validate", str(playbook)], env={"COLUMNS": "250"})
    assert validated.exit_code != 0
    expected = [line for line in validated.output.splitlines() if "unknown host 'nas99'" in line]
    assert len(expected) == 1, validated.output
    refused = CliRunner().invoke(app, ["run", "takeover", str(playbook)], env={"COLUMNS": "250"})
    assert refused.exit_code == 2, refused.output
    assert "Traceback" not in refused.output and "Prefect UI" not in refused.output
    line = expected[0].split("p.yaml:", 1)[1].strip()
    assert "documentation.sources[0].host: unknown host" in line, line
    assert line in " ".join(refused.output.split()), refused.output


def test_a_documentation_export_not_yet_beside_the_playbook_does_not_stop_the_run(
    tmp_path: Path,
) -> None:
    """Only the perimeter error is refused: a missing export is a warning (it may come later)."""
    from flows.commands import _refuse_unready
    from handover.contract.loader import load_playbook

    text = DEMO.read_text().replace(
        "      host: files01\n      path: /srv/docs\n", "      file: later-export.zip\n", 1
    )
    assert "later-export.zip" in text
    playbook = tmp_path / "p.yaml"  # no later-export.zip beside it
    playbook.write_text(text)
    _refuse_unready(load_playbook(playbook), playbook)  # does not raise
