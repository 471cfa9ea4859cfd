"""Erasure of provider copies and the signed erasure certificate."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from handover.bundle.age import X25519Identity
from handover.bundle.sshsig import SigningKey, verify
from handover.contract.loader import load_playbook
from handover.errors import BundleCorrupt
from handover.exit.erasure import (
    DeletionResult,
    ErasureTarget,
    erase_contract_copies,
    path_target,
    s3_target,
    vault_target,
)
from handover.exit.erasure_certificate import (
    ERASURE_NAMESPACE,
    erasure_certificate,
    sign_certificate,
)
from handover.secrets.vault import Vault, VaultEntry
from handover.state.home import contract_dir
from tests.conftest import require_binary

PLAYBOOK = Path("playbooks/examples/acme.yaml")


def _tree(root: Path) -> Path:
    (root / "db" / "deep").mkdir(parents=True)
    (root / "db" / "deep" / "client-secret-name.sql").write_bytes(b"x" * 100)
    (root / "db" / "a.txt").write_bytes(b"y" * 10)
    outside = root.parent / f"{root.name}-outside.txt"
    outside.write_text("must survive")
    (root / "link").symlink_to(outside)
    return outside


def test_erase_local_copies_vault_and_s3_with_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HANDOVER_VAULT_KEY", str(X25519Identity.generate()))
    playbook = load_playbook(PLAYBOOK)
    cid = playbook.contract_id
    store = contract_dir(cid) / "store"
    outside = _tree(store)
    backups = tmp_path / "backups" / cid
    backups.mkdir(parents=True)
    (backups / "0001.tar.age").write_bytes(b"z" * 50)
    vault = Vault(cid)
    vault.add(VaultEntry(name="web01-ops"), "pw")
    deleted: list[str] = []

    def delete_prefix() -> DeletionResult:
        deleted.append("s3://provider-copies/acme/")
        return DeletionResult(objects=3, bytes=1234)

    report = erase_contract_copies(
        cid,
        [
            path_target("local", store, "local data store"),
            path_target("backups", backups, "backups"),
            vault_target(vault.path),
            s3_target("s3://provider-copies/acme/", delete_prefix, "S3 copies"),
            path_target("local", tmp_path / "never-existed"),
        ],
        actor="alice@provider",
    )
    assert report.complete, report.problems()
    assert [r.status for r in report.records] == ["erased", "erased", "erased", "erased", "absent"]
    assert not store.exists() and not backups.exists() and not vault.path.exists()
    assert not vault.path.with_name("vault.age.lock").exists()
    assert outside.read_text() == "must survive"  # symlink removed, target untouched
    assert (report.records[0].objects, report.records[0].bytes) == (
        3,
        110 + len(os.fsencode(outside)),
    )  # a symlink counts its own size
    assert report.records[3].objects == 3 and deleted == ["s3://provider-copies/acme/"]
    assert all(r.by == "alice@provider" for r in report.records)

    text = erasure_certificate(report, playbook)
    assert f"contract {cid}" in text
    assert playbook.contract.parties.provider.legal_name in text
    assert "s3://provider-copies/acme/" in text and "S3 DeleteObjects" in text
    assert "client-secret-name" not in text  # locations only, never client file names
    for item in playbook.reversibility.exempted:
        assert item.reason in text
    assert "Result: complete" in text


def test_dangerous_targets_are_refused_and_failures_recorded(tmp_path: Path) -> None:
    home_dir = Path(os.environ["HANDOVER_HOME"])
    home_dir.mkdir(parents=True, exist_ok=True)

    def broken() -> DeletionResult:
        raise RuntimeError("AccessDenied on bucket provider-copies")

    report = erase_contract_copies(
        "acme-2026",
        [
            path_target("local", Path("/")),
            path_target("local", home_dir),
            path_target("local", Path.cwd()),
            ErasureTarget("local", "relative/path"),
            ErasureTarget("s3", "s3://b/p/"),
            s3_target("s3://provider-copies/acme/", broken),
        ],
        actor="ops",
    )
    assert [r.status for r in report.records] == [
        "refused",
        "refused",
        "refused",
        "refused",
        "refused",
        "failed",
    ]
    assert not report.complete
    assert home_dir.exists() and Path.cwd().exists()
    assert "AccessDenied" in report.problems()[-1]
    text = erasure_certificate(report, load_playbook(PLAYBOOK))
    assert "INCOMPLETE" in text and "## Failures" in text


def test_certificate_signature_verifies_with_ssh_keygen(tmp_path: Path) -> None:
    keygen = require_binary("ssh-keygen", "openssh-client")
    playbook = load_playbook(PLAYBOOK)
    report = erase_contract_copies(playbook.contract_id, [], actor="ops")
    text = erasure_certificate(report, playbook)
    key = SigningKey.generate()
    signature = sign_certificate(text, key)
    cert = tmp_path / "erasure-certificate.md"
    cert.write_text(text, encoding="utf-8")
    sig = tmp_path / "erasure-certificate.md.sig"
    sig.write_text(signature)
    allowed = tmp_path / "allowed_signers"
    allowed.write_text(f"provider {key.public_line('provider')}\n")

    def ssh_verify(namespace: str, data: bytes) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [
                keygen,
                "-Y",
                "verify",
                "-f",
                str(allowed),
                "-I",
                "provider",
                "-n",
                namespace,
                "-s",
                str(sig),
            ],
            input=data,
            capture_output=True,
            check=False,
        )

    good = ssh_verify("handover-erasure", cert.read_bytes())
    assert good.returncode == 0, good.stderr
    assert ssh_verify("handover-bundle", cert.read_bytes()).returncode != 0
    assert ssh_verify("handover-erasure", cert.read_bytes() + b" ").returncode != 0
    verify(text.encode("utf-8"), signature, key.public_line("provider"), ERASURE_NAMESPACE)
    with pytest.raises(BundleCorrupt):
        tampered = text.replace("complete", "incomplete").encode("utf-8")
        verify(tampered, signature, key.public_line(), ERASURE_NAMESPACE)
