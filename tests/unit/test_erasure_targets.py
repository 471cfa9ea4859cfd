"""What the erasure deletes for a contract, and the certified erasure step of the exit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import handover.connectors.s3.client as s3_client_module
import handover.connectors.s3.deletion as deletion
import handover.exit.erasure_certificate as erasure_certificate
from handover.bundle.sshsig import SigningKey, verify
from handover.checklist.store import ChecklistStore
from handover.connectors.s3.deletion import DeletionCounts, FailedDeletion
from handover.contract.loader import load_playbook
from handover.contract.playbook import Playbook
from handover.errors import HandoverError, PermanentConnectorError
from handover.exit.erasure import DeletionResult, path_target
from handover.exit.erasure_certificate import ERASURE_NAMESPACE, erase_and_certify
from handover.exit.erasure_targets import erasure_targets, s3_prefix_deleter
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


def test_targets_are_the_working_copies_backups_delivered_bundle_and_vault(
    playbook: Playbook,
) -> None:
    paths = ContractPaths(playbook.contract_id)
    targets = erasure_targets(playbook, "s3://provider-out/acme-2026/bundle-1/")
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
    calls = _fake_s3(monkeypatch, DeletionCounts(objects=3, bytes=30))
    assert s3_prefix_deleter(None, "s3://bkt/p")() == DeletionResult(3, 30)
    assert calls == [("bkt", "p/")]


def test_s3_deleter_fails_the_target_when_s3_refuses_a_version(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    refused = FailedDeletion("p/secret-name", "v1", "AccessDenied", "Access Denied")
    _fake_s3(monkeypatch, DeletionCounts(objects=1, bytes=10, failed=(refused, refused)))
    with pytest.raises(PermanentConnectorError) as caught:
        s3_prefix_deleter(None, "s3://bkt/p/")()
    assert str(caught.value) == (
        "s3://bkt/p/: 2 object version(s) not deleted (AccessDenied: Access Denied)"
    )


def test_erase_and_certify_signs_and_records_the_erasure(
    playbook: Playbook, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = SigningKey.generate()
    monkeypatch.setattr(erasure_certificate, "signing_key", lambda _playbook: key)
    copy = tmp_path / "copy"
    copy.mkdir()
    signed = erase_and_certify(playbook, "bundle-1", [path_target("local", copy, "a copy")])
    assert not copy.exists() and [r.status for r in signed.records] == ["erased"]
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


def test_an_incomplete_erasure_is_recorded_then_raised(
    playbook: Playbook, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(erasure_certificate, "signing_key", lambda _playbook: SigningKey.generate())
    with pytest.raises(HandoverError, match=r"^erasure incomplete: /: refused: refusing"):
        erase_and_certify(playbook, "bundle-1", [path_target("local", Path("/"))])
    (entry,) = ChecklistStore().audit_log(playbook.contract_id).entries()
    assert entry["data"]["complete"] is False
