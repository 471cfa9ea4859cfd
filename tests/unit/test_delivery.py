"""Handing the bundle over to a delivery folder: sealed in the working copy, verified, renamed."""

from __future__ import annotations

from pathlib import Path

import pytest

from handover.bundle.age import X25519Identity
from handover.bundle.local import DirectoryTarget, LocalPathSource
from handover.bundle.sshsig import SigningKey
from handover.bundle.writer import BundleWriter
from handover.contract.loader import load_playbook
from handover.contract.playbook import Playbook
from handover.contract.reversibility import Delivery
from handover.errors import BundleError
from handover.exit.delivery import (
    FolderDelivery,
    bundle_target,
    copy_to_delivery_folder,
    deliver_beside_bundle,
)
from handover.state.layout import ContractPaths

PLAYBOOK = Path("playbooks/examples/acme.yaml")


def _delivered_to(tmp_path: Path) -> Playbook:
    playbook = load_playbook(PLAYBOOK)
    delivery = Delivery(kind="local", path=str(tmp_path / "deliveries"))
    reversibility = playbook.reversibility.model_copy(update={"delivery": delivery})
    return playbook.model_copy(update={"reversibility": reversibility})


def _seal(playbook: Playbook, tmp_path: Path, name: str) -> Path:
    target = bundle_target(playbook, name)
    assert isinstance(target, DirectoryTarget)
    (tmp_path / "data").mkdir(exist_ok=True)
    (tmp_path / "data" / "a.txt").write_text("client data")
    writer = BundleWriter(target, [X25519Identity.generate().recipient()], SigningKey.generate())
    writer.add_volume(LocalPathSource("web01-www", tmp_path, ["data"]))
    writer.finish()
    return target.path


def test_a_folder_delivery_seals_in_the_working_copy_and_delivers_a_verified_copy(
    tmp_path: Path,
) -> None:
    playbook = _delivered_to(tmp_path)
    sealed = _seal(playbook, tmp_path, "bundle-1")
    assert sealed == ContractPaths(playbook.contract_id).bundle_work_dir("bundle-1")
    delivered = copy_to_delivery_folder(playbook, "bundle-1")
    final = tmp_path / "deliveries" / "bundle-1"
    assert delivered == FolderDelivery(location=str(final.resolve()))
    assert (final / "SHA256SUMS.sig").is_file()
    assert [p.name for p in final.parent.iterdir()] == ["bundle-1"]  # no partial left
    written = deliver_beside_bundle(playbook, "bundle-1", delivered, {"exit-report.md": "# r\n"})
    assert written == [str(final.parent / "bundle-1.exit" / "exit-report.md")]


def test_a_copy_that_does_not_verify_is_never_delivered(tmp_path: Path) -> None:
    playbook = _delivered_to(tmp_path)
    sealed = _seal(playbook, tmp_path, "bundle-2")
    (sealed / "README.txt").write_text("tampered")
    with pytest.raises(BundleError, match="delivered copy does not verify"):
        copy_to_delivery_folder(playbook, "bundle-2")
    assert list((tmp_path / "deliveries").iterdir()) == []
