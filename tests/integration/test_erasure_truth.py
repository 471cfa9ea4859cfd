"""The erasure certificate says what happened, no more: against a moto server over HTTP, real
folders, a real vault holding the signing key and the S3 secret, and a real kill -9.

- A backup version under an S3 legal hold (object lock) makes DeleteObjects answer a
  per-key AccessDenied: the backups target fails with the count and the code, the vault
  (which the rerun needs) is kept, the certificate says `Résultat : incomplet`; once the
  hold is lifted a rerun finishes and adds up what each run erased.
- A process killed (SIGKILL) in the middle of the erasure leaves a journal; the rerun
  finishes, counts what is already gone as absent or as the earlier run recorded it, and
  certifies only what it checked.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from handover.bundle.age import X25519Identity
from handover.bundle.sshsig import SigningKey, verify
from handover.checklist.store import ChecklistStore
from handover.contract.loader import load_playbook
from handover.contract.playbook import Playbook
from handover.errors import SecretRefError
from handover.exit.erasure_certificate import (
    ERASURE_NAMESPACE,
    SignedErasure,
    erase_and_certify,
    load_journal,
)
from handover.exit.erasure_targets import erasure_targets
from handover.secrets.vault import Vault, VaultEntry
from handover.state.layout import ContractPaths
from tests.conftest import require_binary
from tests.fixtures.s3 import MotoServer

pytestmark = pytest.mark.integration

PLAYBOOK = Path("playbooks/examples/acme.yaml")
CLIENT_NAME = "client-payroll-2026.sql"  # a client file name: never in a certificate


def exit_playbook(endpoint_url: str, backups_bucket: str) -> Playbook:
    """The acme playbook pointed at moto: its S3 secret and signing key stay in the vault."""
    playbook = load_playbook(PLAYBOOK)
    perimeter = playbook.perimeter
    assert perimeter.s3 is not None and playbook.backups is not None
    s3 = perimeter.s3.model_copy(
        update={"endpoint_url": endpoint_url, "region": "us-east-1", "addressing_style": "path"}
    )
    backups = playbook.backups.model_copy(update={"target": f"s3://{backups_bucket}"})
    return playbook.model_copy(
        update={"perimeter": perimeter.model_copy(update={"s3": s3}), "backups": backups}
    )


def fill_contract(cid: str, key: SigningKey) -> ContractPaths:
    """The vault (signing key, S3 secret) and working copies of client data."""
    Vault(cid).add(VaultEntry(name="provider-signing"), key.private_openssh())
    Vault(cid).add(VaultEntry(name="s3-secret"), "testing")
    paths = ContractPaths(cid)
    for folder in (paths.bundles_dir / "bundle-1", paths.baselines_dir):
        folder.mkdir(parents=True)
        (folder / CLIENT_NAME).write_bytes(b"x" * 64)
    paths.audit_log.write_text("")
    return paths


@pytest.fixture
def contract_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HANDOVER_VAULT_KEY", str(X25519Identity.generate()))
    monkeypatch.setenv("ACME_S3_KEY_ID", "testing")


def _keys(client: Any, bucket: str, prefix: str) -> list[str]:
    listed = client.list_object_versions(Bucket=bucket, Prefix=prefix)
    return [v["Key"] for v in [*listed.get("Versions", []), *listed.get("DeleteMarkers", [])]]


def _record(signed: SignedErasure, location: str) -> Any:
    (record,) = [r for r in signed.records if r.location == location]
    return record


def _ssh_verifies(tmp_path: Path, signed: SignedErasure) -> bool:
    keygen = require_binary("ssh-keygen", "openssh-client")
    (tmp_path / "allowed_signers").write_text(f"provider {signed.provider_key}\n")
    (tmp_path / "cert.sig").write_text(signed.signature)
    allowed, sig = str(tmp_path / "allowed_signers"), str(tmp_path / "cert.sig")
    done = subprocess.run(
        [
            keygen,
            "-Y",
            "verify",
            "-f",
            allowed,
            "-I",
            "provider",
            "-n",
            ERASURE_NAMESPACE,
            "-s",
            sig,
        ],
        input=signed.certificate.encode("utf-8"),
        capture_output=True,
        check=False,
    )
    return done.returncode == 0


def test_a_version_under_legal_hold_keeps_the_erasure_incomplete_until_a_rerun(
    s3_server: MotoServer, s3_client: Any, s3_bucket: str, contract_env: None, tmp_path: Path
) -> None:
    locked = f"lock-{uuid.uuid4().hex[:16]}"
    s3_client.create_bucket(Bucket=locked, ObjectLockEnabledForBucket=True)
    for name in ("0001.tar.age", "0002.tar.age", CLIENT_NAME):
        s3_client.put_object(Bucket=locked, Key=f"acme-2026/{name}", Body=b"b" * 100)
    s3_client.put_object_legal_hold(
        Bucket=locked, Key=f"acme-2026/{CLIENT_NAME}", LegalHold={"Status": "ON"}
    )
    s3_client.put_bucket_versioning(Bucket=s3_bucket, VersioningConfiguration={"Status": "Enabled"})
    for name in ("volumes/www.tar.age", "SHA256SUMS"):
        s3_client.put_object(Bucket=s3_bucket, Key=f"out/bundle-1/{name}", Body=b"v" * 10)
    s3_client.put_object(Bucket=s3_bucket, Key="out/other-bundle/keep", Body=b"k")
    playbook = exit_playbook(s3_server.endpoint_url, locked)
    key = SigningKey.generate()
    paths = fill_contract(playbook.contract_id, key)
    backups_url = f"s3://{locked}/acme-2026/"
    delivered_url = f"s3://{s3_bucket}/out/bundle-1/"

    first = erase_and_certify(playbook, "bundle-1", erasure_targets(playbook, delivered_url))

    assert not first.complete
    assert first.remaining == [backups_url, str(paths.vault_file)]
    backups = _record(first, backups_url)
    assert (backups.status, backups.objects, backups.bytes, backups.remaining) == (
        "failed",
        2,
        200,
        1,
    )
    assert backups.error == (
        "1 object version(s) not deleted (AccessDenied: 1); 1 entries still present after deletion"
    )
    delivered = _record(first, delivered_url)
    assert (delivered.status, delivered.objects, delivered.bytes) == ("erased", 2, 20)
    vault = _record(first, str(paths.vault_file))
    assert vault.status == "postponed" and paths.vault_file.exists()
    assert _record(first, str(paths.baselines_dir)).status == "erased"
    assert not paths.baselines_dir.exists() and not paths.bundles_dir.exists()
    assert _keys(s3_client, locked, "acme-2026/") == [f"acme-2026/{CLIENT_NAME}"]
    assert _keys(s3_client, s3_bucket, "out/") == ["out/other-bundle/keep"]
    # acme's contract is French: the certificate is written in French (#15)
    assert "- Résultat : incomplet" in first.certificate
    assert f"- {backups_url} (backups): en échec, 1 entrée restante: 1 object" in first.certificate
    assert CLIENT_NAME not in first.certificate and CLIENT_NAME not in str(first.model_dump())
    assert str(paths.audit_log) in {k.where for k in first.kept}
    assert _ssh_verifies(tmp_path, first)

    # the hold is lifted; a rerun (a new process would list the targets again) finishes
    s3_client.put_object_legal_hold(
        Bucket=locked, Key=f"acme-2026/{CLIENT_NAME}", LegalHold={"Status": "OFF"}
    )
    second = erase_and_certify(playbook, "bundle-1", erasure_targets(playbook, delivered_url))

    assert (second.complete, second.remaining) == (True, [])
    backups = _record(second, backups_url)
    assert (backups.status, backups.objects, backups.bytes) == ("erased", 3, 300)
    assert backups.at == _record(first, backups_url).at  # erased over two runs, since the first
    assert (_record(second, delivered_url).status, _record(second, delivered_url).objects) == (
        "erased",
        2,
    )
    assert [r.kind for r in second.records][-1] == "vault"
    assert _record(second, str(paths.vault_file)).status == "erased"
    assert not paths.vault_file.exists()
    assert _keys(s3_client, locked, "acme-2026/") == []
    assert _keys(s3_client, s3_bucket, "out/") == ["out/other-bundle/keep"]
    assert "- Résultat : complet" in second.certificate
    verify(second.certificate.encode(), second.signature, key.public_line(), ERASURE_NAMESPACE)
    assert _ssh_verifies(tmp_path, second)
    events = [e["event"] for e in ChecklistStore().audit_log(playbook.contract_id).entries()]
    assert events == ["erasure.certificate", "erasure.certificate"]

    # once the vault is gone its S3 secret is too: a further rerun cannot check S3 and says so
    with pytest.raises(SecretRefError) as caught:
        erase_and_certify(playbook, "bundle-1", erasure_targets(playbook, delivered_url))
    assert f"this run found {backups_url}: failed" in str(caught.value)
    assert load_journal(playbook.contract_id).signed == second


CRASH_SCRIPT = """
import os, signal, sys
from handover.exit import erasure_targets as et
from handover.exit.erasure_certificate import erase_and_certify
from tests.integration.test_erasure_truth import exit_playbook

endpoint, bucket, delivered = sys.argv[1:4]
playbook = exit_playbook(endpoint, bucket)
targets = et.erasure_targets(playbook, delivered)
for number, target in enumerate(targets):
    if target.location == delivered:
        delete = target.delete

        def killed_after_deleting(delete=delete):
            delete()
            os.kill(os.getpid(), signal.SIGKILL)  # before its record is journalled

        targets[number] = et.ErasureTarget(
            target.kind, target.location, target.description, target.method, killed_after_deleting
        )
erase_and_certify(playbook, "bundle-1", targets)
"""


def test_a_kill_9_in_the_middle_then_a_rerun_certifies_only_what_it_checked(
    s3_server: MotoServer, s3_client: Any, s3_bucket: str, contract_env: None, tmp_path: Path
) -> None:
    backups_bucket = f"bk-{uuid.uuid4().hex[:16]}"
    s3_client.create_bucket(Bucket=backups_bucket)
    for i in range(5):
        s3_client.put_object(Bucket=backups_bucket, Key=f"acme-2026/{i:04}.tar.age", Body=b"b" * 7)
    s3_client.put_object(Bucket=s3_bucket, Key="out/bundle-1/volumes/www.tar.age", Body=b"v")
    playbook = exit_playbook(s3_server.endpoint_url, backups_bucket)
    paths = fill_contract(playbook.contract_id, SigningKey.generate())
    backups_url = f"s3://{backups_bucket}/acme-2026/"
    delivered_url = f"s3://{s3_bucket}/out/bundle-1/"

    crashed = subprocess.run(
        [sys.executable, "-c", CRASH_SCRIPT, s3_server.endpoint_url, backups_bucket, delivered_url],
        env=os.environ.copy(),
        capture_output=True,
        check=False,
    )
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr.decode()[-2000:]
    journal = load_journal(playbook.contract_id)
    assert journal.signed is None and journal.records[backups_url].objects == 5
    assert delivered_url not in journal.records  # deleted, then killed before its record
    assert paths.vault_file.exists()  # the vault goes last: the rerun has its credentials
    assert _keys(s3_client, s3_bucket, "out/") == []

    signed = erase_and_certify(playbook, "bundle-1", erasure_targets(playbook, delivered_url))

    assert (signed.complete, signed.remaining) == (True, [])
    statuses = {r.location: (r.status, r.objects) for r in signed.records}
    assert statuses[backups_url] == ("erased", 5)  # the crashed run's record, checked again
    assert statuses[delivered_url] == ("absent", 0)  # gone, but no record says who: absent
    assert statuses[str(paths.baselines_dir)] == ("erased", 1)
    assert statuses[str(paths.vault_file)] == ("erased", 1)
    assert not paths.vault_file.exists()
    assert _keys(s3_client, backups_bucket, "acme-2026/") == []
    assert "- Résultat : complet" in signed.certificate
    assert _ssh_verifies(tmp_path, signed)
