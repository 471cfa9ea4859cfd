"""`handover init`: a playbook from a few answers, through the real typer app."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

import handover.cli.init_cmd
import handover.cli.playbook_cmd  # noqa: F401  (registers validate)
from handover.cli import app
from handover.contract.init_template import parse_contact, parse_host
from handover.contract.loader import load_playbook
from handover.errors import UsageError

runner = CliRunner()
CONTACTS = ["--provider-contact", "Ana Lima <ana@prov.example>", "--client-contact", "Bo"]


def init(tmp_path: Path, *args: str) -> tuple[int, str, str, Path]:
    out = tmp_path / "pb" / "c-2027.yaml"
    result = runner.invoke(app, ["init", "c-2027", "--yes", "--out", str(out), *args])
    return result.exit_code, result.stdout, result.stderr, out


def test_init_writes_a_playbook_that_validates_with_the_answers(tmp_path: Path) -> None:
    code, stdout, stderr, out = init(
        tmp_path,
        *CONTACTS,
        "--client",
        'ACME: "Industries" SAS',
        "--host",
        "web01=ssh://ops@192.0.2.10:2222",
        "--host",
        "box=local",
        "--signed",
        "2026-03-01",
    )
    assert code == 0, stderr
    assert f"wrote {out}" in stdout and "Next:" in stdout
    assert "handover hosts import" not in stdout  # hosts were given
    assert "replace the placeholder legal names (contract.parties.provider.legal_name)" in stdout
    playbook = load_playbook(out)
    assert playbook.contract.parties.client.legal_name == 'ACME: "Industries" SAS'
    assert [c.email for c in playbook.contract.parties.provider.contacts] == ["ana@prov.example"]
    web, box = playbook.hosts
    assert (web.name, web.address, web.port, web.user) == ("web01", "192.0.2.10", 2222, "ops")
    assert (box.transport, box.root) == ("local", "/")
    assert playbook.contract.dates.effective == date(2026, 3, 1)
    assert playbook.reversibility.recipients == ["file:keys/c-2027/client.recipients"]
    assert out.stat().st_mode & 0o777 == 0o644
    text = out.read_text(encoding="utf-8")
    assert "# datasets:" in text and "manual: true" in text  # commented guidance
    check = runner.invoke(app, ["validate", str(out)])
    assert check.exit_code == 0, check.stderr


def test_init_refuses_to_overwrite_unless_forced(tmp_path: Path) -> None:
    assert init(tmp_path, *CONTACTS)[0] == 0
    code, _out, stderr, path = init(tmp_path, *CONTACTS, "--title", "New")
    assert code == 2
    assert f"error: {path} exists; choose another --out, or --force" in stderr
    assert "Traceback" not in stderr
    assert "New" not in path.read_text(encoding="utf-8")
    code, _out, stderr, path = init(tmp_path, *CONTACTS, "--title", "New", "--force")
    assert code == 0, stderr
    assert load_playbook(path).contract.title == "New"


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--client-contact", "Bo"], "--provider-contact: give at least one"),
        ([*CONTACTS, "--host", "web01"], "expected NAME=ssh://user@address[:port]"),
        ([*CONTACTS, "--host", "Web_01=ssh://h"], "must be a slug"),
        ([*CONTACTS, "--host", "a=ssh://h", "--host", "a=local"], "a given twice"),
        ([*CONTACTS, "--signed", "03/01/2026"], "--signed '03/01/2026': expected YYYY-MM-DD"),
        ([*CONTACTS, "--recipient", "age1nope"], "bad recipient"),
        ([*CONTACTS, "--signed", "2026-02-01", "--effective", "2026-01-01"], "before signature"),
    ],
)
def test_init_bad_answers_are_one_line_usage_errors(
    tmp_path: Path, args: list[str], words: str
) -> None:
    code, _out, stderr, path = init(tmp_path, *args)
    assert code == 2
    assert words in stderr and stderr.startswith("error: ")
    assert "Traceback" not in stderr
    assert not path.exists()


def test_init_refuses_a_bad_contract_id(tmp_path: Path) -> None:
    result = runner.invoke(app, ["init", "ACME", "--yes", *CONTACTS])
    assert result.exit_code == 2
    assert "'ACME' is not a contract id" in result.stderr


def test_init_asks_on_a_terminal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("handover.cli.init_cmd._interactive", lambda yes: not yes)
    out = tmp_path / "asked.yaml"
    answers = "\n".join(
        [
            "Infogérance ACME",  # title
            "Prov SAS",  # provider
            "ACME SAS",  # client
            "Ana <ana@p.example>",  # provider contacts, then empty
            "",
            "Bo",  # client contacts
            "",
            "db01=ssh://root@192.0.2.20",  # hosts
            "",
            "",  # recipients: later
        ]
    )
    result = runner.invoke(app, ["init", "asked-1", "--out", str(out)], input=answers + "\n")
    assert result.exit_code == 0, result.stdout + result.stderr
    playbook = load_playbook(out)
    assert playbook.contract.title == "Infogérance ACME"
    assert playbook.contract.parties.provider.legal_name == "Prov SAS"
    assert [h.name for h in playbook.hosts] == ["db01"]
    assert [c.name for c in playbook.contract.parties.client.contacts] == ["Bo"]


def test_parse_host_and_contact() -> None:
    assert parse_host("a=192.0.2.1").address == "192.0.2.1"
    assert parse_host("a=ssh://[2001:db8::1]:2200").address == "2001:db8::1"
    assert parse_host("a=ssh://[2001:db8::1]:2200").port == 2200
    with pytest.raises(UsageError, match="Port out of range"):
        parse_host("a=ssh://h:99999")
    assert parse_contact("Zoé Martin <z@x.example>", "--c").email == "z@x.example"
    with pytest.raises(UsageError, match="bad e-mail"):
        parse_contact("Zoé <nope>", "--c")
