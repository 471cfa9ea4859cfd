"""Erasure of provider copies: every deletion checked, the kept list, the signed certificate."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from handover.bundle.age import X25519Identity
from handover.bundle.sshsig import SigningKey, verify
from handover.contract.loader import load_playbook
from handover.contract.playbook import Playbook
from handover.errors import BundleCorrupt
from handover.exit.erasure import (
    DeletionResult,
    ErasureRecord,
    ErasureTarget,
    KeptRecord,
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


class Undeletable:
    """Makes a file impossible to delete for this process: immutable (root) or a read-only
    folder (anyone else); undone at teardown so pytest can clean up."""

    def __init__(self) -> None:
        self.undo: list[list[str] | Path] = []

    def __call__(self, path: Path) -> None:
        if os.geteuid() == 0:
            chattr = require_binary("chattr", "e2fsprogs")
            subprocess.run([chattr, "+i", str(path)], check=True)
            self.undo.append([chattr, "-i", str(path)])
        else:
            path.parent.chmod(0o555)
            self.undo.append(path.parent)

    def restore(self) -> None:
        for item in self.undo:
            if isinstance(item, Path):
                item.chmod(0o755)
            else:
                subprocess.run(item, check=False)


@pytest.fixture
def undeletable() -> Iterator[Undeletable]:
    helper = Undeletable()
    yield helper
    helper.restore()


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
        assert vault.path.exists()  # the vault (credentials) is still there for S3
        deleted.append("s3://provider-copies/acme/")
        return DeletionResult(objects=3, bytes=1234, found=4)

    before = datetime.now(UTC)
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
    # the vault goes last, whatever its place in the list
    assert [(r.kind, r.status) for r in report.records] == [
        ("local", "erased"),
        ("backups", "erased"),
        ("s3", "erased"),
        ("local", "absent"),
        ("vault", "erased"),
    ]
    assert report.remaining() == []
    assert not store.exists() and not backups.exists() and not vault.path.exists()
    assert not vault.path.with_name("vault.age.lock").exists()
    assert outside.read_text() == "must survive"  # symlink removed, target untouched
    assert (report.records[0].objects, report.records[0].bytes) == (
        3,
        110 + len(os.fsencode(outside)),
    )  # a symlink counts its own size
    assert report.records[2].objects == 3 and deleted == ["s3://provider-copies/acme/"]
    assert all(r.by == "alice@provider" for r in report.records)
    assert all(r.verified_at is not None and r.verified_at >= before for r in report.records)

    text = erasure_certificate(report, _english(playbook))
    assert f"contract {cid}" in text
    assert playbook.contract.parties.provider.legal_name in text
    assert "s3://provider-copies/acme/" in text and "S3 DeleteObjects" in text
    assert "client-secret-name" not in text  # locations only, never client file names
    assert "Result: complete" in text and "## Remaining" not in text


def test_dangerous_targets_are_refused_failures_recorded_and_the_vault_postponed(
    tmp_path: Path,
) -> None:
    home_dir = Path(os.environ["HANDOVER_HOME"])
    home_dir.mkdir(parents=True, exist_ok=True)
    vault_file = tmp_path / "vault.age"
    vault_file.write_bytes(b"sealed")

    def broken() -> DeletionResult:
        raise RuntimeError("AccessDenied on bucket provider-copies")

    report = erase_contract_copies(
        "acme-2026",
        [
            vault_target(vault_file),
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
        "postponed",
    ]
    assert not report.complete
    assert home_dir.exists() and Path.cwd().exists()
    assert vault_file.read_bytes() == b"sealed"  # a rerun still needs its credentials
    assert report.remaining()[-2:] == ["s3://provider-copies/acme/", str(vault_file)]
    assert "AccessDenied" in report.problems()[-2]
    text = erasure_certificate(report, _english(load_playbook(PLAYBOOK)))
    assert "Result: incomplete" in text and "## Remaining" in text
    assert "Remaining: 7 locations still hold" in text and "INCOMPLETE" in text
    remaining = text.split("## Remaining", 1)[1].split("##", 1)[0]
    assert f"- {vault_file} (credential vault): postponed: not deleted yet" in remaining
    assert "- s3://provider-copies/acme/ (s3): failed: RuntimeError: AccessDenied" in remaining
    assert "copies listed above as erased were deleted" not in text


def test_a_file_that_cannot_be_deleted_fails_the_folder_and_is_not_counted(
    tmp_path: Path, undeletable: Undeletable
) -> None:
    folder = tmp_path / "copies"
    (folder / "locked").mkdir(parents=True)
    (folder / "a.bin").write_bytes(b"a" * 10)
    (folder / "locked" / "b.bin").write_bytes(b"b" * 20)
    (folder / "locked" / "client-secret-name.sql").write_bytes(b"c" * 40)
    undeletable(folder / "locked" / "client-secret-name.sql")
    (record,) = erase_contract_copies(
        "acme-2026", [path_target("local", folder, "copies")], actor="ops"
    ).records
    assert record.status == "failed" and record.verified_at is None
    assert (folder / "locked" / "client-secret-name.sql").exists()
    left = 1 if os.geteuid() == 0 else 2  # a read-only folder keeps its other file too
    assert (record.objects, record.remaining) == (3 - left, left)
    assert record.bytes == 10 + (20 if left == 1 else 0)
    assert record.error.startswith(f"still present after deletion: {left} file(s) left (")
    assert "PermissionError (Operation not permitted)" in record.error or (
        "PermissionError (Permission denied)" in record.error
    )
    assert "client-secret-name" not in record.error


def test_deleter_results_are_checked_not_trusted() -> None:
    def result(value: DeletionResult) -> ErasureTarget:
        return s3_target(f"s3://b/{len(calls)}/", lambda: value)

    calls: list[ErasureTarget] = []
    for value in (
        DeletionResult(objects=5, bytes=50, found=5),
        DeletionResult(objects=0, found=0),
        DeletionResult(objects=0, found=None),
        DeletionResult(objects=4, bytes=40, found=6, remaining=2),
        DeletionResult(objects=4, bytes=40, found=6, error="2 object version(s) not deleted"),
        DeletionResult(objects=0, found=2),  # only delete markers: gone, nothing counted
    ):
        calls.append(result(value))
    report = erase_contract_copies("acme-2026", calls, actor="ops")
    assert [(r.status, r.objects, r.remaining) for r in report.records] == [
        ("erased", 5, 0),
        ("absent", 0, 0),
        ("absent", 0, 0),
        ("failed", 4, 2),
        ("failed", 4, 0),
        ("erased", 0, 0),
    ]
    assert report.records[3].error == "2 entries still present after deletion"
    assert report.records[4].error == "2 object version(s) not deleted"
    assert report.records[1].method == "none (already absent when checked)"


def test_a_rerun_counts_gone_targets_as_absent_and_keeps_the_earlier_records(
    tmp_path: Path,
) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    for folder in (first, second):
        folder.mkdir()
        (folder / "f").write_bytes(b"x" * 7)
    earlier = erase_contract_copies(
        "acme-2026", [path_target("local", first, "first")], actor="ops"
    ).records
    journal: list[ErasureRecord] = []
    report = erase_contract_copies(
        "acme-2026",
        [path_target("local", first, "first"), path_target("local", second, "second")],
        actor="ops",
        previous=earlier,
        on_record=journal.append,
    )
    assert report.complete and journal == report.records
    kept_first, now_second = report.records
    assert (kept_first.status, kept_first.objects, kept_first.at) == ("erased", 1, earlier[0].at)
    assert kept_first.verified_at is not None and kept_first.verified_at > earlier[0].at
    assert (now_second.status, now_second.objects) == ("erased", 1)
    # without the earlier records, a gone target is absent (never a failure)
    (again,) = erase_contract_copies(
        "acme-2026", [path_target("local", first, "first")], actor="ops"
    ).records
    assert (again.status, again.objects) == ("absent", 0)


def test_the_certificate_lists_what_is_kept_with_where_and_why() -> None:
    playbook = load_playbook(PLAYBOOK)
    start = datetime(2026, 12, 1, tzinfo=UTC)
    kept = [
        KeptRecord(
            kind="legal-retention", what="invoices", where="", reason="accounts", basis="L1"
        ),
        KeptRecord(kind="exempted", what="mail", where="", reason="contract"),
        KeptRecord(kind="evidence", what="the audit log", where="/h/audit.log", reason="proof"),
    ]
    report = erase_contract_copies(playbook.contract_id, [], actor="ops", kept=kept)
    report = report.model_copy(update={"started_at": start, "finished_at": start + timedelta(1)})
    text = erasure_certificate(report, _english(playbook))
    kept_text = text.split("## Kept (not erased), and why", 1)[1].split("## Statement", 1)[0]
    assert "| invoices | accounts | L1 |" in kept_text
    assert "| mail | contract | none given |" in kept_text
    assert "| the audit log | /h/audit.log | proof |" in kept_text
    assert "listed under Kept is not erased" in text
    # the contract's own language (fr by default) and time zone, the offset shown
    french = erasure_certificate(report, playbook)
    assert french.startswith(f"# Certificat d'effacement — contrat {playbook.contract_id}\n")
    assert "- Effacement commencé : 1 décembre 2026 à 01:00:00 (UTC+01:00)" in french
    assert "- Résultat : complet" in french
    kept_fr = french.split("## Conservé (non effacé), et pourquoi", 1)[1].split("## Décl", 1)[0]
    assert "| mail | contract | non indiquée |" in kept_fr
    assert "listées sous Conservé ne sont pas effacées" in french


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
        tampered = text.replace("Résultat : complet", "Résultat : incomplet").encode("utf-8")
        assert tampered != text.encode("utf-8")
        verify(tampered, signature, key.public_line(), ERASURE_NAMESPACE)


def _english(playbook: Playbook) -> Playbook:
    """The playbook with `language: en` (acme's is French), for the English wording."""
    contract = playbook.contract.model_copy(update={"language": "en"})
    return playbook.model_copy(update={"contract": contract})
