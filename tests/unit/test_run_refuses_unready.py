"""`handover run` refuses, before any flow run exists, what `validate` refuses."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

import flows.commands  # noqa: F401  (registers `run` on the app)
from handover.cli import app

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
