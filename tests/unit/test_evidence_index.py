"""The evidence index's pure merges, and what the mirror never copies."""

from __future__ import annotations

import pytest

from handover.errors import HandoverError
from handover.evidence.tree import is_excluded
from handover.state.evidence_index import (
    change,
    dump_index,
    empty_index,
    is_under,
    load_index,
    normalized_prefixes,
    referenced,
    set_files,
    tombstone,
    tombstone_under,
)

E1 = {"sha256": "1" * 64, "size": 1, "at": "t", "by": "a"}
E2 = {"sha256": "2" * 64, "size": 2, "at": "t", "by": "b"}


def test_merges_touch_only_the_paths_they_name() -> None:
    index = empty_index()
    set_files(index, {"takeover/a.json": E1})
    index["erased"]["takeover/b.json"] = {"at": "t", "by": "x"}
    set_files(index, {"takeover/b.json": E2})  # written again: no longer erased
    assert set(index["files"]) == {"takeover/a.json", "takeover/b.json"}
    assert index["erased"] == {}
    # a tombstone for an old version does not erase another worker's newer one
    assert tombstone(index, {"takeover/a.json": "0" * 64}, "c", "t2") == []
    assert tombstone(index, {"takeover/a.json": "1" * 64}, "c", "t2") == ["takeover/a.json"]
    assert index["erased"] == {"takeover/a.json": {"at": "t2", "by": "c"}}
    assert referenced(index) == {"2" * 64}


def test_change_writes_nothing_when_nothing_changes_and_reads_what_it_wrote() -> None:
    assert change(lambda index: None)(None) is None
    written = change(lambda index: set_files(index, {"a/b": E1}))(None)
    assert written is not None and load_index(written)["files"] == {"a/b": E1}
    assert change(lambda index: set_files(index, {"a/b": E1}))(written) is None
    assert dump_index(load_index(written)) == written


def test_prefixes_are_path_components() -> None:
    assert is_under("takeover/x", ["takeover"]) and is_under("anything", [""])
    assert not is_under("takeover-old/x", ["takeover"])
    index = empty_index()
    set_files(index, {"bundles/b/v": E1, "bundles-list.json": E2})
    assert tombstone_under(index, normalized_prefixes(["bundles/"]), "w", "t") == ["bundles/b/v"]


@pytest.mark.parametrize("bad", ["../x", "/etc/passwd", "a/../b", "a//b", "a\\b", ""])
def test_paths_leaving_the_folder_are_refused(bad: str) -> None:
    with pytest.raises(HandoverError):
        set_files(empty_index(), {bad: E1})


def test_an_index_of_another_version_is_refused() -> None:
    with pytest.raises(HandoverError, match="version"):
        load_index(b'{"version": 2}')
    with pytest.raises(HandoverError, match="JSON"):
        load_index(b"{")


@pytest.mark.parametrize(
    ("relpath", "excluded"),
    [
        ("checklists/takeover.json", True),
        ("audit.log", True),
        ("audit.log.torn-20260101", True),
        ("vault.age", True),
        ("takeover/writer.lease", True),
        ("operational/alerts-sent.json.lock", True),
        ("takeover/.inventory.json.abc123.tmp", True),
        (".evidence-sync.json", True),
        ("takeover/inventory.json", False),
        ("reversibility/exit-report.md.sig", False),
        ("operational/incidents.json", False),
        ("takeover/checklists/x", False),
    ],
)
def test_what_is_never_mirrored(relpath: str, excluded: bool) -> None:
    assert is_excluded(relpath) is excluded
