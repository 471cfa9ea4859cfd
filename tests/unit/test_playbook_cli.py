"""`handover validate` and `handover schema` through the real typer app.

Each validation test breaks the demo playbook in one place and checks that
the command exits 2 with a line naming the file, the line and the field path.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from handover.cli import _register, app

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEMO = PROJECT_ROOT / "playbooks" / "examples" / "demo.yaml"
ACME = PROJECT_ROOT / "playbooks" / "examples" / "acme.yaml"

_register()
runner = CliRunner()


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def broken(tmp_path: Path, old: str, new: str, *, marker: str | None = None) -> tuple[Path, int]:
    """Write the demo playbook with `old` replaced by `new`; return (path, line of `marker`).

    `marker` (a line of `new`) defaults to the first line of `new` that is not in
    `old`; the returned line number is 1-based and points inside the replacement.
    """
    text = DEMO.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} must occur once in demo.yaml"
    offset = text.index(old)
    path = tmp_path / "broken.yaml"
    path.write_text(text.replace(old, new), encoding="utf-8")
    fresh = [row for row in new.splitlines() if row not in old.splitlines()]
    wanted = marker or (fresh[0] if fresh else "")
    return path, text.count("\n", 0, offset) + new.count("\n", 0, new.index(wanted)) + 1


def line_of(text: str, row: str) -> int:
    """1-based number of the first line of `text` that contains `row`."""
    return next(i for i, line in enumerate(text.splitlines(), start=1) if row in line)


def assert_problem(tmp_path: Path, path: Path, line: int, field: str, words: str) -> str:
    code, out, err = run("validate", str(path))
    assert code == 2, (out, err)
    expected = f"{path}:{line}: {field}: "
    matching = [row for row in err.splitlines() if expected in row]
    assert matching, f"no line starting {expected!r} in:\n{err}"
    assert words in matching[0], matching[0]
    assert "ok:" not in out
    return err


def test_examples_validate() -> None:
    code, out, err = run("validate", str(DEMO), str(ACME))
    assert code == 0, err
    assert f"ok: {DEMO} (contract demo-estate, 3 hosts, 4 datasets)" in out
    assert f"ok: {ACME} (contract acme-2026, 3 hosts, 5 datasets)" in out
    assert err == ""


def test_unknown_key(tmp_path: Path) -> None:
    path, line = broken(tmp_path, "      tags: [db]\n", "      tags: [db]\n      colour: blue\n")
    err = assert_problem(tmp_path, path, line, "perimeter.hosts[1].colour", "unknown key 'colour'")
    assert "allowed:" in err


def test_unknown_key_suggests_close_match(tmp_path: Path) -> None:
    path, line = broken(tmp_path, "  disk_threshold_percent: 90", "  disk_treshold_percent: 90")
    assert_problem(
        tmp_path, path, line, "sla.disk_treshold_percent", "did you mean 'disk_threshold_percent'"
    )


def test_wrong_type(tmp_path: Path) -> None:
    path, line = broken(tmp_path, "visits_per_year: 4,", "visits_per_year: often,")
    assert_problem(
        tmp_path,
        path,
        line,
        "services.maintenance.visits_per_year",
        "wrong type: expected an integer",
    )


def test_wrong_type_list_expected(tmp_path: Path) -> None:
    path, line = broken(tmp_path, "      paths: [/srv/shares]", "      paths: /srv/shares")
    assert_problem(
        tmp_path, path, line, "perimeter.datasets[3].paths", "expected a list, got a string"
    )


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("  id: demo-estate", "  id: Demo_Estate", "contract.id"),
        ("    - name: db01\n", "    - name: DB01\n", "perimeter.hosts[1].name"),
        ("    - name: shares\n", "    - name: -shares\n", "perimeter.datasets[3].name"),
    ],
)
def test_bad_slug(tmp_path: Path, old: str, new: str, field: str) -> None:
    path, line = broken(tmp_path, old, new)
    assert_problem(tmp_path, path, line, field, "bad slug")


def test_duplicate_host_name(tmp_path: Path) -> None:
    path, line = broken(tmp_path, "    - name: files01\n", "    - name: web01\n")
    assert_problem(tmp_path, path, line, "perimeter.hosts[2].name", "duplicate host name 'web01'")


def test_duplicate_dataset_name(tmp_path: Path) -> None:
    path, line = broken(tmp_path, "    - name: etc\n", "    - name: www\n")
    assert_problem(
        tmp_path, path, line, "perimeter.datasets[1].name", "duplicate dataset name 'www'"
    )


def test_dataset_unknown_host(tmp_path: Path) -> None:
    path, line = broken(
        tmp_path,
        "    - name: shares\n      host: files01\n",
        "    - name: shares\n      host: db9\n",
    )
    assert_problem(
        tmp_path,
        path,
        line,
        "perimeter.datasets[3].host",
        "unknown host 'db9' (hosts: web01, db01, files01)",
    )


def test_unknown_host_reported_with_other_errors(tmp_path: Path) -> None:
    """Cross references are checked even when another field has a type error."""
    path, line = broken(
        tmp_path,
        "    - name: shares\n      host: files01\n",
        "    - name: shares\n      host: db9\n",
    )
    text = path.read_text().replace("visits_per_year: 4,", "visits_per_year: often,")
    path.write_text(text)
    err = assert_problem(tmp_path, path, line, "perimeter.datasets[3].host", "unknown host 'db9'")
    assert "services.maintenance.visits_per_year" in err


def test_s3_dataset_needs_no_host_but_refuses_one(tmp_path: Path) -> None:
    s3 = "    - name: docs\n      s3: {bucket: demo-docs, prefix: shared/}\n"
    path, _ = broken(tmp_path, "  software:\n", s3 + "  software:\n")
    code, out, err = run("validate", str(path))
    assert code == 0, err
    assert "5 datasets" in out
    s3_with_host = "    - name: docs\n      host: web01\n      s3: {bucket: demo-docs}\n"
    path, _ = broken(tmp_path, "  software:\n", s3_with_host + "  software:\n")
    line = DEMO.read_text().splitlines().index("  software:") + 2
    assert_problem(
        tmp_path, path, line, "perimeter.datasets[4].host", "an s3 dataset takes no host"
    )


def test_dataset_needs_exactly_one_source(tmp_path: Path) -> None:
    path, _ = broken(
        tmp_path,
        "      paths: [/srv/shares]\n",
        "      paths: [/srv/shares]\n      dump: {command: x, filename: y}\n",
    )
    line = line_of(path.read_text(), "- name: shares")  # the dataset item
    assert_problem(
        tmp_path, path, line, "perimeter.datasets[3]", "exactly one of paths, dump or s3"
    )


def test_provider_access_unknown_host(tmp_path: Path) -> None:
    path, line = broken(
        tmp_path, "    - host: db01\n      account: ops", "    - host: db02\n      account: ops"
    )
    assert_problem(
        tmp_path, path, line, "security.provider_access[1].host", "unknown host 'db02' (hosts:"
    )


@pytest.mark.parametrize(
    ("field", "value", "bound"),
    [
        ("notice_months", 3, "must be between 0 and 2"),
        ("transition_days", 0, "must be between 1 and 30"),
        ("transition_days", 31, "must be between 1 and 30"),
        ("retrieval_days", 29, "must be at least 30"),
        ("erasure_days", 91, "must be between 0 and 90"),
        ("erasure_days", -1, "must be between 0 and 90"),
    ],
)
def test_deadline_out_of_legal_bounds(tmp_path: Path, field: str, value: int, bound: str) -> None:
    old = (
        "  deadlines: {notice_months: 2, transition_days: 30, retrieval_days: 30, erasure_days: 30}"
    )
    defaults = {"notice_months": 2, "transition_days": 30, "retrieval_days": 30, "erasure_days": 30}
    defaults[field] = value
    new = "  deadlines: {" + ", ".join(f"{k}: {v}" for k, v in defaults.items()) + "}"
    path, line = broken(tmp_path, old, new)
    err = assert_problem(
        tmp_path, path, line, f"reversibility.deadlines.{field}", f"{field} is {value}, {bound}"
    )
    assert "Data Act" in err or "RGPD" in err  # the message explains the bound


@pytest.mark.parametrize(
    "recipient",
    [
        "age1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq",  # bad checksum
        "ssh-ed25519 AAAAnotbase64!!",
        "ssh-dss AAAAB3NzaC1kc3MAAACBAP",
        "bob@example.com",
    ],
)
def test_bad_recipient(tmp_path: Path, recipient: str) -> None:
    old = '  recipients: ["file:.handover/demo/keys/client.recipients"]'
    new = f'  recipients: ["file:.handover/demo/keys/client.recipients", "{recipient}"]'
    path, line = broken(tmp_path, old, new)
    assert_problem(tmp_path, path, line, "reversibility.recipients[1]", "bad recipient")


def test_literal_credential_refused(tmp_path: Path) -> None:
    path, line = broken(
        tmp_path,
        "      root: .handover/demo/hosts/db01\n",
        "      root: .handover/demo/hosts/db01\n      credential: hunter2-Secret\n",
        marker="      credential: hunter2-Secret",
    )
    err = assert_problem(
        tmp_path, path, line, "perimeter.hosts[1].credential", "must be a credential reference"
    )
    assert "hunter2-Secret" not in err


def test_literal_secret_anywhere_refused_without_echo(tmp_path: Path) -> None:
    secret = "AGE-SECRET-KEY-1QYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSJQNJ7V"
    path, line = broken(
        tmp_path, "    notes: Forfait mensuel", f"    notes: {secret} Forfait mensuel"
    )
    err = assert_problem(
        tmp_path, path, line, "contract.billing.notes", "looks like a literal secret"
    )
    assert secret not in err
    assert "AGE-SECRET-KEY-1QY" not in err


def test_pem_signing_key_refused_without_echo(tmp_path: Path) -> None:
    pem = (
        "  signing_key: |\n"
        "    -----BEGIN OPENSSH PRIVATE KEY-----\n"
        "    b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
        "    -----END OPENSSH PRIVATE KEY-----\n"
    )
    path, line = broken(tmp_path, "  signing_key: file:.handover/demo/keys/provider-signing\n", pem)
    err = assert_problem(tmp_path, path, line, "reversibility.signing_key", "literal secret")
    assert "b3BlbnNzaC1rZXktdjEA" not in err
    assert err.count("reversibility.signing_key") == 1


def test_bad_provider_public_key(tmp_path: Path) -> None:
    good = (
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHSCZ9sbi2CVtTkG0IeeEcWBL3K2zJ9UCicMYeBzAFKm"
        " ops@provider-demo"
    )
    text = DEMO.read_text()
    path = tmp_path / "broken.yaml"
    path.write_text(text.replace(good, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHSCZ9sb ops", 1))
    line = next(i for i, row in enumerate(text.splitlines(), start=1) if good in row)
    assert_problem(
        tmp_path,
        path,
        line,
        "security.provider_access[0].public_keys[0]",
        "not an OpenSSH public key",
    )


def test_bad_host_key_fingerprint(tmp_path: Path) -> None:
    path, line = broken(
        tmp_path,
        "      root: .handover/demo/hosts/web01\n",
        "      root: .handover/demo/hosts/web01\n      host_key: MD5:12:34:56\n",
        marker="      host_key: MD5",
    )
    assert_problem(tmp_path, path, line, "perimeter.hosts[0].host_key", "bad host key fingerprint")


def test_ssh_host_needs_address(tmp_path: Path) -> None:
    path, line = broken(
        tmp_path,
        "      transport: local\n      root: .handover/demo/hosts/files01\n",
        "      transport: ssh\n",
    )
    line -= 1  # the host item starts at `- name: files01`
    err = assert_problem(
        tmp_path, path, line, "perimeter.hosts[2].address", "required for an ssh host"
    )
    assert "perimeter.hosts[2].root" not in err


def test_missing_field_points_at_parent(tmp_path: Path) -> None:
    path, _ = broken(tmp_path, "  signing_key: file:.handover/demo/keys/provider-signing\n", "")
    line = line_of(path.read_text(), "reversibility:")
    assert_problem(tmp_path, path, line, "reversibility.signing_key", "missing required field")


def test_duplicate_yaml_key(tmp_path: Path) -> None:
    path, line = broken(
        tmp_path,
        "  retention_days: 30\n",
        "  retention_days: 30\n  retention_days: 60\n",
        marker="  retention_days: 60",
    )
    assert_problem(tmp_path, path, line, "backups.retention_days", "duplicate key 'retention_days'")


def test_yaml_syntax_error(tmp_path: Path) -> None:
    path = tmp_path / "syntax.yaml"
    path.write_text("contract:\n  id: x\n  title: [unclosed\nperimeter: {}\n")
    code, _out, err = run("validate", str(path))
    assert code == 2
    assert f"{path}:" in err and "YAML syntax error" in err
    number = int(err.split(f"{path}:")[1].split(":")[0])
    assert 3 <= number <= 5


def test_missing_file() -> None:
    code, _out, err = run("validate", "/nonexistent/playbook.yaml")
    assert code == 2
    assert "/nonexistent/playbook.yaml: no such file" in err


def test_phase_override_unknown_item(tmp_path: Path) -> None:
    text = DEMO.read_text(encoding="utf-8")
    phases = text[text.index("\nphases:\n") :]
    new = (
        "\nphases:\n  takeover:\n    waive:\n"
        "      - {id: credentials-recieved, reason: typo in the id}\n"
    )
    path, line = broken(tmp_path, phases, new, marker="      - {id: credentials-recieved")
    assert_problem(
        tmp_path, path, line, "phases.takeover.waive[0].id", "unknown item 'credentials-recieved'"
    )


def test_every_file_is_reported(tmp_path: Path) -> None:
    path, _ = broken(tmp_path, "  id: demo-estate", "  id: Demo_Estate")
    code, out, err = run("validate", str(DEMO), str(path))
    assert code == 2
    assert f"ok: {DEMO}" in out
    assert f"{path}:" in err


def test_schema_prints_json_with_sections() -> None:
    code, out, _err = run("schema")
    assert code == 0
    schema = json.loads(out)
    for section in (
        "contract",
        "perimeter",
        "services",
        "sla",
        "security",
        "reversibility",
        "phases",
    ):
        assert section in schema["properties"]
    assert schema["additionalProperties"] is False
    assert "Deadlines" in schema["$defs"]


def test_schema_out_file(tmp_path: Path) -> None:
    target = tmp_path / "schema" / "playbook.json"
    code, out, _err = run("schema", "--out", str(target))
    assert code == 0
    assert json.loads(target.read_text())["title"] == "handover playbook"
    assert str(target) in out


def test_installed_entry_point_validates(tmp_path: Path) -> None:
    """The console script (flows.cli:main) runs the same command and exit codes."""
    import subprocess
    import sys

    exe = Path(sys.executable).with_name("handover")
    assert exe.exists(), f"{exe} missing: run `pip install -e .` in the virtualenv"
    ok = subprocess.run([exe, "validate", str(DEMO)], capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert "ok: " in ok.stdout and "demo-estate" in ok.stdout
    path, line = broken(tmp_path, "  id: demo-estate", "  id: Demo_Estate")
    bad = subprocess.run([exe, "validate", str(path)], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2
    assert f"{path}:{line}: contract.id: bad slug" in bad.stderr
