"""Member records built cheaply while sealing (issue #16) are those pydantic would build.

`manifest.member_records` sets up MemberRecords without `model_construct`'s
per-field loop; these tests hold it to the reference (`model_construct`),
to the JSON that MANIFEST.json carries, and to what `load_manifest` reads back.
"""

from __future__ import annotations

import pytest

from handover.bundle import manifest, members
from handover.bundle.manifest import Manifest, VolumeRecord, load_manifest, member_records
from handover.bundle.types import MemberRecord

ROWS: list[manifest.MemberRow] = [
    ("a/b.txt", "file", 3, "ab" * 32, 0o644, 1_700_000_000.0, None),
    ("a", "dir", 0, None, 0o755, 1_700_000_001.5, None),
    ("a/l", "symlink", 0, None, 0o777, 2.0, "b.txt"),
    ("a/h", "hardlink", 0, None, 0o644, 3.0, "a/b.txt"),
    ("é/ü 名前", "file", 0, "0" * 64, 0o600, 0.0, None),
]
EXTRAS = {"a/b.txt": {"etag": "x", "version_id": "v1"}}


def _volume(members: list[MemberRecord]) -> VolumeRecord:
    return VolumeRecord(
        number=1,
        file="volumes/0001-x.tar.age",
        label="x",
        origin="local:/x",
        size=10,
        sha256="c" * 64,
        tar_size=20,
        members=members,
    )


def test_the_fast_builder_is_the_one_in_use() -> None:
    assert members._build_records is members._fast_records


def test_records_equal_those_of_model_construct_and_of_validation() -> None:
    fast = member_records(ROWS, EXTRAS)
    reference = members._constructed_records(ROWS, EXTRAS)
    assert fast == reference
    for record, expected in zip(fast, reference, strict=True):
        assert type(record) is MemberRecord
        assert record.__pydantic_fields_set__ == expected.__pydantic_fields_set__
        assert record.model_dump() == expected.model_dump()
        assert record == MemberRecord.model_validate(record.model_dump())
    assert fast[0].extra == {"etag": "x", "version_id": "v1"}
    assert fast[2].link == "b.txt" and fast[1].sha256 is None
    with pytest.raises(Exception, match="frozen"):
        fast[0].path = "other"  # type: ignore[misc]


def test_manifest_json_is_byte_for_byte_the_same_and_reads_back() -> None:
    def manifest_json(members: list[MemberRecord]) -> bytes:
        return Manifest(
            created="2026-01-01T00:00:00+00:00", provider_key="k", volumes=[_volume(members)]
        ).to_json()

    fast = manifest_json(member_records(ROWS, EXTRAS))
    assert fast == manifest_json(members._constructed_records(ROWS, EXTRAS))
    back = load_manifest(fast, "test")
    assert back.volumes[0].members == member_records(ROWS, EXTRAS)
    assert back.volumes[0].file_count == 2 and back.volumes[0].data_size == 3


def test_a_pydantic_laying_models_out_otherwise_gets_model_construct(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(members, "_MODEL_SLOTS", ("__dict__", "__something_else__"))
    assert members._records_builder() is members._constructed_records

    def wrong(rows: object, extras: object) -> list[MemberRecord]:
        return [MemberRecord.model_construct(path="x", size=0, mode=0, mtime=0.0)]

    monkeypatch.undo()
    monkeypatch.setattr(members, "_fast_records", wrong)
    assert members._records_builder() is members._constructed_records


def test_no_rows_no_records() -> None:
    assert member_records([], None) == []


def test_records_share_their_fields_set_and_empty_extra_without_leaking_changes() -> None:
    """The shared pieces (memory: issue #16) never carry one record's change to another."""
    records = member_records([*ROWS, ("c.txt", "file", 1, "cd" * 32, 0o644, 5.0, None)], EXTRAS)
    plain, other = records[1], records[5]
    assert plain.__pydantic_fields_set__ is other.__pydantic_fields_set__
    assert plain.extra is other.extra and plain.extra == {}
    assert records[0].extra is EXTRAS["a/b.txt"]  # a source's facts stay the record's own
    with pytest.raises(Exception, match="frozen"):
        plain.sha256 = "0" * 64  # type: ignore[misc]
    assert "sha256" in other.model_fields_set and other.sha256 == "cd" * 32
    copied = plain.model_copy(update={"link": "x"})
    assert copied.link == "x" and "link" in copied.model_fields_set
    assert "link" not in plain.model_fields_set and "link" not in other.model_fields_set
    row: manifest.MemberRow = ("c.txt", "file", 1, "cd" * 32, 0o644, 5.0, None)
    assert other == members._constructed_records([row], {})[0]


def test_a_record_costs_under_half_a_kilobyte() -> None:
    """100,000 small files: about 36 MB of records instead of 90 MB (tracemalloc, CPython)."""
    import tracemalloc

    rows: list[manifest.MemberRow] = [
        (f"export/d{i // 1000:03d}/f{i:06d}.txt", "file", 4000, f"{i:064x}", 0o644, float(i), None)
        for i in range(5000)
    ]
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        records = member_records(rows)
        per_record = (tracemalloc.get_traced_memory()[0] - before) / len(records)
    finally:
        tracemalloc.stop()
    assert per_record < 500, per_record
