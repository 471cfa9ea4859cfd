"""`handover report`: the signed audit report, built from a contract's real records.

The contract state is made the way the flows make it (a checklist store,
evidence files, a signed checkpoint) in the test's own HANDOVER_HOME; the
signature is checked with OpenSSH itself, as an auditor would.
"""

from __future__ import annotations

import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
from typer.testing import CliRunner

from handover.bundle.sshsig import SigningKey
from handover.checklist.checkpoints import Checkpoint, CheckpointFile, make_checkpoint
from handover.checklist.model import evidence_for_file
from handover.checklist.store import ChecklistStore
from handover.checklist.trail import verify_trail
from handover.cli import _register, app
from handover.contract.loader import load_playbook
from handover.documents.audit_report import REPORT_NAMESPACE, audit_report
from handover.exit.progress import AcceptanceRecord, ExitProgress, ExitState
from handover.state.layout import ContractPaths
from tests.conftest import PROJECT_ROOT, require_binary
from tests.unit.documents_fixtures import in_language

_register()
DEMO = PROJECT_ROOT / "playbooks" / "examples" / "demo.yaml"
C = "demo-estate"
P = "takeover"
TEMPLATE = [
    {"id": "inventory", "title": "Inventory", "clause": "3.1", "owner": "provider"},
    {"id": "baseline", "title": "Baseline", "clause": "3.2", "owner": "provider"},
    {"id": "keys", "title": "Keys", "clause": "3.3", "owner": "client", "waived_reason": "n/a"},
]


class Contract:
    """A contract with a takeover run and one signed checkpoint."""

    def __init__(self, tmp_path: Path) -> None:
        self.key = SigningKey.generate()
        key_file = tmp_path / "provider-signing"
        key_file.write_bytes(self.key.private_openssh())
        text, count = re.subn(
            r"(?m)^(\s*signing_key:).*$", rf"\1 file:{key_file}", DEMO.read_text("utf-8")
        )
        assert count == 1, "the demo playbook has no reversibility.signing_key line"
        self.playbook = tmp_path / "playbook.yaml"
        self.playbook.write_text(text, "utf-8")
        assert load_playbook(self.playbook).contract_id == C

        self.store = ChecklistStore()
        self.evidence_file = tmp_path / "inventory.json"
        self.evidence_file.write_text('{"hosts": ["web01"]}')
        evidence = evidence_for_file(self.evidence_file, "inventory")
        assert evidence.sha256 is not None
        self.sha256: str = evidence.sha256
        self.store.open(C, P, TEMPLATE)
        self.store.start(C, P, "inventory", "flow:takeover")
        self.store.complete(C, P, "inventory", "alice@provider", [evidence])
        self.store.start(C, P, "baseline", "flow:takeover")
        self.store.fail(C, P, "baseline", "flow:takeover", "web01 unreachable on port 22")
        self.checkpoint = make_checkpoint(
            self.store.audit_log(C),
            self.key,
            "takeover end",
            checkpoints=CheckpointFile(self.store.checkpoints_path(C)),
        )


@pytest.fixture
def contract(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Contract:
    monkeypatch.setenv("HANDOVER_ACTOR", "auditor@example")
    return Contract(tmp_path)


def _report(playbook: Path, *extra: str) -> tuple[str, dict[str, Path]]:
    result = CliRunner().invoke(app, ["report", str(playbook), *extra], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    written = [
        Path(line.split(": ", 1)[1])
        for line in result.output.splitlines()
        if line.startswith("written: ")
    ]
    by_suffix = {
        "".join(p.suffixes[-2:]) if p.name.endswith(".md.sig") else p.suffix: p for p in written
    }
    assert set(by_suffix) == {".md", ".html", ".md.sig", ".allowed_signers"}, result.output
    return result.output, by_suffix


def _ssh_verify(files: dict[str, Path], markdown: bytes) -> subprocess.CompletedProcess[bytes]:
    keygen = require_binary("ssh-keygen", "openssh-client")
    return subprocess.run(
        [
            *(keygen, "-Y", "verify", "-f", str(files[".allowed_signers"]), "-I", "provider"),
            *("-n", REPORT_NAMESPACE, "-s", str(files[".md.sig"])),
        ],
        input=markdown,
        capture_output=True,
    )


def test_report_lists_hashes_checkpoint_and_intact_and_is_signed(
    contract: Contract, tmp_path: Path
) -> None:
    output, files = _report(contract.playbook, "--out", str(tmp_path / "out"))
    md = files[".md"]
    assert md.parent == tmp_path / "out"
    assert re.fullmatch(r"audit-report-demo-estate-\d{8}T\d{6}Z\.md", md.name), md.name
    text = md.read_text("utf-8")
    html = files[".html"].read_text("utf-8")
    for form in (text, html):
        assert contract.sha256 in form  # in full: an auditor compares it
        assert contract.checkpoint.hash in form and contract.checkpoint.at in form
        assert contract.key.fingerprint() in form
        assert "web01 unreachable on port 22" in form
    # The demo contract is French (the default): the report reads in French.
    assert "intègre" in text and "NON intègre" not in text
    assert "auditor@example" in text and "alice@provider" in text
    assert "takeover end" in text
    assert (
        "Non commencées (pas encore de liste de contrôle) : "
        "mise en œuvre, exploitation, réversibilité." in text
    ), text
    assert "Aucune réception enregistrée" in text
    assert "audit trail intact" in output

    ok = _ssh_verify(files, md.read_bytes())
    assert ok.returncode == 0, ok.stderr
    # The command the tool prints is the one that works, as printed.
    command = output.split("check it with:\n", 1)[1].splitlines()[0].strip()
    assert command.startswith("ssh-keygen -Y verify -f ")
    shell = subprocess.run(command, shell=True, capture_output=True)
    assert shell.returncode == 0 and b"Good" in shell.stdout + shell.stderr, shell.stderr

    edited = md.read_bytes().replace(contract.sha256.encode(), b"0" * 64)
    assert edited != md.read_bytes()
    refused = _ssh_verify(files, edited)
    assert refused.returncode != 0


def test_a_log_cut_after_the_checkpoint_shows_in_the_report(
    contract: Contract, tmp_path: Path
) -> None:
    log = contract.store.audit_log(C).path
    log.write_bytes(b"".join(log.read_bytes().splitlines(keepends=True)[:3]))
    output, files = _report(contract.playbook, "--out", str(tmp_path / "out"))
    text = files[".md"].read_text("utf-8")
    assert "NON intègre" in text
    assert (
        f"truncated: the log ends at seq 3 but {contract.checkpoint.label()} "
        f"signed seq {contract.checkpoint.seq}"
    ) in text
    assert "warning: audit trail NOT intact" in output
    assert _ssh_verify(files, files[".md"].read_bytes()).returncode == 0  # still signed


def test_the_acceptance_is_shown_and_the_default_folder_is_the_contracts(
    contract: Contract,
) -> None:
    fields: dict[str, Any] = {
        "accepted": True,
        "accepted_by": "Jeanne Martin, DSI",
        "comment": "",
        "at": "2026-06-01T10:00:00+00:00",
        "early_erasure": True,
        "decision": "accepted",
        "signer_fingerprint": "SHA256:clientkeyfingerprint",
    }
    # The record is growing (signed answers): older versions refuse the newer fields.
    signed = "signer_fingerprint" in AcceptanceRecord.model_fields
    record = AcceptanceRecord.model_validate(
        {k: v for k, v in fields.items() if k in AcceptanceRecord.model_fields}
    )
    ExitProgress(C).save(ExitState(bundle_name="b1", acceptance=record))
    _output, files = _report(contract.playbook)
    assert files[".md"].parent == ContractPaths(C).root / "reports"
    text = files[".md"].read_text("utf-8")
    section = text.split("Réception par le client", 1)[1]
    for expected in ("acceptée", "Jeanne Martin, DSI", "2026-06-01T10:00:00+00:00"):
        assert expected in section
    if signed:
        assert "SHA256:clientkeyfingerprint" in section
    else:
        assert "aucune (enregistrement non signé)" in section
    assert re.search(r"Effacement anticipé demandé\W+oui", section), section


def test_a_damaged_exit_state_is_said_not_fatal(contract: Contract, tmp_path: Path) -> None:
    state = ExitProgress(C).file
    state.parent.mkdir(parents=True, exist_ok=True)
    state.write_text("{not json")
    _output, files = _report(contract.playbook, "--out", str(tmp_path / "out"))
    assert "L'état de la sortie est illisible :" in files[".md"].read_text("utf-8")


def test_an_older_acceptance_record_without_signer_fields_renders(contract: Contract) -> None:
    playbook = in_language(load_playbook(contract.playbook), "en")  # English, in UTC
    store = contract.store
    checkpoints: list[Checkpoint] = CheckpointFile(store.checkpoints_path(C)).read()[0]
    old = SimpleNamespace(accepted=False, accepted_by="Client", at="2026-06-01", comment="late")
    doc = audit_report(
        playbook,
        [store.load(C, P)],
        checkpoints,
        cast(Any, old),
        datetime(2026, 6, 2, 9, 0, tzinfo=UTC),
        trail=verify_trail(store, C, contract.key.public_line(), "test key"),
    )
    section = doc.markdown.split("Client acceptance", 1)[1]
    assert "not accepted" in section and "none (unsigned record)" in section
    assert "late" in section
    assert "2026-06-02 09:00 UTC" in doc.markdown and "auditor@example" in doc.markdown
