"""Members packed in columns (issue #16: an exit's memory) read back exactly as they went in.

`MemberTable` holds a volume's members from the seal to the index; these
tests hold it to the records `member_records` builds from the same rows, to
the JSON pydantic would write, and to what `load_manifest` reads back,
including the values the columns cannot hold (kept whole) and names that
are not UTF-8.
"""

from __future__ import annotations

import json
import tracemalloc

import pytest

from handover.bundle.manifest import DocumentRecord, Manifest, VolumeRecord, load_manifest
from handover.bundle.members import MemberRow, MemberTable, member_records

ROWS: list[MemberRow] = [
    ("a/b.txt", "file", 3, "ab" * 32, 0o644, 1_700_000_000.0, None),
    ("a", "dir", 0, None, 0o755, 1_700_000_001.5, None),
    ("a/l", "symlink", 0, None, 0o777, 2.0, "b.txt"),
    ("a/h", "hardlink", 0, None, 0o644, 3.0, "a/b.txt"),
    ("é/ü 名前", "file", 0, "0" * 64, 0o600, 0.0, None),
    ("raw/\udcff\udcfe.bin", "file", 7, "cd" * 32, 0o640, 4.0, "\udc80"),  # not UTF-8 on disk
    ("dev/null", "char", 0, None, 0o666, 5.0, None),
]
EXTRAS = {"a/b.txt": {"etag": "x", "version_id": "v1"}, "a": {"s3_key": "p/a/"}}
# Values no column holds exactly: only from a hand-made manifest. Each is kept as its record.
ODD_ROWS: list[MemberRow] = [
    ("up.txt", "file", 1, "AB" * 32, 0o644, 1.0, None),  # upper-case digest
    ("short.txt", "file", 1, "ab", 0o644, 1.0, None),  # not a SHA-256
    ("neg.txt", "file", -1, "ab" * 32, 0o644, 1.0, None),
    ("mode.txt", "file", 1, "ab" * 32, 1 << 40, 1.0, None),
    ("odd", "socket", 0, None, 0o644, 1.0, None),  # a type the parser never gives
]


def table(rows: list[MemberRow], extras: dict[str, dict[str, str]] | None = None) -> MemberTable:
    packed = MemberTable(rows)
    packed.add_extras(extras or {})
    return packed


def volume(members: MemberTable | list[object]) -> VolumeRecord:
    return VolumeRecord.model_validate(
        {
            "number": 1,
            "file": "volumes/0001-x.tar.age",
            "label": "x",
            "origin": "local:/x",
            "size": 10,
            "sha256": "c" * 64,
            "tar_size": 20,
            "members": members,
        }
    )


@pytest.mark.parametrize("rows", [ROWS, ODD_ROWS, ROWS + ODD_ROWS + ROWS])
def test_members_read_back_as_the_records_of_their_rows(rows: list[MemberRow]) -> None:
    packed = table(rows, EXTRAS)
    expected = member_records(rows, EXTRAS)
    assert len(packed) == len(expected)
    assert list(packed) == expected
    assert [packed[i] for i in range(len(rows))] == expected
    assert packed[-1] == expected[-1] and packed[1:3] == expected[1:3]
    assert packed == expected and packed != expected[:-1]
    assert [r.model_dump() for r in packed] == [r.model_dump() for r in expected]
    assert list(packed.rows()) == rows
    with pytest.raises(IndexError):
        packed[len(rows)]


def test_a_member_kept_whole_gets_its_source_facts_too() -> None:
    extras = {"odd": {"etag": "e"}, "up.txt": {"etag": "u"}}
    packed = table(ODD_ROWS, extras)
    assert list(packed) == member_records(ODD_ROWS, extras)
    assert packed[0].extra == {"etag": "u"} and packed[4].extra == {"etag": "e"}


def test_file_totals_and_paths_count_regular_files_only() -> None:
    packed = table(ROWS + ODD_ROWS)
    files = [r for r in member_records(ROWS + ODD_ROWS) if r.type == "file"]
    assert packed.file_totals() == (len(files), sum(r.size for r in files))
    assert list(packed.file_paths()) == [r.path for r in files]


def test_a_volume_keeps_its_members_packed_from_a_list_json_or_a_table() -> None:
    packed = table(ROWS, EXTRAS)
    from_table = volume(packed)
    assert from_table.members is packed  # taken as it is
    from_list = volume([r.model_dump() for r in packed])
    assert isinstance(from_list.members, MemberTable) and from_list.members == packed
    as_json = json.dumps(from_table.model_dump(mode="json"))  # pydantic's own dump of the table
    from_json = VolumeRecord.model_validate(json.loads(as_json))
    assert isinstance(from_json.members, MemberTable) and from_json == from_table
    assert from_table.file_count == 3 and from_table.data_size == 10


def test_a_volume_renders_the_json_pydantic_would() -> None:
    record = volume(table(ROWS + ODD_ROWS, EXTRAS))
    rendered = "".join(record.json_chunks())
    assert json.loads(rendered) == json.loads(json.dumps(record.model_dump(mode="json")))
    assert "\\udcff" in rendered and "名前" in rendered  # escaped only where not UTF-8
    back = VolumeRecord.model_validate(json.loads(rendered.encode("utf-8")))
    assert back == record


def test_a_manifest_is_rendered_in_pieces_one_line_per_member() -> None:
    manifest = Manifest(
        created="2026-01-01T00:00:00+00:00",
        provider_key="ssh-ed25519 AAAA provider",
        volumes=[volume(table(ROWS, EXTRAS)), volume(table(ODD_ROWS))],
        documents=[DocumentRecord(path="audit/log.jsonl", size=1, sha256="d" * 64)],
        extra={"checklists": {"exit": [{"id": "x", "state": "done"}]}, "name": "\udcff"},
    )
    whole = manifest.to_json()
    assert json.loads(whole) == json.loads(json.dumps(manifest.model_dump(mode="json")))
    assert load_manifest(whole, "test") == manifest
    member_lines = [line for line in whole.decode("utf-8").splitlines() if '"path": ' in line]
    assert len(member_lines) == len(ROWS) + len(ODD_ROWS) + 1  # and the document's
    for line in member_lines:  # each member a whole JSON object on its own line
        text = line.strip().removesuffix(",").removesuffix("]}")
        assert set(json.loads(text)) >= {"path", "size", "sha256"}
    assert b"".join(manifest.json_chunks()) == whole
    assert all(len(chunk) <= (64 << 10) + 4096 for chunk in manifest.json_chunks())
    empty = Manifest(created="x", provider_key="k", volumes=[])
    assert load_manifest(empty.to_json(), "test") == empty


def test_a_member_costs_about_sixty_bytes_plus_what_its_path_adds_to_the_one_before() -> None:
    """20,000 files in folders of 1,000: ~72 bytes each packed (their paths are 28 bytes,
    of which 9-10 differ from the path before), against ~650 as records (tracemalloc)."""
    rows: list[MemberRow] = [
        (
            f"export/data/d{i // 1000:03d}/f{i:06d}.txt",
            "file",
            4000,
            f"{i:064x}",
            0o644,
            float(i),
            None,
        )
        for i in range(20_000)
    ]
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        packed = MemberTable(rows)
        per_member = (tracemalloc.get_traced_memory()[0] - before) / len(packed)
    finally:
        tracemalloc.stop()
    assert per_member < 62 + 16 + 8, per_member  # columns, the new part of the path, slack
    assert list(packed.rows()) == rows


@pytest.mark.parametrize("restart_offset", [0, 1, 7, 15])
def test_front_coded_paths_read_back_whole_in_order_and_one_at_a_time(restart_offset: int) -> None:
    """Paths sharing nothing, everything, part of a name, a folder, bytes that are not UTF-8,
    one longer than a prefix count holds, and members kept whole, across restart points."""
    long_folder = "l/" + "x" * 70_000
    paths = (
        [f"pad{i}" for i in range(restart_offset)]
        + [
            "a/b/c.txt",
            "a/b/c.txt.bak",  # the whole path before is its prefix
            "a/b/c",  # a prefix of the path before
            "a/b/d/e",
            "a/bb",  # shares part of a folder name
            "z",
            "z",  # the same path twice (a replaced member)
            "é/ü 名前",
            "é/ü 名前2",
            "ê/ü",  # shares the first byte of "é" only: a part of a character
            "raw/\udcff\udcfe.bin",
            "raw/\udcff\udcfd.bin",  # differs inside an escaped byte
            f"{long_folder}/one",
            f"{long_folder}/two",
            "b",
        ]
        + [f"deep/{i // 5}/{i}" for i in range(40)]
    )
    rows: list[MemberRow] = [(p, "file", 1, "ab" * 32, 0o644, 1.0, None) for p in paths]
    rows[restart_offset + 4] = ("a/bb", "file", -1, "ab" * 32, 0o644, 1.0, None)  # kept whole
    packed = MemberTable(rows)
    assert [path for path, *_ in packed.rows()] == paths
    assert [packed[i].path for i in range(len(paths))] == paths
    assert [packed[i].path for i in reversed(range(len(paths)))] == paths[::-1]


def test_extras_of_several_shapes_and_odd_values_read_back_exactly() -> None:
    """Keys in their order, values with lone surrogates, long and empty values, set late."""
    rows = ROWS + ODD_ROWS
    extras = {
        "a/b.txt": {"s3_key": "p/a/b.txt", "etag": '"9b2cf535f27731c974343645a3985328-3"'},
        "a/l": {"etag": "", "s3_key": "k" * 5000},  # the same keys, another order: another shape
        "raw/\udcff\udcfe.bin": {"s3_key": "raw/\udcff", "version_id": "null"},
        "é/ü 名前": {"名": "ü"},
        "up.txt": {"etag": "kept whole"},
    }
    packed = table(rows, extras)
    assert list(packed) == member_records(rows, extras)
    assert list(packed[2].extra) == ["etag", "s3_key"]
    assert packed.extra_of(0) == extras["a/b.txt"] and packed.extra_of(1) == {}
    rendered = "".join(volume(packed).json_chunks())
    back = VolumeRecord.model_validate(json.loads(rendered.encode("utf-8")))
    assert [m.extra for m in back.members] == [m.extra for m in member_records(rows, extras)]
    # from records: members appended after the first with an extra get theirs too
    again = MemberTable.from_records(member_records(rows, extras))
    assert again == packed and [m.extra for m in again] == [m.extra for m in packed]


def test_an_s3_objects_facts_cost_far_less_packed_than_as_a_dict() -> None:
    """An S3 object's key, ETag, date and class: 370-510 bytes as a dict of str, ~140 packed.

    (370 here, where every member shares one date and one class string.)
    """
    count = 20_000
    rows: list[MemberRow] = [
        (f"docs/d{i % 100:03d}/f{i:07d}.pdf", "file", 4000, f"{i:064x}", 0o644, float(i), None)
        for i in range(count)
    ]
    packed = MemberTable(rows)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        extras = {
            row[0]: {
                "s3_key": "clients/acme/" + row[0],
                "etag": f"{i:032x}",
                "last_modified": "2026-01-01T00:00:00+00:00",
                "storage_class": "STANDARD",
            }
            for i, row in enumerate(rows)
        }
        as_dicts = (tracemalloc.get_traced_memory()[0] - before) / count
        packed.add_extras(extras)
        del extras
        per_member = (tracemalloc.get_traced_memory()[0] - before) / count
    finally:
        tracemalloc.stop()
    assert as_dicts > 300, as_dicts  # what they cost as dicts, before they were packed
    assert per_member < 160, per_member
    assert packed[7].extra["s3_key"] == "clients/acme/docs/d007/f0000007.pdf"
