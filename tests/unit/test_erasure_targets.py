"""What the erasure deletes and keeps for a contract, and the certified erasure step of the exit."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import handover.connectors.s3.client as s3_client_module
import handover.connectors.s3.deletion as deletion
import handover.exit.erasure_certificate as erasure_certificate
from handover.bundle.age import X25519Identity
from handover.bundle.sshsig import SigningKey, verify
from handover.checklist.store import ChecklistStore
from handover.connectors.s3.deletion import DeletionCounts, FailedDeletion
from handover.contract.loader import load_playbook
from handover.contract.playbook import Playbook
from handover.errors import SecretRefError
from handover.exit.erasure import DeletionResult, erase_contract_copies, path_target, vault_target
from handover.exit.erasure_certificate import (
    ERASURE_NAMESPACE,
    erase_and_certify,
    journal_path,
    load_journal,
)
from handover.exit.erasure_targets import erasure_targets, kept_records, s3_prefix_deleter
from handover.phases import Phase
from handover.secrets.vault import Vault, VaultEntry
from handover.state.layout import ContractPaths

PLAYBOOK = Path("playbooks/examples/acme.yaml")


@pytest.fixture
def playbook() -> Playbook:
    return load_playbook(PLAYBOOK)


def _with_backups_in(playbook: Playbook, target: str) -> Playbook:
    assert playbook.backups is not None
    return playbook.model_copy(
        update={"backups": playbook.backups.model_copy(update={"target": target})}
    )


def _no_s3_credentials(playbook: Playbook) -> Playbook:
    """The acme playbook's S3 keys are vault references; these tests make no S3 call."""
    s3 = playbook.perimeter.s3
    assert s3 is not None
    plain = s3.model_copy(update={"access_key_id": None, "secret_access_key": None})
    return playbook.model_copy(
        update={"perimeter": playbook.perimeter.model_copy(update={"s3": plain})}
    )


def test_targets_are_the_working_copies_backups_delivered_bundle_and_vault(
    playbook: Playbook, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[object] = []
    monkeypatch.setattr(s3_client_module, "s3_client", lambda settings: made.append(settings))
    paths = ContractPaths(playbook.contract_id)
    targets = erasure_targets(playbook, "s3://provider-out/acme-2026/bundle-1/")
    # the S3 clients (and their credentials) are made now, before anything is deleted
    assert made == [playbook.perimeter.s3, playbook.perimeter.s3]
    copies = paths.working_copies()
    assert [(t.kind, t.location, t.description) for t in targets[: len(copies)]] == [
        ("local", str(folder), what) for folder, what in copies
    ]
    backups, delivered, vault = targets[len(copies) :]
    assert (backups.kind, backups.location) == (
        "s3",
        "s3://infogerance-backups/acme-2026/acme-2026/",
    )
    assert backups.delete is not None
    assert (delivered.location, delivered.description) == (
        "s3://provider-out/acme-2026/bundle-1/",
        "bundle in the provider's bucket",
    )
    assert (vault.kind, vault.location) == ("vault", str(paths.vault_file))


def test_folder_backups_and_a_folder_delivery(playbook: Playbook, tmp_path: Path) -> None:
    targets = erasure_targets(_with_backups_in(playbook, str(tmp_path / "backups")), None)
    assert [t.kind for t in targets[-2:]] == ["backups", "vault"]
    assert targets[-2].location == str(tmp_path / "backups" / playbook.contract_id)


def _fake_s3(monkeypatch: pytest.MonkeyPatch, counts: DeletionCounts) -> list[tuple[str, str]]:
    calls: list[tuple[str, str]] = []

    def delete_prefix(client: Any, bucket: str, prefix: str) -> DeletionCounts:
        calls.append((bucket, prefix))
        return counts

    monkeypatch.setattr(s3_client_module, "s3_client", lambda settings: object())
    monkeypatch.setattr(deletion, "delete_prefix", delete_prefix)
    return calls


def test_s3_deleter_counts_what_went(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _fake_s3(monkeypatch, DeletionCounts(objects=3, bytes=30, found=4))
    assert s3_prefix_deleter(None, "s3://bkt/p")() == DeletionResult(3, 30, found=4)
    assert calls == [("bkt", "p/")]


def test_s3_refusals_and_leftovers_fail_the_target_with_counts_and_codes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    refused = FailedDeletion("p/secret-name", "v1", "AccessDenied", "Access Denied")
    counts = DeletionCounts(
        objects=1, bytes=10, failed=(refused, refused), found=3, remaining_versions=2
    )
    _fake_s3(monkeypatch, counts)
    result = s3_prefix_deleter(None, "s3://bkt/p/")()
    assert result == DeletionResult(
        1,
        10,
        found=3,
        remaining=2,
        error="2 object version(s) not deleted (AccessDenied: 2)",
    )
    report = erase_contract_copies(
        "acme-2026", erasure_targets_with(s3_prefix_deleter(None, "s3://bkt/p/")), actor="ops"
    )
    (record,) = report.records
    assert (record.status, record.objects, record.remaining) == ("failed", 1, 2)
    assert record.error == (
        "2 object version(s) not deleted (AccessDenied: 2); 2 entries still present after deletion"
    )
    assert "secret-name" not in record.error


def erasure_targets_with(delete: Any) -> list[Any]:
    from handover.exit.erasure import s3_target

    return [s3_target("s3://bkt/p/", delete, "backups")]


def test_an_s3_client_that_cannot_be_made_fails_its_target_and_deletes_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = _fake_s3(monkeypatch, DeletionCounts(objects=0, bytes=0))

    def no_client(settings: Any) -> Any:
        raise SecretRefError("vault:acme-2026/s3-secret: no vault for contract acme-2026")

    monkeypatch.setattr(s3_client_module, "s3_client", no_client)
    (record,) = erase_contract_copies(
        "acme-2026", erasure_targets_with(s3_prefix_deleter(None, "s3://bkt/p/")), actor="ops"
    ).records
    assert record.status == "failed" and calls == []
    assert record.error == (
        "HandoverError: no S3 client, nothing deleted: SecretRefError: "
        "vault:acme-2026/s3-secret: no vault for contract acme-2026"
    )


def test_kept_records_list_exemptions_and_the_contracts_records(
    playbook: Playbook, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PREFECT_API_URL", "https://user:pw@prefect.example:4200/api?token=x")
    paths = ContractPaths(playbook.contract_id)
    paths.checklists_dir.mkdir(parents=True)
    paths.audit_log.write_text("{}\n")
    paths.documents_dir(Phase.TAKEOVER).mkdir(parents=True)
    paths.baselines_dir.mkdir(parents=True)
    paths.vault_file.write_bytes(b"sealed")
    (paths.root / "notes.txt").write_text("?")
    (paths.root / "audit.log.lock").write_text("")
    targets = erasure_targets(_no_s3_credentials(playbook), None)
    kept = kept_records(playbook, [t.location for t in targets])

    exempted = [(k.kind, k.what, k.basis) for k in kept if k.kind != "evidence"]
    assert exempted == [
        ("legal-retention" if e.legal_basis else "exempted", e.category, e.legal_basis or "")
        for e in playbook.reversibility.exempted
    ]
    where = {k.where: k.what for k in kept if k.kind == "evidence"}
    assert where[str(paths.checklists_dir)].startswith("the contract's checklists")
    assert where[str(paths.audit_log)] == "the hash-chained audit log of every checklist change"
    assert where[str(paths.documents_dir(Phase.TAKEOVER))] == "the takeover phase's reports"
    assert str(paths.phase_dir(Phase.TAKEOVER)) in where
    assert where[str(paths.root / "notes.txt")] == "another record of the contract's folder"
    assert where["Prefect server https://prefect.example:4200"].startswith("the Prefect run")
    assert str(paths.vault_file) not in where and str(paths.baselines_dir) not in where
    assert str(paths.phase_dir(Phase.OPERATIONAL)) not in where  # listed when it exists
    assert not any("lock" in w or "pw" in w or "token" in w for w in where)
    assert all(k.reason for k in kept)


def _sign_with(monkeypatch: pytest.MonkeyPatch, key: SigningKey | None) -> None:
    def load(_playbook: Playbook) -> SigningKey:
        if key is None:
            raise SecretRefError("env:SIGNING_KEY: environment variable is not set")
        return key

    monkeypatch.setattr(erasure_certificate, "signing_key", load)


def test_erase_and_certify_signs_records_and_journals_the_erasure(
    playbook: Playbook, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = SigningKey.generate()
    _sign_with(monkeypatch, key)
    copy = tmp_path / "copy"
    copy.mkdir()
    signed = erase_and_certify(playbook, "bundle-1", [path_target("local", copy, "a copy")])
    assert not copy.exists() and [r.status for r in signed.records] == ["erased"]
    assert (signed.complete, signed.remaining) == (True, [])
    assert "Résultat : complet" in signed.certificate  # acme's contract is French
    assert [k.what for k in signed.kept if k.kind != "evidence"] == [
        e.category for e in playbook.reversibility.exempted
    ]
    verify(
        signed.certificate.encode("utf-8"),
        signed.signature,
        signed.provider_key,
        ERASURE_NAMESPACE,
    )
    (entry,) = ChecklistStore().audit_log(playbook.contract_id).entries()
    assert entry["event"] == "erasure.certificate"
    assert (entry["data"]["bundle"], entry["data"]["complete"]) == ("bundle-1", True)
    assert entry["data"]["certificate_sha256"] == signed.certificate_sha256
    journal = load_journal(playbook.contract_id)
    assert journal.signed == signed and list(journal.records) == [str(copy)]
    # the journal (and the certificate the flow writes beside it) are kept, and listed
    reversibility = ContractPaths(playbook.contract_id).phase_dir(Phase.REVERSIBILITY)
    assert journal_path(playbook.contract_id).parent == reversibility
    assert str(reversibility) in {k.where for k in signed.kept}


def test_an_incomplete_erasure_is_certified_as_incomplete_not_raised(
    playbook: Playbook, monkeypatch: pytest.MonkeyPatch
) -> None:
    _sign_with(monkeypatch, SigningKey.generate())
    signed = erase_and_certify(playbook, "bundle-1", [path_target("local", Path("/"))])
    assert (signed.complete, signed.remaining) == (False, ["/"])
    assert "Résultat : incomplet" in signed.certificate
    assert "- / (local): refusé: refusing to delete /" in signed.certificate
    (entry,) = ChecklistStore().audit_log(playbook.contract_id).entries()
    assert (entry["data"]["complete"], entry["data"]["remaining"]) == (False, ["/"])


def test_no_signing_key_means_nothing_is_deleted(
    playbook: Playbook, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _sign_with(monkeypatch, None)
    copy = tmp_path / "copy"
    copy.mkdir()
    vault = ContractPaths(playbook.contract_id).vault_file
    vault.write_bytes(b"sealed")
    prefix = (
        "erasure not started, nothing deleted: the signing key vault:acme-2026/provider-signing "
        "(reversibility.signing_key) cannot be loaded: "
        "env:SIGNING_KEY: environment variable is not set"
    )
    with pytest.raises(SecretRefError) as caught:
        erase_and_certify(playbook, "bundle-1", [path_target("local", copy)])
    assert str(caught.value) == prefix
    vault.unlink()  # a vault that never was: said so, not blamed on an earlier erasure
    with pytest.raises(SecretRefError) as caught:
        erase_and_certify(playbook, "bundle-1", [path_target("local", copy)])
    assert str(caught.value) == (
        f"{prefix}. The contract's vault ({vault}) does not exist. Point "
        "reversibility.signing_key at the provider's signing key kept outside the vault "
        "(env:, file: or prefect-secret:) and rerun"
    )
    assert copy.exists() and not journal_path(playbook.contract_id).exists()


def test_the_signing_key_in_the_vault_signs_after_the_vault_is_gone_and_a_rerun_says_why_not(
    playbook: Playbook, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The acme playbook keeps its signing key in the contract's vault (vault: reference)."""
    monkeypatch.setenv("HANDOVER_VAULT_KEY", str(X25519Identity.generate()))
    key = SigningKey.generate()
    vault = Vault(playbook.contract_id)
    vault.add(VaultEntry(name="provider-signing"), key.private_openssh())
    copy = tmp_path / "copy"
    copy.mkdir()
    targets = [vault_target(vault.path), path_target("local", copy, "a copy")]
    signed = erase_and_certify(playbook, "bundle-1", targets)
    assert signed.complete and not vault.path.exists() and not copy.exists()
    assert [r.kind for r in signed.records] == ["local", "vault"]
    verify(signed.certificate.encode(), signed.signature, key.public_line(), ERASURE_NAMESPACE)

    # a crash between the vault's deletion and the certificate's record: no key any more
    journal = load_journal(playbook.contract_id)
    journal_path(playbook.contract_id).write_text(
        journal.model_copy(update={"signed": None}).model_dump_json()
    )
    copy.mkdir()  # something to delete: the failing rerun must leave it alone
    with pytest.raises(SecretRefError) as caught:
        erase_and_certify(playbook, "bundle-1", targets)
    message = str(caught.value)
    assert message.startswith("erasure not started, nothing deleted: the signing key ")
    assert "The contract's vault is gone: an earlier erasure deleted it last" in message
    assert "kept outside the vault (env:, file: or prefect-secret:) and rerun" in message
    assert copy.exists()


def test_a_rerun_without_key_returns_the_recorded_certificate_while_it_holds(
    playbook: Playbook, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _sign_with(monkeypatch, SigningKey.generate())
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "f").write_bytes(b"x" * 9)
    targets = [path_target("local", copy, "a copy")]
    signed = erase_and_certify(playbook, "bundle-1", targets)
    _sign_with(monkeypatch, None)  # the key went with the vault
    assert erase_and_certify(playbook, "bundle-1", targets) == signed
    events = [e["event"] for e in ChecklistStore().audit_log(playbook.contract_id).entries()]
    assert events == ["erasure.certificate", "erasure.rechecked"]

    copy.mkdir()  # a copy reappeared: it is deleted, but nothing new can be certified
    (copy / "g").write_bytes(b"y")
    with pytest.raises(SecretRefError, match=r"but this run found .*copy: erased and cannot sign"):
        erase_and_certify(playbook, "bundle-1", targets)
    assert not copy.exists()


def test_a_rerun_after_an_interrupted_erasure_finishes_with_the_earlier_records(
    playbook: Playbook, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _sign_with(monkeypatch, SigningKey.generate())
    first, second = tmp_path / "first", tmp_path / "second"
    for folder in (first, second):
        folder.mkdir()
        (folder / "data").write_bytes(b"z" * 11)

    def interrupted() -> DeletionResult:
        raise KeyboardInterrupt  # stands for the process dying in the middle

    targets = [path_target("local", first, "first"), path_target("local", second, "second")]
    with pytest.raises(KeyboardInterrupt):
        erase_and_certify(
            playbook, "bundle-1", [targets[0], *erasure_targets_with(interrupted), targets[1]]
        )
    assert not first.exists() and second.exists()
    assert list(load_journal(playbook.contract_id).records) == [str(first)]

    signed = erase_and_certify(playbook, "bundle-1", targets)
    assert signed.complete
    assert [(r.status, r.objects, r.bytes) for r in signed.records] == [
        ("erased", 1, 11),  # the crashed run's record, checked gone again
        ("erased", 1, 11),
    ]
    assert "absent" not in [r.status for r in signed.records]
    recorded = json.loads(journal_path(playbook.contract_id).read_text())
    assert recorded["signed"]["complete"] is True


def test_every_delivery_of_a_corrected_exit_is_a_target(
    playbook: Playbook, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(s3_client_module, "s3_client", lambda settings: object())
    first, second = "s3://provider-out/acme/b-1/", "s3://provider-out/acme/b-1-r2/"
    targets = erasure_targets(playbook, [first, second, first])
    delivered = [t.location for t in targets if t.description == "bundle in the provider's bucket"]
    assert delivered == [first, second]
    assert targets[-1].kind == "vault"  # still last


def test_a_state_database_is_named_among_what_is_kept_without_its_password(
    playbook: Playbook, monkeypatch: pytest.MonkeyPatch
) -> None:
    from handover.exit.erasure_targets import STATE_DATABASE
    from handover.i18n import Texts
    from handover.i18n.words import kept_text

    assert not any(k.what == STATE_DATABASE for k in kept_records(playbook))  # the folder: no
    monkeypatch.setenv("HANDOVER_STATE_URL", "postgresql://ops:s3cret@db.example:5433/handover")
    kept = [k for k in kept_records(playbook) if k.what == STATE_DATABASE]
    assert [k.where for k in kept] == ["PostgreSQL postgresql://ops@db.example:5433/handover"]
    assert kept[0].kind == "evidence" and kept[0].reason
    french = kept_text(Texts.of("fr", "Europe/Paris"), STATE_DATABASE)
    assert french.startswith("les listes de contrôle du contrat") and "base d'état" in french
