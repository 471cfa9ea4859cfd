"""`handover onsite`: request, dispatch, arrive, close, list; journaled, audited, measured."""

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


def invoke(*args: str | Path) -> tuple[int, str]:
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, result.output


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HANDOVER_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("HANDOVER_ACTOR", raising=False)
    return tmp_path / "home" / "contracts" / "demo-estate"


def test_an_intervention_from_request_to_close_is_journaled_audited_and_measured(
    home: Path, tmp_path: Path
) -> None:
    code, out = invoke(
        "onsite", "request", "demo-estate", "--reason", "Disque HS", "--host", "db01",
        "--at", "2026-03-06T16:00+01:00", "--as", "Claire Martin",
    )  # fmt: skip
    assert code == 0, out
    assert (
        "on-site intervention OS-1 requested at 2026-03-06T16:00:00+01:00 by Claire Martin" in out
    )
    steps = [
        ("dispatch", "--technician", "Paul Durand", "--at", "2026-03-06T17:00+01:00"),
        ("arrive", "--at", "2026-03-09T12:00+01:00"),  # Monday: 2 + 4 business hours
        ("close", "--at", "2026-03-09T15:00+01:00"),
    ]
    for command, *options in steps:
        code, out = invoke("onsite", command, "demo-estate", "OS-1", *options, "--as", "ops")
        assert code == 0, out
    lines = [json.loads(x) for x in (home / "onsite.jsonl").read_text().splitlines()]
    assert [(r["event"], r["actor"]) for r in lines] == [
        ("requested", "Claire Martin"),
        ("dispatched", "ops"),
        ("arrived", "ops"),
        ("closed", "ops"),
    ]
    audit = ChecklistStore().audit_log("demo-estate").entries()
    assert [e["event"] for e in audit] == [
        "onsite.requested", "onsite.dispatched", "onsite.arrived", "onsite.closed",
    ]  # fmt: skip
    assert "Paul" not in json.dumps(audit) and "Disque" not in json.dumps(audit)
    playbook = write_test_playbook(tmp_path)
    code, out = invoke("onsite", "list", "demo-estate", "--playbook", playbook)
    assert code == 0, out
    row = out.splitlines()[0].split("\t")
    assert row[0] == "OS-1" and row[5:] == ["Paul Durand", "db01", "6.0 h", "met", "Disque HS"]
    assert "delay target 8 h, counted in business hours" in out and "0 breach(es)" in out


def test_a_late_arrival_is_a_breach_in_the_list(home: Path, tmp_path: Path) -> None:
    invoke("onsite", "request", "demo-estate", "--reason", "x", "--at", "2026-03-02T08:00+01:00")
    invoke("onsite", "arrive", "demo-estate", "OS-1", "--at", "2026-03-03T09:00+01:00")  # 11 h
    code, out = invoke("onsite", "list", "demo-estate", "--playbook", write_test_playbook(tmp_path))
    assert code == 0, out
    assert "\t11.0 h\tbreach\t" in out and "1 breach(es)" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("request", "demo-estate", "--reason", " "), "--reason: say why"),
        (("request", "demo-estate", "--reason", "x", "--at", "2026-03-02T08:00"), "time zone"),
        (("request", "demo-estate", "--reason", "x", "--at", "2999-01-01T08:00Z"), "future"),
        (("arrive", "demo-estate", "OS-4"), "no intervention OS-4 in the journal"),
        (("list", "demo-estate"), "no on-site journal yet"),
        (("list", "../x"), "contract"),
    ],
)
def test_mistakes_are_one_line_usage_errors(
    home: Path, args: tuple[str, ...], message: str
) -> None:
    code, out = invoke("onsite", *args)
    assert code == 2, out
    assert message in out and "Traceback" not in out


def test_a_step_before_the_request_is_refused_and_nothing_is_written(home: Path) -> None:
    invoke("onsite", "request", "demo-estate", "--reason", "x", "--at", "2026-03-02T10:00+01:00")
    before = (home / "onsite.jsonl").read_bytes()
    code, out = invoke("onsite", "arrive", "demo-estate", "OS-1", "--at", "2026-03-02T09:00+01:00")
    assert code == 2 and "before it was requested" in out
    assert (home / "onsite.jsonl").read_bytes() == before
