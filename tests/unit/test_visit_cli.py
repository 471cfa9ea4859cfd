"""`handover visit`: log and list maintenance visits, counted against visits_per_year."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from handover.checklist.store import ChecklistStore
from handover.cli import _register, app
from tests.unit.documents_fixtures import write_test_playbook

_register()
runner = CliRunner()


def invoke(*args: str | Path) -> tuple[int, str]:
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, result.output


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HANDOVER_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("HANDOVER_ACTOR", raising=False)
    return tmp_path / "home" / "contracts" / "demo-estate"


def log(day: str, *extra: str) -> tuple[int, str]:
    return invoke(
        "visit", "log", "demo-estate", "--date", day, "--technician", "Paul Durand",
        "--work", "Mises à jour,  contrôle des sauvegardes", *extra,
    )  # fmt: skip


def test_visits_are_logged_audited_listed_and_counted(home: Path, tmp_path: Path) -> None:
    code, out = log("2026-03-10", "--as", "Claire Martin")
    assert code == 0, out
    assert "visit V-1 of 2026-03-10 logged by Claire Martin" in out
    assert log("2026-06-02")[0] == 0
    records = [json.loads(x) for x in (home / "visits.jsonl").read_text().splitlines()]
    assert [(r["id"], r["on"], r["work"]) for r in records] == [
        ("V-1", "2026-03-10", "Mises à jour, contrôle des sauvegardes"),
        ("V-2", "2026-06-02", "Mises à jour, contrôle des sauvegardes"),
    ]
    audit = ChecklistStore().audit_log("demo-estate").entries()
    assert [(e["event"], e["data"]) for e in audit] == [
        ("visit.logged", {"id": "V-1", "on": "2026-03-10"}),
        ("visit.logged", {"id": "V-2", "on": "2026-06-02"}),
    ]
    code, out = invoke("visit", "list", "demo-estate", "--playbook", write_test_playbook(tmp_path))
    assert code == 0, out
    assert (
        out.splitlines()[0]
        == "V-1\t2026-03-10\tPaul Durand\tMises à jour, contrôle des sauvegardes"
    )
    counted = re.search(r"(\d+) of 4 visit\(s\) in the contract year (\S+) to (\S+)", out)
    assert counted is not None, out
    year_start = counted.group(2)
    assert year_start[4:] == "-02-01"  # contract year from the effective date, 1 February
    assert int(counted.group(1)) == (2 if year_start == "2026-02-01" else 0)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--date", "10/03/2026"), "not a date"),
        (("--date", "2999-01-01"), "in the future"),
        (("--date", "2026-03-10", "--technician", " "), "--technician"),
        (("--date", "2026-03-10", "--work", ""), "--work"),
    ],
)
def test_mistakes_are_one_line_usage_errors(
    home: Path, args: tuple[str, ...], message: str
) -> None:
    base = {"--technician": "Paul", "--work": "patches"}
    options = dict(zip(args[::2], args[1::2], strict=True))
    merged = [x for k, v in (base | options).items() for x in (k, v)]
    code, out = invoke("visit", "log", "demo-estate", *merged)
    assert code == 2, out
    assert message in out and "Traceback" not in out
    assert not (home / "visits.jsonl").exists()


def test_an_id_is_logged_once(home: Path) -> None:
    assert log("2026-03-10", "--id", "V-9")[0] == 0
    code, out = log("2026-03-11", "--id", "V-9")
    assert code == 2 and "visit V-9 is already logged" in out
    code, out = invoke("visit", "list", "demo-estate")
    assert code == 0 and out.count("\n") == 1
