"""`handover acceptance statement|submit`, the drop folder, and the automatic (test) answer."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flows.acceptance import AUTO_SIGNATORY_NOTE, TEST_SIGNER_ENV, auto_acceptance_input
from handover.bundle.sshsig import SigningKey, sign
from handover.bundle.summary import SealedBundle
from handover.bundle.sums import render_sums
from handover.cli import _register, app
from handover.contract.loader import load_playbook
from handover.errors import UsageError
from handover.exit.acceptance import (
    NAMESPACE,
    AcceptanceRejected,
    parse_statement,
    playbook_signers,
    sums_sha256,
    verify_statement,
)
from handover.exit.acceptance_drop import drop_name, read_dropped
from handover.exit.delivery import FolderDelivery
from handover.exit.progress import ExitProgress, ExitState
from tests.conftest import PROJECT_ROOT

_register()
runner = CliRunner()
BUNDLE = "demo-estate-20260301T120000Z"
FILES = {"README.txt": "1" * 64, "volumes/0001-www.tar.age": "2" * 64}


@dataclass
class Exit:
    playbook: Path
    delivered: Path
    client_key: SigningKey


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The demo playbook and keys in a folder of their own (paths relative to it)."""
    from handover.demo.keys import make_demo_keys

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HANDOVER_HOME", str(tmp_path / ".handover"))
    keys = make_demo_keys(tmp_path / ".handover" / "demo" / "keys")
    monkeypatch.setenv(TEST_SIGNER_ENV, str(keys.client_signing_key))
    shutil.copy(PROJECT_ROOT / "playbooks" / "examples" / "demo.yaml", tmp_path / "demo.yaml")
    return tmp_path


@pytest.fixture
def delivered(workspace: Path) -> Exit:
    """An exit whose bundle was sealed and delivered to a folder (its SHA256SUMS there)."""
    folder = workspace / "deliveries" / BUNDLE
    folder.mkdir(parents=True)
    (folder / "SHA256SUMS").write_bytes(render_sums(FILES))
    sealed = SealedBundle(
        location=str(folder),
        files=FILES,
        manifest_sha256="3" * 64,
        provider_key="ssh-ed25519 AAAA provider",
        created="2026-03-01T12:00:00+00:00",
        volumes=[],
    )
    state = ExitState(
        bundle_name=BUNDLE, sealed=sealed, delivery=FolderDelivery(location=str(folder))
    )
    ExitProgress("demo-estate").save(state)
    key = SigningKey.load(workspace / ".handover" / "demo" / "keys" / "client-signing")
    return Exit(workspace / "demo.yaml", folder, key)


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_statement_needs_a_delivered_bundle(workspace: Path) -> None:
    code, _, err = run("acceptance", "statement", "demo.yaml", "--signatory", "J. Dupont")
    assert code == 2
    assert "no bundle delivered yet" in err


def test_statement_names_the_delivered_bundle_and_its_sums(delivered: Exit) -> None:
    code, out, err = run(
        "acceptance",
        "statement",
        str(delivered.playbook),
        "--signatory",
        "Jeanne Dupont, DSI",
        "--decision",
        "accepted-with-reservations",
        "--reservations",
        "the db volume is empty",
        "--date",
        "2026-03-02",
    )
    assert code == 0, err
    statement = parse_statement(out)  # stdout is the statement, byte for byte
    assert statement.bundle == BUNDLE
    assert statement.sums_sha256 == sums_sha256(FILES)
    assert statement.decision == "accepted-with-reservations"
    assert statement.reservations == "the db volume is empty"
    assert statement.client == load_playbook(delivered.playbook).contract.parties.client.legal_name
    code, _, err = run(
        "acceptance", "statement", "demo.yaml", "--signatory", "x", "--decision", "maybe"
    )
    assert code == 2 and "--decision 'maybe'" in err
    code, _, err = run(
        "acceptance", "statement", "demo.yaml", "--signatory", "x", "--decision", "refused",
        "--early-erasure",
    )  # fmt: skip
    assert code == 2 and "early erasure can only be asked" in err


def _signed(key: SigningKey) -> tuple[Path, Path]:
    """An accepted statement (early erasure) printed by the CLI, signed with `key`."""
    code, _, err = run(
        "acceptance", "statement", "demo.yaml", "--signatory", "Jeanne Dupont",
        "--early-erasure", "-o", "acceptance.txt",
    )  # fmt: skip
    assert code == 0, err
    statement = Path("acceptance.txt")
    signature = Path("acceptance.txt.sig")
    signature.write_text(sign(statement.read_bytes(), key, NAMESPACE))
    return statement, signature


def test_submit_checks_the_pair_then_drops_it_beside_the_delivery(delivered: Exit) -> None:
    statement, signature = _signed(delivered.client_key)
    code, out, err = run("acceptance", "submit", "demo.yaml", "--statement", str(statement))
    assert code == 0, err
    assert "accepted by Jeanne Dupont" in out and delivered.client_key.fingerprint() in out
    drop = delivered.delivered.parent / f"{BUNDLE}.exit"
    assert (drop / "acceptance.txt").read_bytes() == statement.read_bytes()
    assert (drop / "acceptance.txt.sig").read_text() == signature.read_text()
    playbook = load_playbook(delivered.playbook)
    delivery = FolderDelivery(location=str(delivered.delivered))
    assert read_dropped(playbook, BUNDLE, delivery) == (
        statement.read_bytes(),
        signature.read_text(),
    )


def test_submit_refuses_a_pair_signed_by_another_key_and_drops_nothing(delivered: Exit) -> None:
    intruder = SigningKey.generate()
    statement, _ = _signed(intruder)
    code, _, err = run("acceptance", "submit", "demo.yaml", "--statement", str(statement))
    assert code == 2
    assert f"signed by key {intruder.fingerprint()}" in err
    assert "client_signers" in err
    assert not (delivered.delivered.parent / f"{BUNDLE}.exit").exists()


def test_without_client_signers_no_acceptance_can_be_verified(delivered: Exit) -> None:
    text = delivered.playbook.read_text()
    line = next(row for row in text.splitlines() if "client_signers" in row)
    delivered.playbook.write_text(text.replace(line + "\n", ""))
    assert load_playbook(delivered.playbook).reversibility.client_signers is None  # still valid
    with pytest.raises(AcceptanceRejected, match=r"add reversibility\.client_signers"):
        playbook_signers(load_playbook(delivered.playbook))
    statement, _ = _signed(delivered.client_key)
    code, _, err = run("acceptance", "submit", "demo.yaml", "--statement", str(statement))
    assert code == 2 and "reversibility.client_signers" in err


def test_drop_names_stay_inside_the_drop_folder() -> None:
    assert drop_name("acceptance.txt.sig") == "acceptance.txt"
    for bad in ("../acceptance.txt", "/etc/passwd", "a/b.txt", ""):
        with pytest.raises(UsageError):
            drop_name(bad)


def test_the_automatic_answer_is_a_statement_signed_with_the_test_key(
    delivered: Exit, monkeypatch: pytest.MonkeyPatch
) -> None:
    answer = auto_acceptance_input(delivered.playbook, "run-id")
    playbook = load_playbook(delivered.playbook)
    verified = verify_statement(
        answer["statement"],
        answer["signature"],
        playbook_signers(playbook),
        BUNDLE,
        sums_sha256(FILES),
    )
    assert verified.signer_fingerprint == delivered.client_key.fingerprint()
    assert verified.statement.decision == "accepted"
    assert verified.statement.early_erasure is True
    legal_name = playbook.contract.parties.client.legal_name
    assert verified.statement.signatory == f"{legal_name} ({AUTO_SIGNATORY_NOTE})"
    kept = auto_acceptance_input(playbook, None, early_erasure=False)
    assert "early-erasure: no\n" in kept["statement"]
    monkeypatch.delenv(TEST_SIGNER_ENV)
    with pytest.raises(UsageError, match=TEST_SIGNER_ENV):
        auto_acceptance_input(playbook, None)
