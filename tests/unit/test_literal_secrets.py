"""Secrets in dump commands are refused; the dump's `env:` carries them instead (#12)."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from handover.connectors.datasets import dataset_source
from handover.connectors.local import LocalConnector
from handover.connectors.ssh.sources import env_input, env_script
from handover.contract.literal_secrets import command_secret_kind
from handover.contract.loader import validate_playbook_text
from handover.contract.perimeter import Dataset
from handover.errors import PlaybookError, SecretRefError, UsageError
from handover.secrets.references import Secret

ACME = Path(__file__).resolve().parents[2] / "playbooks" / "examples" / "acme.yaml"
DUMP_LINE = 'dump: {command: "pg_dump -Fc --no-owner acme_erp", filename: acme_erp.dump}'
SECRET = "hunter2-Zq9"


def acme_with_dump(dump: str) -> tuple[str, int]:
    """The acme example with its dump replaced, and the line number of that dump."""
    text = ACME.read_text(encoding="utf-8")
    assert DUMP_LINE in text
    line = text[: text.index(DUMP_LINE)].count("\n") + 1
    return text.replace(DUMP_LINE, dump), line


def problems_of(text: str) -> list[str]:
    with pytest.raises(PlaybookError) as caught:
        validate_playbook_text(text, "acme.yaml")
    return caught.value.problems


@pytest.mark.parametrize(
    ("command", "kind"),
    [
        (f"PGPASSWORD={SECRET} pg_dump -Fc acme", "PGPASSWORD="),
        (f"export PGPASSWORD='{SECRET}'; pg_dump acme", "PGPASSWORD="),
        (f"MYSQL_PWD={SECRET} mysqldump acme", "MYSQL_PWD="),
        (f"env PASSWORD={SECRET} dump-it", "PASSWORD="),
        (f"AWS_SECRET_ACCESS_KEY={SECRET} aws s3 cp s3://b/k -", "AWS_SECRET_ACCESS_KEY="),
        (f"pg_dump 'host=db password={SECRET} dbname=acme'", "password="),
        (f"mysqldump --password={SECRET} acme", "--password"),
        (f"mysqldump --password {SECRET} acme", "--password"),
        ('mysqldump --password="$DB_PASS" acme', "--password"),  # expanded into argv: ps shows it
        (f"mysqldump -u root -p{SECRET} acme", "-p"),
        (f"mariadb-dump -p{SECRET} acme", "-p"),
        (f"sshpass -p {SECRET} ssh db cat dump", "-p"),
        (f"pg_dump postgres://erp:{SECRET}@db.internal/acme", "URL with a password"),
        (f"mongodump --uri mongodb+srv://u:{SECRET}@c0.example.net/db --archive", "URL"),
        ("aws s3 cp s3://b/k - --key AKIAIOSFODNN7EXAMPLE", "AWS access key"),
    ],
)
def test_commands_with_a_secret_are_named_without_the_value(command: str, kind: str) -> None:
    found = command_secret_kind(command)
    assert found is not None and kind in found
    assert SECRET not in found


@pytest.mark.parametrize(
    "command",
    [
        "pg_dump -Fc --no-owner acme_erp",
        "cat var/backups/db/demo.sql",
        "mysqldump -p acme",  # a lone -p asks; acme is the database
        "mysqldump -P 3307 -u backup acme",
        "pg_dump -p 5432 -h db acme",
        "PGPASSWORD=$PGPASS pg_dump acme",  # an expansion, no literal
        "pg_dump postgres://erp@db.internal/acme",
        "mysqldump --defaults-extra-file=/etc/handover/my.cnf acme | gzip -p4",
        "tar -cf - --password-file=/etc/x /srv",
        "PWD=/srv ls",
    ],
)
def test_commands_without_a_secret_pass(command: str) -> None:
    assert command_secret_kind(command) is None


def test_a_playbook_dump_with_a_password_is_refused_at_its_line_pointing_to_env() -> None:
    text, line = acme_with_dump(
        f'dump: {{command: "PGPASSWORD={SECRET} pg_dump -Fc acme_erp", filename: a.dump}}'
    )
    problems = problems_of(text)
    assert len(problems) == 1
    (problem,) = problems
    assert problem.startswith(f"acme.yaml:{line}: perimeter.datasets[2].dump.command: ")
    assert "PGPASSWORD=" in problem and "env:" in problem and "vault:" in problem
    assert "\n" not in problem
    assert SECRET not in problem


def test_a_url_with_credentials_is_refused_too() -> None:
    text, line = acme_with_dump(
        f'dump: {{command: "pg_dump -d postgres://erp:{SECRET}@db/acme", filename: a.dump}}'
    )
    (problem,) = problems_of(text)
    assert problem.startswith(f"acme.yaml:{line}: ") and "URL with a password" in problem
    assert SECRET not in problem


def test_env_references_validate_and_are_kept() -> None:
    text, _line = acme_with_dump(
        'dump: {command: "pg_dump -Fc acme_erp", filename: a.dump, '
        "env: {PGPASSWORD: vault:acme-2026/erp-db, PGUSER: env:ACME_PGUSER}}"
    )
    playbook = validate_playbook_text(text, "acme.yaml")
    (dump,) = [d.dump for d in playbook.perimeter.datasets if d.dump is not None]
    assert dump.env == {"PGPASSWORD": "vault:acme-2026/erp-db", "PGUSER": "env:ACME_PGUSER"}
    # Checked with the playbook's other references (credentials-received, `handover vault`).
    refs = dict(playbook.secret_refs())
    assert refs["perimeter.datasets[2].dump.env.PGPASSWORD"] == "vault:acme-2026/erp-db"
    assert refs["perimeter.datasets[2].dump.env.PGUSER"] == "env:ACME_PGUSER"


def test_env_values_must_be_references_and_are_never_echoed() -> None:
    text, line = acme_with_dump(
        f'dump: {{command: "pg_dump acme", filename: a.dump, env: {{PGPASSWORD: "{SECRET}"}}}}'
    )
    (problem,) = problems_of(text)
    assert problem.startswith(f"acme.yaml:{line}: perimeter.datasets[2].dump.env.PGPASSWORD: ")
    assert "credential reference" in problem and SECRET not in problem


@pytest.mark.parametrize(
    ("name", "why"),
    [("1A", "not a variable name"), ("PATH", "not allowed"), ("LD_PRELOAD", "not allowed")],
)
def test_env_names_are_checked(name: str, why: str) -> None:
    text, line = acme_with_dump(
        f'dump: {{command: "pg_dump acme", filename: a.dump, env: {{"{name}": env:X}}}}'
    )
    (problem,) = problems_of(text)
    assert problem.startswith(f"acme.yaml:{line}: perimeter.datasets[2].dump.env.{name}: ")
    assert why in problem


def read_member(source_tar: bytes) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(source_tar), mode="r:") as archive:
        (member,) = archive.getmembers()
        handle = archive.extractfile(member)
        assert handle is not None
        return handle.read()


def test_a_local_dump_reads_its_env_from_the_process_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACME_DB_PASSWORD", SECRET)
    (tmp_path / "pw").write_text("file value with spaces \\ and 'quotes'\n")
    dataset = Dataset.model_validate(
        {
            "name": "db",
            "host": "db01",
            "dump": {
                "command": 'printf "%s|%s" "$PGPASSWORD" "$OTHER"',
                "filename": "db.sql",
                "env": {"PGPASSWORD": "env:ACME_DB_PASSWORD", "OTHER": f"file:{tmp_path / 'pw'}"},
            },
        }
    )
    source = dataset_source(dataset, LocalConnector("db01", tmp_path), None)
    assert SECRET not in repr(source) and SECRET not in source.origin
    with source.open_tar() as stream:
        data = stream.read()
    assert read_member(data) == f"{SECRET}|file value with spaces \\ and 'quotes'".encode()


def test_an_unset_env_reference_is_named_not_resolved(tmp_path: Path) -> None:
    dataset = Dataset.model_validate(
        {
            "name": "db",
            "host": "db01",
            "dump": {"command": "true", "filename": "d", "env": {"PGPASSWORD": "env:NOT_SET_X"}},
        }
    )
    with pytest.raises(SecretRefError, match="env:NOT_SET_X"):
        dataset_source(dataset, LocalConnector("db01", tmp_path), None)


def test_the_ssh_script_names_the_variables_and_stdin_carries_the_values() -> None:
    env = {"PGPASSWORD": Secret(f"{SECRET}\n".encode()), "PGUSER": Secret(b" erp \\x ")}
    script = env_script(list(env))
    assert "IFS= read -r PGPASSWORD || exit 96\nexport PGPASSWORD\n" in script
    assert SECRET not in script
    assert env_input(env, "db01") == f"{SECRET}\n erp \\x \n".encode()


def test_a_value_with_a_line_break_is_refused_without_showing_it() -> None:
    with pytest.raises(UsageError) as caught:
        env_input({"PGPASSWORD": Secret(f"{SECRET}\nmore".encode())}, "db01")
    assert "PGPASSWORD" in str(caught.value) and SECRET not in str(caught.value)


def test_a_bad_variable_name_never_reaches_the_script() -> None:
    with pytest.raises(UsageError):
        env_script(["A;rm -rf /"])
