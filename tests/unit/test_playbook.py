"""Playbook models, loader, helpers, templates and overrides (no CLI)."""

from __future__ import annotations

import filecmp
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml

from handover.contract.checklists import load_phase_template
from handover.contract.loader import load_playbook, read_contract_id, validate_playbook_text
from handover.contract.playbook import Playbook, phase_items, playbook_json_schema
from handover.errors import KeyFormatError, PlaybookError, UsageError
from handover.phases import PHASES

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEMO = PROJECT_ROOT / "playbooks" / "examples" / "demo.yaml"
ACME = PROJECT_ROOT / "playbooks" / "examples" / "acme.yaml"

AGE_RECIPIENT = "age1v322a6tqy0hfjetkya58q0qj594cr3g0xayqhungpjsf6qtn3ewsxq6f7m"
SSH_KEY = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHSCZ9sbi2CVtTkG0IeeEcWBL3K2zJ9UCicMYeBzAFKm ops@demo"
)

DOCUMENTED_IDS = {
    "takeover": [
        "parties-confirmed",
        "hosts-reachable",
        "inventory",
        "credentials-received",
        "baseline-snapshot",
        "documentation-collected",
        "baseline-report",
        "reversibility-plan",
    ],
    "implementation": [
        "provider-access",
        "health-checks-defined",
        "backup-schedule",
        "hotline-procedure",
        "runbooks",
        "reversibility-drill-scheduled",
    ],
    "operational": [
        "health-checks",
        "backups",
        "restore-check",
        "security-updates",
        "incidents",
        "sla-report",
        "technology-watch",
        "reversibility-drill",
    ],
    "reversibility": [
        "exit-notice",
        "knowledge-transfer-plan",
        "final-inventory",
        "datasets-exported",
        "credentials-exported",
        "documentation-exported",
        "bundle-sealed",
        "bundle-delivered",
        "client-acceptance",
        "knowledge-transfer-sessions",
        "access-revoked",
        "copies-erased",
        "exit-report",
    ],
}


def demo_data() -> dict[str, Any]:
    data = yaml.safe_load(DEMO.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def problems_of(data: dict[str, Any]) -> list[str]:
    with pytest.raises(PlaybookError) as info:
        validate_playbook_text(yaml.safe_dump(data, allow_unicode=True), "t.yaml")
    return info.value.problems


def test_demo_playbook_loads_with_expected_fields() -> None:
    playbook = load_playbook(DEMO)
    assert playbook.contract_id == "demo-estate"
    assert [h.name for h in playbook.hosts] == ["web01", "db01", "files01"]
    assert all(h.transport == "local" for h in playbook.hosts)
    assert playbook.host("db01").root == ".handover/demo/hosts/db01"
    assert playbook.host("web01").cert_paths == ["/etc/ssl/demo"]
    assert [d.name for d in playbook.datasets_of("web01")] == ["www", "etc"]
    db = playbook.datasets_of("db01")[0]
    assert db.kind == "dump"
    assert db.dump is not None and db.dump.filename == "demo.sql"
    assert playbook.reversibility.delivery.kind == "local"
    assert playbook.backups is not None
    assert playbook.source == DEMO


def test_acme_playbook_loads_with_ssh_hosts_and_s3() -> None:
    playbook = load_playbook(ACME)
    db01 = playbook.host("db01")
    assert db01.transport == "ssh" and db01.port == 2222 and db01.root is None
    assert db01.host_key is not None and db01.host_key.startswith("SHA256:")
    s3 = [d for d in playbook.datasets if d.kind == "s3"]
    assert len(s3) == 1 and s3[0].host is None and s3[0].s3 is not None
    assert s3[0].s3.versions == "latest"
    assert playbook.reversibility.delivery.kind == "s3"
    assert [s.level for s in playbook.sla.severities] == ["P1", "P2", "P3", "P4"]
    assert playbook.reversibility.exempted[0].legal_basis


def test_local_host_root_defaults_to_slash() -> None:
    data = demo_data()
    del data["perimeter"]["hosts"][0]["root"]
    playbook = Playbook.model_validate(data)
    assert playbook.host("web01").root == "/"


def test_unknown_host_lookup_names_known_hosts() -> None:
    playbook = load_playbook(DEMO)
    with pytest.raises(UsageError, match=r"unknown host 'db9' \(hosts: web01, db01, files01\)"):
        playbook.host("db9")


def test_secret_refs_lists_every_credential_reference() -> None:
    refs = dict(load_playbook(ACME).secret_refs())
    assert refs == {
        "perimeter.hosts[0].credential": "vault:acme-2026/web01-ops",
        "perimeter.hosts[1].credential": "vault:acme-2026/db01-ops",
        "perimeter.hosts[2].credential": "vault:acme-2026/files01-ops",
        "perimeter.s3.access_key_id": "env:ACME_S3_KEY_ID",
        "perimeter.s3.secret_access_key": "vault:acme-2026/s3-secret",
        "reversibility.signing_key": "vault:acme-2026/provider-signing",
        "backups.identity": "vault:acme-2026/backup-identity",
    }


def test_software_version_number_becomes_text() -> None:
    data = demo_data()
    data["perimeter"]["software"][0]["version"] = 1.22
    playbook = Playbook.model_validate(data)
    assert playbook.perimeter.software[0].version == "1.22"


def test_one_letter_contract_id_is_refused_as_the_state_would_refuse_it() -> None:
    """The checklist store and the vault take 2 to 63 characters: validate says so first."""
    data = demo_data()
    data["contract"]["id"] = "a"
    problems = problems_of(data)
    assert any("contract.id: bad slug 'a': a contract id takes 2 to 63" in p for p in problems)
    data["perimeter"]["hosts"][0]["name"] = "w"  # hosts and datasets may be one letter
    data["contract"]["id"] = "ab"
    assert not any("perimeter.hosts" in p for p in problems_of(data))


def test_problems_are_sorted_by_line_and_all_reported() -> None:
    data = demo_data()
    data["contract"]["id"] = "BAD ID"
    data["perimeter"]["hosts"][1]["name"] = "web01"
    data["reversibility"]["deadlines"]["erasure_days"] = 200
    problems = problems_of(data)
    # renaming db01 also leaves its dataset and its provider access pointing nowhere
    assert len(problems) == 5, problems
    assert any("perimeter.datasets[2].host: unknown host 'db01'" in p for p in problems)
    assert any("security.provider_access[1].host: unknown host 'db01'" in p for p in problems)
    lines = [int(p.split(":")[1]) for p in problems]
    assert lines == sorted(lines)
    assert any("contract.id: bad slug" in p for p in problems)
    assert any("perimeter.hosts[1].name: duplicate host name 'web01'" in p for p in problems)
    assert any("reversibility.deadlines.erasure_days" in p for p in problems)


def test_s3_keys_must_come_in_pairs_and_as_references() -> None:
    data = demo_data()
    data["perimeter"]["s3"] = {"access_key_id": "env:KEY_ID"}
    assert any("perimeter.s3.secret_access_key" in p for p in problems_of(data))
    data["perimeter"]["s3"] = {"access_key_id": "env:KEY_ID", "secret_access_key": "abc123"}
    problems = problems_of(data)
    assert any(
        "perimeter.s3.secret_access_key: must be a credential reference" in p for p in problems
    )
    assert not any("abc123" in p for p in problems)


def test_backup_identity_must_be_reference() -> None:
    data = demo_data()
    data["backups"]["identity"] = "/home/ops/backup.key"
    assert any("backups.identity: must be a credential reference" in p for p in problems_of(data))


def test_aws_access_key_literal_is_flagged_anywhere() -> None:
    data = demo_data()
    data["security"]["confidentiality"] = "key AKIAIOSFODNN7EXAMPLE here"
    problems = problems_of(data)
    assert any("security.confidentiality: looks like a literal secret" in p for p in problems)
    assert not any("AKIAIOSFODNN7EXAMPLE" in p for p in problems)


def test_literal_recipients_of_every_kind_are_accepted() -> None:
    data = demo_data()
    data["reversibility"]["recipients"] = [AGE_RECIPIENT, SSH_KEY, "file:keys/x.recipients"]
    playbook = Playbook.model_validate(data)
    assert len(playbook.reversibility.recipients) == 3


def test_secret_key_as_recipient_is_refused_without_echo() -> None:
    data = demo_data()
    secret = "AGE-SECRET-KEY-1QYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSJQNJ7V"
    data["reversibility"]["recipients"] = [secret]
    problems = problems_of(data)
    assert any("reversibility.recipients[0]" in p for p in problems)
    assert not any("QYQSZQGPQYQSZQGP" in p for p in problems)


def test_load_recipients_reads_files_and_skips_comments(tmp_path: Path) -> None:
    (tmp_path / "client.recipients").write_text(f"# the client\n\n{AGE_RECIPIENT}\n{SSH_KEY}\n")
    data = demo_data()
    data["reversibility"]["recipients"] = [SSH_KEY, "file:client.recipients"]
    playbook = Playbook.model_validate(data)
    assert playbook.reversibility.load_recipients(tmp_path) == [SSH_KEY, AGE_RECIPIENT, SSH_KEY]


def test_load_recipients_names_file_and_line_of_bad_entry(tmp_path: Path) -> None:
    bad = tmp_path / "bad.recipients"
    bad.write_text(f"{AGE_RECIPIENT}\nnot-a-key\n")
    playbook = load_playbook(DEMO)
    assert playbook.backups is not None
    playbook.backups.recipients = [f"file:{bad}"]
    with pytest.raises(KeyFormatError, match=rf"{bad}:2: bad recipient"):
        playbook.backups.load_recipients(tmp_path)


def test_post_quantum_and_classic_recipients_together_are_refused(tmp_path: Path) -> None:
    """age refuses to mix them; validate says so, and so does a recipients file read later."""
    from handover.bundle.age import MLKEM768X25519Identity

    pq = str(MLKEM768X25519Identity.generate().recipient())
    data = demo_data()
    data["reversibility"]["recipients"] = [pq, AGE_RECIPIENT]
    problems = problems_of(data)
    assert any("reversibility.recipients: " in p and "cannot be mixed" in p for p in problems)
    data["reversibility"]["recipients"] = [pq]
    playbook = Playbook.model_validate(data)
    (tmp_path / "more.recipients").write_text(f"{AGE_RECIPIENT}\n")
    playbook.reversibility.recipients = [pq, "file:more.recipients"]
    with pytest.raises(KeyFormatError, match=r"reversibility\.recipients: post-quantum"):
        playbook.reversibility.load_recipients(tmp_path)


def test_load_recipients_missing_file_names_field(tmp_path: Path) -> None:
    playbook = load_playbook(DEMO)
    with pytest.raises(KeyFormatError, match=r"reversibility\.recipients: recipients file .*"):
        playbook.reversibility.load_recipients(tmp_path)


def test_templates_hold_exactly_the_documented_ids() -> None:
    for phase in PHASES:
        items = load_phase_template(phase)
        assert [item["id"] for item in items] == DOCUMENTED_IDS[phase]
        for item in items:
            assert set(item) == {"id", "title", "clause", "owner", "evidence_kind"}
            assert item["owner"] in ("provider", "client")
            assert item["title"] and item["clause"]


def test_templates_are_package_data_and_match_playbooks_folder() -> None:
    for phase in PHASES:
        packaged = resources.files("handover.contract").joinpath("templates", f"{phase}.yaml")
        assert packaged.is_file()
        shown = PROJECT_ROOT / "playbooks" / "templates" / f"{phase}.yaml"
        assert filecmp.cmp(str(packaged), shown, shallow=False)


def test_unknown_phase_is_refused() -> None:
    with pytest.raises(UsageError, match="unknown phase 'exit'"):
        load_phase_template("exit")


def test_phase_items_apply_add_waive_reword() -> None:
    playbook = load_playbook(ACME)
    takeover = {item["id"]: item for item in phase_items(playbook, "takeover")}
    assert list(takeover)[-1] == "m365-tenant-audit"
    assert takeover["m365-tenant-audit"]["evidence_kind"] == "report"
    assert takeover["documentation-collected"]["title"].startswith("Documentation collected from")
    assert all(item["waived_reason"] is None for item in takeover.values())
    implementation = {item["id"]: item for item in phase_items(playbook, "implementation")}
    assert implementation["reversibility-drill-scheduled"]["waived_reason"].startswith("Premier")
    assert len(implementation) == len(DOCUMENTED_IDS["implementation"])


def test_phase_items_do_not_change_the_template() -> None:
    playbook = load_playbook(ACME)
    phase_items(playbook, "takeover")
    titles = {item["id"]: item["title"] for item in load_phase_template("takeover")}
    assert not titles["documentation-collected"].startswith("Documentation collected from")
    assert "waived_reason" not in load_phase_template("takeover")[0]


def test_override_of_added_item_is_allowed() -> None:
    data = demo_data()
    data["phases"]["operational"] = {
        "add": [
            {
                "id": "antivirus-report",
                "title": "Antivirus report",
                "clause": "Art. 9 Sécurité",
                "owner": "provider",
                "evidence_kind": "report",
            }
        ],
        "waive": [{"id": "antivirus-report", "reason": "no antivirus in scope"}],
    }
    items = phase_items(Playbook.model_validate(data), "operational")
    assert items[-1]["id"] == "antivirus-report"
    assert items[-1]["waived_reason"] == "no antivirus in scope"


def test_json_schema_has_sections_and_descriptions() -> None:
    schema = playbook_json_schema()
    assert set(schema["required"]) == {"contract", "perimeter", "reversibility"}
    host = schema["$defs"]["Host"]
    assert host["additionalProperties"] is False
    assert host["properties"]["transport"]["enum"] == ["ssh", "local"]
    assert "description" in host["properties"]["host_key"]


def test_empty_and_non_mapping_documents() -> None:
    with pytest.raises(PlaybookError, match=r"t\.yaml:1: .*empty playbook"):
        validate_playbook_text("# nothing\n", "t.yaml")
    with pytest.raises(PlaybookError, match=r"t\.yaml:1: .*expected a mapping"):
        validate_playbook_text("- a\n- b\n", "t.yaml")


def test_directory_is_not_a_playbook(tmp_path: Path) -> None:
    with pytest.raises(PlaybookError, match="is a directory"):
        load_playbook(tmp_path)


def test_non_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("contract: {title: Infogérance}\n".encode("latin-1"))
    with pytest.raises(PlaybookError, match="not UTF-8"):
        load_playbook(path)


@pytest.mark.parametrize("example", [DEMO, ACME], ids=["demo", "acme"])
def test_examples_conform_to_the_exported_json_schema(example: Path) -> None:
    import json

    import jsonschema

    schema = playbook_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    # Editors see YAML dates as strings: compare in that form.
    data = json.loads(json.dumps(yaml.safe_load(example.read_text()), default=str))
    jsonschema.validate(data, schema)
    data["contract"]["colour"] = "blue"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, schema)


def test_direct_model_validation_errors_never_show_values() -> None:
    from pydantic import ValidationError

    data = demo_data()
    data["perimeter"]["hosts"][0]["credential"] = "TOPSECRET-Value-42"
    with pytest.raises(ValidationError) as info:
        Playbook.model_validate(data)
    assert "must be a credential reference" in str(info.value)
    assert "TOPSECRET" not in str(info.value)


def test_recursive_alias_is_refused() -> None:
    with pytest.raises(PlaybookError, match=r"t\.yaml:2: recursive YAML alias"):
        validate_playbook_text("contract: {}\nperimeter: &p [1, *p]\n", "t.yaml")


def test_alias_bomb_is_refused_quickly() -> None:
    rows = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    rows += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    with pytest.raises(PlaybookError, match="once YAML aliases are expanded"):
        validate_playbook_text("\n".join(rows) + "\n", "t.yaml")


def test_aliases_within_limits_are_fine() -> None:
    text = DEMO.read_text().replace("  provider_access:\n", "  provider_access:\n", 1)
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHSCZ9sbi2CVtTkG0IeeEcWBL3K2zJ9UCicMYeBzAFKm"
    first = text.index(f'public_keys: ["{key}')
    text = text[:first] + "public_keys: &ops_keys [" + text[first + len("public_keys: [") :]
    rest = text.index("public_keys: [", first)
    end = text.index("]", rest)
    text = text[:rest] + "public_keys: *ops_keys" + text[end + 1 :]
    playbook = validate_playbook_text(text, "t.yaml")
    assert playbook.security.provider_access[1].public_keys[0].startswith(key)


def test_read_contract_id_reads_the_id_alone_and_never_raises(tmp_path: Path) -> None:
    assert read_contract_id(Path("playbooks/examples/acme.yaml")) == "acme-2026"
    invalid = tmp_path / "invalid.yaml"
    invalid.write_text("contract:\n  id: acme-2026\nperimeter: 12\n")
    assert read_contract_id(invalid) == "acme-2026"  # the rest is the flow's to report
    cases = {
        "missing.yaml": None,
        "syntax.yaml": "contract: [\n",
        "list.yaml": "- a\n",
        "no-id.yaml": "contract: {title: x}\n",
        "binary.yaml": b"\xff\xfe",
        "bomb.yaml": "a: &a [1]\n"
        + "".join(
            f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}]\n"
            for p, c in zip("abcdefghij", "bcdefghijk", strict=True)
        ),
    }
    for name, content in cases.items():
        path = tmp_path / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        elif content is not None:
            path.write_text(content)
        assert read_contract_id(path) is None, name
    assert read_contract_id(tmp_path) is None  # a folder


def _with_transition(days: int, extension: dict[str, Any] | None = None) -> dict[str, Any]:
    data = demo_data()
    deadlines = data["reversibility"]["deadlines"]
    deadlines["transition_days"] = days
    if extension is not None:
        deadlines["transition_extension"] = extension
    return data


UNFEASIBLE = {"basis": "data-act-art-25-4", "justification": "40 TB over a 1 Gbit/s link"}
TUILAGE = {
    "basis": "contractual-tuilage",
    "justification": "the incoming team runs the estate beside us",
    "clause": "Art. 12.2 Tuilage",
}


def test_transition_above_30_days_needs_a_declared_basis() -> None:
    problems = problems_of(_with_transition(45))
    assert len(problems) == 1, problems
    assert (
        "reversibility.deadlines.transition_days: transition_days is 45, must be between 1 and "
        "30: the transitional period is at most 30 days (Data Act art. 25(2)); a longer one needs "
        "transition_extension with its legal basis" in problems[0]
    )


@pytest.mark.parametrize(
    ("extension", "days", "bound", "rule"),
    [
        (
            UNFEASIBLE,
            213,
            "must be between 31 and 212",
            "may not exceed 7 months (Data Act art. 25(4))",
        ),
        (
            TUILAGE,
            181,
            "must be between 31 and 180",
            "tuilage) is at most 180 days (handover's bound",
        ),
        (UNFEASIBLE, 30, "must be between 31 and 212", "needs no transition_extension; remove it"),
    ],
)
def test_extended_transition_stays_within_its_basis(
    extension: dict[str, Any], days: int, bound: str, rule: str
) -> None:
    problems = problems_of(_with_transition(days, extension))
    assert len(problems) == 1, problems
    assert (
        f"reversibility.deadlines.transition_days: transition_days is {days}, {bound}"
        in (problems[0])
    )
    assert rule in problems[0]


def test_extended_transition_within_its_basis_validates() -> None:
    for days, extension in ((212, UNFEASIBLE), (180, TUILAGE), (31, TUILAGE)):
        text = yaml.safe_dump(_with_transition(days, extension), allow_unicode=True)
        playbook = validate_playbook_text(text, "t.yaml")
        deadlines = playbook.reversibility.deadlines
        assert deadlines.transition_days == days
        assert deadlines.transition_extension is not None
        assert extension["justification"] in deadlines.transition_basis()


def test_transition_extension_fields_are_checked() -> None:
    no_clause = {k: v for k, v in TUILAGE.items() if k != "clause"}
    problems = problems_of(_with_transition(60, no_clause))
    assert any(
        "reversibility.deadlines.transition_extension.clause: required for contractual-tuilage" in p
        for p in problems
    ), problems
    problems = problems_of(_with_transition(60, {**UNFEASIBLE, "basis": "data-act-art-25-5"}))
    assert any("reversibility.deadlines.transition_extension.basis" in p for p in problems)
    problems = problems_of(_with_transition(60, {"basis": "data-act-art-25-4"}))
    assert any(
        "reversibility.deadlines.transition_extension.justification: missing" in p for p in problems
    )


def test_schema_describes_the_transition_extension() -> None:
    schema = playbook_json_schema()
    extension = schema["$defs"]["TransitionExtension"]
    assert extension["properties"]["basis"]["enum"] == ["data-act-art-25-4", "contractual-tuilage"]
    assert "14 working days" in extension["properties"]["basis"]["description"]
    assert set(extension["required"]) == {"basis", "justification"}
    transition = schema["$defs"]["Deadlines"]["properties"]["transition_days"]
    assert "up to 212" in transition["description"] and "up to 180" in transition["description"]
