"""What `handover validate` checks beyond the schema (`handover.contract.readiness`).

Each test starts from a playbook `handover init` would write and breaks or
completes it in one place; the CLI tests go through the real typer app.
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

import handover.cli.playbook_cmd  # noqa: F401  (registers validate)
from handover.bundle.age.x25519 import X25519Identity
from handover.cli import app
from handover.contract.checklists import load_phase_template
from handover.contract.init_template import InitAnswers, InitContact, render_playbook
from handover.contract.loader import load_playbook, validate_playbook_text
from handover.contract.readiness import (
    FLOW_ITEMS,
    Finding,
    home_vault_names,
    located_lines,
    readiness_findings,
    reference_problem,
)
from handover.phases import PHASES
from handover.secrets.vault import Kind, Vault, VaultEntry
from handover.state.home import handover_home

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ACME = PROJECT_ROOT / "playbooks" / "examples" / "acme.yaml"
AGE = "age1v322a6tqy0hfjetkya58q0qj594cr3g0xayqhungpjsf6qtn3ewsxq6f7m"
runner = CliRunner()


def base_text(contract: str = "ready-1", contacts: bool = True) -> str:
    people = [InitContact(name="Ana", email="ana@example.org")] if contacts else []
    return render_playbook(
        InitAnswers(
            contract_id=contract,
            title="T",
            provider="P SAS",
            client="C SARL",
            provider_contacts=people,
            client_contacts=people,
            recipients=[AGE],
            signed=date(2026, 1, 1),
            effective=date(2026, 1, 1),
            delivery_path="exports/x",
        )
    )


def no_vault(contract: str) -> str:
    return "no vault"


def findings(text: str, tmp_path: Path, **kw: object) -> list[Finding]:
    playbook = validate_playbook_text(text, "p.yaml")
    env = kw.pop("environ", {})
    names = kw.pop("vault_names", no_vault)
    return readiness_findings(playbook, environ=env, base=tmp_path, vault_names=names)  # type: ignore[arg-type]


def errors(found: list[Finding]) -> list[Finding]:
    return [f for f in found if f.severity == "error"]


def test_flow_items_are_the_ids_the_flows_tick_and_the_templates_list() -> None:
    """FLOW_ITEMS is read from the flows' `run.item("<id>"` calls: it cannot drift from them."""
    for phase in PHASES:
        source = "".join(  # the operational tasks are flows of their own (operational_tasks.py)
            path.read_text(encoding="utf-8")
            for path in sorted((PROJECT_ROOT / "flows").glob(f"{phase}*.py"))
        )
        ticked = set(re.findall(r"\.item\(\s*\"([a-z0-9-]+)\"", source))
        assert ticked == FLOW_ITEMS[str(phase)], phase
        assert ticked == {item["id"] for item in load_phase_template(phase)}, phase


def test_a_playbook_init_writes_has_no_error(tmp_path: Path) -> None:
    found = findings(base_text(), tmp_path)
    assert errors(found) == []
    # the signing key is a vault reference and there is no vault here: a warning
    assert any(f.loc == ("reversibility", "signing_key") for f in found)


def test_parties_without_contacts_are_an_error_at_their_line(tmp_path: Path) -> None:
    text = base_text(contacts=False)
    found = errors(findings(text, tmp_path))
    assert [f.loc for f in found] == [
        ("contract", "parties", "provider", "contacts"),
        ("contract", "parties", "client", "contacts"),
    ]
    lines = located_lines(found, text, "p.yaml")
    provider_line = next(
        i for i, row in enumerate(text.splitlines(), 1) if row.strip().startswith("contacts: []")
    )
    assert lines[0] == (
        "error",
        f"p.yaml:{provider_line}: contract.parties.provider.contacts: no contact for the "
        "provider: takeover's item parties-confirmed needs at least one (name, and e-mail or "
        "phone)",
    )


ADDED = """phases:
  takeover:
    add:
      - {id: m365-audit, title: M365 audit, clause: Annexe 2, owner: provider,
         evidence_kind: report%s}
"""


def with_added_item(manual: str) -> str:
    text = base_text()
    start = text.index("phases:\n")
    return text[:start] + ADDED % manual


def test_an_added_item_no_flow_ticks_must_be_manual(tmp_path: Path) -> None:
    found = errors(findings(with_added_item(""), tmp_path))
    assert len(found) == 1
    assert found[0].loc == ("phases", "takeover", "add", 0, "id")
    assert "no flow ticks item 'm365-audit'" in found[0].message
    assert "handover item done ready-1 takeover m365-audit" in found[0].message
    assert errors(findings(with_added_item(", manual: true"), tmp_path)) == []


def test_references_are_looked_up_not_resolved(tmp_path: Path) -> None:
    (tmp_path / "key").write_text("x", encoding="utf-8")
    assert reference_problem("env:A", {"A": ""}, tmp_path, no_vault) is None
    assert "A is not set" in (reference_problem("env:A", {}, tmp_path, no_vault) or "")
    assert reference_problem("file:key", {}, tmp_path, no_vault) is None
    assert "no such file" in (reference_problem("file:nope", {}, tmp_path, no_vault) or "")
    assert reference_problem("vault:c1/web", {}, tmp_path, lambda c: {"web"}) is None
    missing = reference_problem("vault:c1/db", {}, tmp_path, lambda c: {"web"}) or ""
    assert "no entry 'db' in the vault of c1" in missing
    assert reference_problem("vault:c1/db", {}, tmp_path, no_vault) == "vault:c1/db: no vault"
    assert reference_problem("prefect-secret:blk", {}, tmp_path, no_vault) is None
    odd = reference_problem("vault:../x/y", {}, tmp_path, lambda c: {"y"}) or ""
    assert "expected vault:CONTRACT/NAME" in odd


def test_present_references_and_key_files_give_no_warning(tmp_path: Path) -> None:
    text = base_text().replace("signing_key: vault:ready-1/provider-signing", "signing_key: env:SK")
    text = text.replace(
        "  # client_signers: [file:keys/ready-1/client.allowed_signers]",
        "  client_signers: [file:signers]",
    )
    found = findings(text, tmp_path, environ={})
    assert {f.loc for f in found} == {
        ("reversibility", "signing_key"),
        ("reversibility", "client_signers", 0),
    }
    assert all(f.severity == "warning" for f in found)
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIYdxMpx5Ubyph7LA+tFCjItj2PJz+sUZXgBDaz1scFM x"
    (tmp_path / "signers").write_text(f"daf@c.example {key}\n", encoding="utf-8")
    assert findings(text, tmp_path, environ={"SK": "set"}) == []


def test_an_unreadable_recipients_file_is_a_warning_at_its_entry(tmp_path: Path) -> None:
    text = base_text().replace(f'    - "{AGE}"', '    - "file:client.recipients"')
    found = [f for f in findings(text, tmp_path) if f.loc[:2] == ("reversibility", "recipients")]
    assert [f.loc for f in found] == [("reversibility", "recipients", 0)]
    assert "cannot read" in found[0].message
    (tmp_path / "client.recipients").write_text("not-a-key\n", encoding="utf-8")
    found = [f for f in findings(text, tmp_path) if f.loc[:2] == ("reversibility", "recipients")]
    assert "client.recipients:1: bad recipient" in found[0].message
    (tmp_path / "client.recipients").write_text(f"# client\n{AGE}\n", encoding="utf-8")
    assert not [f for f in findings(text, tmp_path) if f.loc[:2] == ("reversibility", "recipients")]


def test_validate_fails_on_errors_and_ready_on_what_this_machine_lacks(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(base_text(), encoding="utf-8")
    result = runner.invoke(app, ["validate", str(good)])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith(f"ok: {good} (contract ready-1") and result.stderr == ""
    ready = runner.invoke(app, ["validate", "--ready", str(good)])
    assert ready.exit_code == 2
    assert f"error: {good}:" in ready.stderr and "reversibility.signing_key" in ready.stderr
    assert "no client_signers" in ready.stderr and "ok:" not in ready.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text(with_added_item(""), encoding="utf-8")
    result = runner.invoke(app, ["validate", str(bad), str(good)])
    assert result.exit_code == 2
    assert "phases.takeover.add[0].id: no flow ticks item 'm365-audit'" in result.stderr
    assert f"ok: {good}" in result.stdout and f"ok: {bad}" not in result.stdout


def test_the_examples_have_no_error() -> None:
    playbook = load_playbook(ACME)
    assert errors(readiness_findings(playbook, environ={}, vault_names=no_vault)) == []


def test_vault_references_are_looked_up_in_the_contracts_vault(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The real vault under HANDOVER_HOME: entry names read, values never; no folder created."""
    assert "no vault for contract ready-1 yet" in str(home_vault_names("ready-1"))
    assert not (handover_home() / "contracts" / "ready-1").exists()
    monkeypatch.setenv("HANDOVER_VAULT_KEY", str(X25519Identity.generate()))
    vault = Vault("ready-1")
    vault.init()
    vault.add(VaultEntry(name="provider-signing", kind=Kind.SSH_KEY), b"not-a-real-key")
    assert set(home_vault_names("ready-1")) == {"provider-signing"}
    playbook = validate_playbook_text(base_text(), "p.yaml")
    found = readiness_findings(playbook, environ={})
    assert ("reversibility", "signing_key") not in [f.loc for f in found]
    monkeypatch.setenv("HANDOVER_VAULT_KEY", str(X25519Identity.generate()))  # the wrong key
    problem = home_vault_names("ready-1")
    assert isinstance(problem, str) and "not-a-real-key" not in problem


def test_every_secret_ref_is_checked_at_its_own_line(tmp_path: Path) -> None:
    """References come from `Playbook.secret_refs`: a dump's env is checked like a host's key."""
    text = (
        base_text()
        .replace(
            "  datasets: []   #",
            "  datasets:\n"
            "    - name: erp\n"
            "      host: web01\n"
            "      dump: {command: pg_dump erp, filename: erp.dump, env: {PGPASSWORD: env:PGPW}}\n"
            "  #",
        )
        .replace(
            "perimeter:\n  hosts: []",
            "perimeter:\n  hosts:\n    - {name: web01, transport: ssh, address: h, "
            "credential: 'file:web01.key'}",
        )
    )
    found = findings(text, tmp_path)
    locs = {f.loc: f.message for f in found if f.loc[0] == "perimeter"}
    assert locs == {
        ("perimeter", "hosts", 0, "credential"): "file:web01.key: no such file",
        ("perimeter", "datasets", 0, "dump", "env", "PGPASSWORD"): (
            "env:PGPW: environment variable PGPW is not set"
        ),
    }
    lines = dict((m.split(": ", 2)[1], m) for _s, m in located_lines(found, text, "p.yaml"))
    dump_line = 1 + text.splitlines().index(
        "      dump: {command: pg_dump erp, filename: erp.dump, env: {PGPASSWORD: env:PGPW}}"
    )
    assert lines["perimeter.datasets[0].dump.env.PGPASSWORD"].startswith(f"p.yaml:{dump_line}:")
