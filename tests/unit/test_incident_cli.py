"""`handover incident`: open, ack, resolve, list, import; named, journaled and audited."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from handover.checklist.store import ChecklistStore
from handover.cli import _register, app
from tests.unit.documents_fixtures import write_test_playbook

_register()
runner = CliRunner()
DATA = Path(__file__).parents[1] / "data" / "incidents"
CSV_SECTION = """\
operations:
  incidents:
    csv:
      columns: {id: "Numéro", opened: Ouverture, acknowledged: Prise en compte,
                resolved: "Résolution", severity: "Priorité", title: Titre}
      delimiter: ";"
      datetime_format: "%d/%m/%Y %H:%M"
      severities: {"Très haute": P1, Haute: P2}
"""


OPEN = ["open", "demo-estate", "-s", "P1", "--title", "x"]


def invoke(*args: str | Path) -> tuple[int, str]:
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, result.output


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HANDOVER_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("HANDOVER_ACTOR", raising=False)
    return tmp_path / "home" / "contracts" / "demo-estate"


def journal_lines(home: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in (home / "incidents.jsonl").read_text().splitlines()]


def test_open_ack_resolve_list_with_names_and_backdated_times(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out = invoke(
        "incident", "open", "demo-estate", "--severity", "p1", "--title", "Messagerie [HS]",
        "--at", "2026-03-02T09:15+01:00", "--as", "Claire Martin",
    )  # fmt: skip
    assert code == 0, out
    assert "incident INC-1 (P1) opened at 2026-03-02T09:15:00+01:00 by Claire Martin" in out
    monkeypatch.setenv("HANDOVER_ACTOR", "hotline@provider")
    code, out = invoke("incident", "ack", "demo-estate", "INC-1", "--at", "2026-03-02T08:40Z")
    assert code == 0, out
    code, out = invoke("incident", "resolve", "demo-estate", "INC-1")  # now
    assert code == 0, out
    records = journal_lines(home)
    assert [(r["event"], r["actor"]) for r in records] == [
        ("opened", "Claire Martin"),
        ("acknowledged", "hotline@provider"),
        ("resolved", "hotline@provider"),
    ]
    audit = [e["event"] for e in ChecklistStore().audit_log("demo-estate").entries()]
    assert audit == ["incident.opened", "incident.acknowledged", "incident.resolved"]
    code, out = invoke("incident", "list", "demo-estate")
    assert code == 0
    assert out.startswith("INC-1\tP1\t2026-03-02T09:15:00+01:00\t2026-03-02T08:40:00+00:00\t")
    assert out.rstrip().endswith("manual\tMessagerie [HS]")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([*OPEN[:3], "P7", *OPEN[4:]], "--severity 'P7': one of P1, P2, P3, P4"),
        ([*OPEN, "--at", "2026-03-02 09:15"], "give the time zone"),
        ([*OPEN, "--at", "yesterday"], "not a date and time"),
        ([*OPEN, "--as", " "], "--as: give a name"),
        (["ack", "demo-estate", "INC-9"], "no incident INC-9 in the journal"),
        (["open", "Not/A/Slug", "-s", "P1", "--title", "x"], "must be a slug"),
        (["list", "demo-estate"], "no incident journal yet"),
    ],
)  # fmt: skip
def test_usage_errors_are_one_line_and_exit_2(home: Path, args: list[str], message: str) -> None:
    code, out = invoke("incident", *args)
    assert code == 2, out
    assert message in out
    assert "Traceback" not in out


def test_the_playbook_scale_is_used_when_given(home: Path, tmp_path: Path) -> None:
    playbook = write_test_playbook(tmp_path)  # severities P1, P2, P4
    code, out = invoke(
        "incident", "open", "demo-estate", "-s", "P3", "--title", "x", "--playbook", playbook
    )
    assert code == 2 and "one of P1, P2, P4" in out
    code, out = invoke(
        "incident", "open", "other", "-s", "P1", "--title", "x", "--playbook", playbook
    )
    assert code == 2 and "it is contract 'demo-estate', not 'other'" in out


def test_import_glpi_twice_is_idempotent_and_bad_rows_are_located(home: Path) -> None:
    export = DATA / "glpi_tickets.json"
    code, out = invoke("incident", "import", "demo-estate", export, "--format", "glpi")
    assert code == 0, out
    assert (
        "glpi_tickets.json imported into incidents.jsonl: 2 added, 0 updated, 0 unchanged, " in out
    )
    assert f"skipped: {export}:46: resolved at" in out
    code, out = invoke("incident", "import", "demo-estate", export, "--format", "glpi")
    assert code == 0 and "0 added, 0 updated, 2 unchanged" in out
    events = [r["event"] for r in journal_lines(home)]
    assert events == ["imported", "imported", "import", "import"]


def test_import_csv_with_the_playbook_columns(home: Path, tmp_path: Path) -> None:
    playbook = write_test_playbook(tmp_path)
    playbook.write_text(playbook.read_text() + CSV_SECTION)
    export = DATA / "tickets.csv"
    code, out = invoke(
        "incident", "import", "demo-estate", export, "--format", "csv", "--playbook", playbook
    )
    assert code == 0, out
    assert "2 added" in out and "3 skipped" in out
    assert f"{export}:4: opened (Ouverture)" in out
    code, out = invoke("incident", "import", "demo-estate", export, "--format", "csv")
    assert code == 2 and "give --playbook" in out


def test_an_import_with_nothing_valid_exits_2_and_writes_nothing(
    home: Path, tmp_path: Path
) -> None:
    export = tmp_path / "bad.json"
    export.write_text('[{"id": 1, "name": "[/x] oops", "date": "soon", "priority": 4}]')
    code, out = invoke("incident", "import", "demo-estate", export, "--format", "glpi")
    assert code == 2, out
    assert f"{export}:1: opened (date) 'soon' is not a date" in out
    assert "no valid ticket, nothing imported" in out
    assert not (home / "incidents.jsonl").exists()


def test_an_empty_export_records_the_import(home: Path, tmp_path: Path) -> None:
    export = tmp_path / "none.json"
    export.write_text("[]")
    code, out = invoke("incident", "import", "demo-estate", export, "--format", "glpi")
    assert code == 0, out
    (run,) = journal_lines(home)
    assert (run["event"], run["added"], run["file"]) == ("import", 0, "none.json")
    code, out = invoke("incident", "list", "demo-estate")
    assert code == 0 and "no incident recorded in incidents.jsonl" in out


def test_errors_holding_markup_are_printed_as_written(home: Path, tmp_path: Path) -> None:
    export = tmp_path / "bad.json"
    export.write_text('[{"id": "12", "name": "x", "date": "[/red] soon", "priority": 4}]')
    code, out = invoke("incident", "import", "demo-estate", export, "--format", "glpi")
    assert code == 2
    assert f"{export}:1: opened (date) '[/red] soon' is not a date" in out
