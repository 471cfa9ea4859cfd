"""The exit state on disk: what a rerun after a crash finds, and what it refuses to trust."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from handover.bundle.manifest import VolumeRecord
from handover.bundle.members import MemberTable
from handover.bundle.summary import SealedBundle
from handover.checklist.model import Checklist, ChecklistItem, Evidence
from handover.contract.deadlines import exit_deadlines
from handover.contract.reversibility import Deadlines
from handover.errors import HandoverError
from handover.exit.bundle_evidence import bundle_checklists
from handover.exit.delivery import FolderDelivery
from handover.exit.progress import AcceptanceRecord, Correction, ExitProgress, ExitState


def record(number: int, name: str) -> VolumeRecord:
    return VolumeRecord(
        number=number,
        file=f"volumes/{number:04d}-{name}.tar.age",
        label=name,
        origin="local",
        size=1234,
        sha256="ab" * 32,
        tar_size=10240,
        members=[],
    )


def test_state_round_trips_with_calendar_and_acceptance(tmp_path: Path) -> None:
    progress = ExitProgress("acme", tmp_path)
    state = progress.start("acme-20261204T000000Z")
    state.deadlines = exit_deadlines(Deadlines(), date(2026, 9, 1))
    state.waits["switch-over"] = "reached"
    state.acceptance = AcceptanceRecord(
        accepted=True, accepted_by="Client", comment="", at="2026-12-04T00:00:00+00:00",
        early_erasure=True,
    )  # fmt: skip
    progress.save(state)

    again = ExitProgress("acme", tmp_path).load()
    assert again == state
    assert again is not None and again.deadlines is not None
    assert again.deadlines.switch_over == state.deadlines.switch_over


def test_no_state_before_the_exit_and_a_damaged_one_is_refused(tmp_path: Path) -> None:
    progress = ExitProgress("acme", tmp_path)
    assert progress.load() is None
    progress.file.parent.mkdir(parents=True)
    progress.file.write_text(json.dumps({"bundle_name": 3, "unknown": True}))
    with pytest.raises(HandoverError, match="damaged"):
        progress.load()


def test_archive_keeps_an_earlier_exit_beside(tmp_path: Path) -> None:
    progress = ExitProgress("acme", tmp_path)
    first = progress.start("acme-1")
    kept = progress.archive(first)
    progress.start("acme-2")
    assert json.loads(kept.read_text())["bundle_name"] == "acme-1"
    loaded = progress.load()
    assert loaded is not None and loaded.bundle_name == "acme-2"


def test_volume_records_saved_per_dataset_and_damaged_ones_left_out(tmp_path: Path) -> None:
    progress = ExitProgress("acme", tmp_path)
    progress.save_volume("acme-1", "www", record(1, "www"))
    progress.save_volume("acme-1", "db", record(2, "db"))
    (progress.volumes_dir("acme-1") / "etc.json").write_text('{"number": 3, "file"')  # torn
    saved = progress.saved_volumes("acme-1")
    assert sorted(saved) == ["db", "www"]
    assert saved["db"].number == 2
    progress.forget_volume("acme-1", "db")
    assert sorted(progress.saved_volumes("acme-1")) == ["www"]
    # The records live with the bundle's working copies, which the erasure deletes.
    assert progress.volumes_dir("acme-1").parent == progress.paths.bundles_dir


def test_bundle_checklists_point_evidence_into_the_bundle(tmp_path: Path) -> None:
    root = tmp_path / "contracts" / "acme"
    inventory = root / "takeover" / "inventory" / "web01.json"
    inventory.parent.mkdir(parents=True)
    inventory.write_text("{}")
    outside = tmp_path / "deliveries" / "bundle.json"
    item = ChecklistItem(
        id="inventory",
        title="Inventory",
        evidence=[
            Evidence(kind="inventory", path=str(inventory), sha256="11" * 32),
            Evidence(kind="bundle", path=str(outside), sha256="22" * 32),
            Evidence(kind="inventory", path=str(root / "takeover" / "gone.json")),
        ],
    )
    checklist = Checklist(contract="acme", phase="takeover", items=[item])

    texts, files, snapshot = bundle_checklists({"takeover": checklist}, root)

    assert files == {"evidence/takeover/inventory/web01.json": str(inventory)}
    sealed = json.loads(texts["checklists/takeover.json"])
    paths = [e["path"] for e in sealed["items"][0]["evidence"]]
    assert paths[0] == "evidence/takeover/inventory/web01.json"
    assert sealed["items"][0]["evidence"][0]["sha256"] == "11" * 32
    assert "outside the bundle" in sealed["items"][0]["evidence"][1]["note"]
    assert "gone" in sealed["items"][0]["evidence"][2]["note"]
    assert snapshot["takeover"] == sealed
    # The provider's checklist itself is left as it was.
    assert checklist.items[0].evidence[0].path == str(inventory)


def _delivered(progress: ExitProgress, name: str) -> ExitState:
    state = progress.start(name)
    state.sealed = SealedBundle(
        location=f"/bundles/{name}", files={"SHA256SUMS": "cd" * 32}, manifest_sha256="ef" * 32,
        provider_key="ssh-ed25519 AAAA", created="2026-12-04T00:00:00Z", volumes=[],
    )  # fmt: skip
    state.delivery = FolderDelivery(location=f"/out/{name}")
    return state


def _reservations(at: str = "2026-12-04T00:00:00+00:00") -> AcceptanceRecord:
    return AcceptanceRecord(
        accepted=False, accepted_by="Client", comment="", at=at,
        decision="accepted-with-reservations", reservations="mail archive missing",
        signer_fingerprint="SHA256:client",
    )  # fmt: skip


def test_reservations_supersede_the_delivery_into_a_new_revision(tmp_path: Path) -> None:
    progress = ExitProgress("acme", tmp_path)
    state = _delivered(progress, "acme-20261204T000000Z")
    assert state.revision == 1 and not state.reservations_open()
    state.acceptance = _reservations()
    assert state.reservations_open()
    with pytest.raises(HandoverError, match="correction"):
        state.supersede()  # reservations alone do not start a re-delivery
    state.correction = Correction(corrected_by="Ops", corrections="added it", at="now")

    second = state.supersede()
    assert second.revision == 2 and second.bundle_name == "acme-20261204T000000Z-r2"
    assert second.sealed is None and second.delivery is None and second.acceptance is None
    assert second.correction is None and not second.reservations_open()
    [replaced] = second.redeliveries
    assert replaced.revision == 1 and replaced.bundle_name == "acme-20261204T000000Z"
    assert replaced.acceptance.reservations == "mail archive missing"
    assert replaced.correction.corrected_by == "Ops"
    assert replaced.delivery.location == "/out/acme-20261204T000000Z"

    second.sealed, second.delivery = state.sealed, FolderDelivery(location="/out/r2")
    second.acceptance = _reservations()
    second.correction = Correction(corrected_by="Ops", corrections="again", at="now")
    third = second.supersede()
    assert third.bundle_name == "acme-20261204T000000Z-r3"  # named after the first bundle
    assert [r.revision for r in third.redeliveries] == [1, 2]

    progress.save(third)
    assert ExitProgress("acme", tmp_path).load() == third


def test_a_volume_with_names_that_are_not_utf8_is_saved_and_read_back(tmp_path: Path) -> None:
    """pydantic's JSON refuses lone surrogates both ways: the record is written and read without."""
    progress = ExitProgress("acme", tmp_path)
    members = MemberTable(
        [
            ("raw/\udcff\udcfe.bin", "file", 7, "cd" * 32, 0o640, 4.0, None),
            ("é/名前.txt", "file", 1, "ab" * 32, 0o644, 5.0, None),
        ]
    )
    saved = record(1, "www").model_copy(update={"members": members})
    progress.save_volume("acme-1", "www", saved)
    back = progress.saved_volumes("acme-1")["www"]
    assert back.members == members and back == saved
