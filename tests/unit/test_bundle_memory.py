"""Verify and open in bounded memory (#16): the pieces that replace whole-bundle structures.

MANIFEST.json is parsed as it streams (ManifestStream must agree with
`load_manifest` on what it accepts and refuses, however the bytes are cut),
members and SHA256SUMS lines are folded into multiset digests (VolumeCheck,
SumsCheck), and the member policy's path table spills to disk (PathTable)
without changing a verdict or writing a client's file name in clear.
"""

from __future__ import annotations

import json
import os
import random
import tarfile
from pathlib import Path

import pytest

from handover.bundle.manifest import MANIFEST_NAME, Manifest, VolumeRecord, load_manifest
from handover.bundle.manifest_stream import ManifestOutline, ManifestStream
from handover.bundle.pathtable import PathTable, PathTableError
from handover.bundle.reader import verify_bundle
from handover.bundle.sums import SUMS_NAME, parse_sums, render_sums
from handover.bundle.tarparse import MemberPolicy
from handover.bundle.types import MemberRecord
from handover.bundle.volcheck import MultisetDigest, SumsCheck
from handover.bundle.writer import INDEX_NAME
from handover.errors import BundleCorrupt, BundleError
from tests.unit.test_bundle_hostile import (
    Keys,
    hostile_tar,
    make_bundle,
    member,
    plain_tar,
    same_refusal,
    sha,
)

WHERE = f"{INDEX_NAME}: {MANIFEST_NAME}"


@pytest.fixture(scope="module")
def keys() -> Keys:
    from handover.bundle.age import X25519Identity
    from handover.bundle.sshsig import SigningKey

    return X25519Identity.generate(), SigningKey.generate()


def manifest(volumes: int = 2, members: int = 30) -> Manifest:
    """A manifest with every member type, odd names (non-UTF-8 too) and hard links."""
    records = []
    for number in range(1, volumes + 1):
        items = [MemberRecord(path="d", type="dir", size=0, mode=0o755, mtime=1.5)]
        for i in range(members):
            items.append(
                MemberRecord(
                    path=f"d/f{i} é\udcff\n",
                    size=i,
                    sha256=sha(str(i).encode()),
                    mode=0o644,
                    mtime=-3.25 + i,
                    extra={"etag": f"e{i}"},
                )
            )
        items.append(
            MemberRecord(
                path="d/h", type="hardlink", size=0, mode=0o644, mtime=0, link="d/f1 é\udcff\n"
            )
        )
        items.append(
            MemberRecord(path="d/s", type="symlink", size=0, mode=0o777, mtime=0, link="/etc")
        )
        records.append(
            VolumeRecord(
                number=number,
                file=f"volumes/{number:04d}-v.tar.age",
                label="v",
                origin="test",
                size=1000 + number,
                sha256=sha(b"%d" % number),
                tar_size=10240,
                members=items,
            )
        )
    return Manifest(
        created="2026-01-01T00:00:00+00:00",
        provider_key="ssh-ed25519 AAAA provider",
        volumes=records,
        documents=[{"path": "audit.log", "size": 3, "sha256": sha(b"abc")}],  # type: ignore[list-item]
        extra={"checklists": {"takeover": {"items": [1, 2.5, None, "x"]}}},
    )


def stream(data: bytes, cut: int | None = None, key: bytes = b"k" * 32) -> ManifestOutline:
    """Feed `data` in pieces of `cut` bytes (random sizes when None)."""
    parser = ManifestStream(WHERE, key, PathTable())
    rng = random.Random(len(data))
    pos = 0
    while pos < len(data):
        size = cut or rng.randint(1, 300)
        parser.feed(memoryview(data)[pos : pos + size])
        pos += size
    return parser.close()


@pytest.mark.parametrize("cut", [1, 7, 4096, None, 1 << 30])
def test_the_streamed_manifest_matches_the_loaded_one(cut: int | None) -> None:
    data = manifest().to_json()
    loaded = load_manifest(data, WHERE)
    outline = stream(data, cut)
    assert (outline.format, outline.created, outline.provider_key) == (
        loaded.format,
        loaded.created,
        loaded.provider_key,
    )
    assert outline.document_count == len(loaded.documents)
    assert len(outline.volumes) == len(loaded.volumes)
    for got, want in zip(outline.volumes, loaded.volumes, strict=True):
        assert got.head.model_dump() == want.model_dump(exclude={"members"})
        assert (got.file_count, got.data_size, got.hardlinks) == (
            want.file_count,
            want.data_size,
            1,
        )
        expected = MultisetDigest(b"k" * 32)
        for m in want.members:
            expected.add((m.path, m.type, m.size, m.sha256, m.link))
        assert got.digest.same(expected)
        assert got.retained == [(m.path, m.type, m.size, m.sha256, m.link) for m in want.members]
    outline.targets.close()


def test_an_ascii_escaped_manifest_and_compact_json_read_the_same() -> None:
    data = manifest().model_dump(mode="json")
    compact = json.dumps(data, ensure_ascii=True, separators=(",", ":")).encode()
    spaced = json.dumps(data, ensure_ascii=False, indent=4).encode("utf-8", "surrogatepass")
    one, two = stream(compact), stream(spaced)
    assert [v.digest.value for v in one.volumes] == [v.digest.value for v in two.volumes]


@pytest.mark.parametrize(
    "edit",
    [
        lambda d: d.__setitem__("unknown", 1),
        lambda d: d.pop("created"),
        lambda d: d.pop("volumes"),
        lambda d: d.__setitem__("volumes", {}),
        lambda d: d.__setitem__("documents", "x"),
        lambda d: d.__setitem__("extra", []),
        lambda d: d["volumes"][1].__setitem__("size", "big"),
        lambda d: d["volumes"][0].__setitem__("colour", "red"),
        lambda d: d["volumes"][0].pop("members"),
        lambda d: d["volumes"][0].__setitem__("members", 3),
        lambda d: d["volumes"][0]["members"][2].__setitem__("size", 1.5),
        lambda d: d["volumes"][0]["members"][2].pop("mode"),
        lambda d: d["volumes"][0]["members"][3].__setitem__("owner", "root"),
        lambda d: d["documents"][0].__setitem__("sha256", None),
        lambda d: d["volumes"].append(7),
    ],
)
def test_schema_errors_read_as_load_manifest_says_them(edit: object) -> None:
    data = manifest().model_dump(mode="json")
    edit(data)  # type: ignore[operator]
    raw = json.dumps(data).encode()
    with pytest.raises(BundleCorrupt) as loaded:
        load_manifest(raw, WHERE)
    with pytest.raises(BundleCorrupt) as streamed:
        stream(raw)
    assert str(streamed.value) == str(loaded.value)
    assert str(streamed.value).startswith(f"{WHERE}: invalid {MANIFEST_NAME}: ")


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (b"", "ends too early"),
        (b"[]", "not a JSON object"),
        (b'{"created": "x"', "ends too early"),
        (b'{"created": "x"} {}', "data after the manifest"),
        (b'{"created": "x", "created": "y"}', "appears twice"),
        (b'{"created": tru}', "Expecting value"),
        (b'{"created": "x" "y"}', "expected ',' or '}'"),
        (b'{"created": "x", "extra": {"a": [1 2]}}', "Expecting ',' delimiter"),
        (b'{"created" "x"}', "expected ':'"),
        (b'{"created": "\xff"}', "is not JSON"),
    ],
)
def test_malformed_manifests_are_refused(text: bytes, says: str) -> None:
    for cut in (1, 3, None):
        with pytest.raises(BundleCorrupt, match=says) as caught:
            stream(text, cut)
        assert str(caught.value).startswith(WHERE)


def test_extra_keeps_json_rules_and_unknown_keys_stop_the_read_at_once() -> None:
    text = b'{"created": "x", "provider_key": "k", "volumes": [], "extra": {"a": 1, "a": [2]}}'
    assert load_manifest(text, WHERE).extra == {"a": [2]}
    assert stream(text).volumes == []
    parser = ManifestStream(WHERE, b"k" * 32, PathTable())
    parser.feed(b'{"created": "x", "junk": ' + b"[0, " * 1000)
    with pytest.raises(BundleCorrupt, match="junk: Extra inputs are not permitted"):
        parser.close()


def test_a_number_cut_by_a_buffer_is_read_whole() -> None:
    data = manifest(1, 3).to_json().replace(b'"size": 1001', b'"size": 123456789')
    for cut in range(1, 40):
        assert stream(data, cut).volumes[0].head.size == 123456789


def test_path_table_spills_to_disk_as_digests_only() -> None:
    table = PathTable(memory_limit=3)
    model: dict[str, tuple[str, str | None]] = {}
    names = [f"client/secret-name-{i}" for i in range(50)]
    for i, name in enumerate(names):
        kind = ("file", "dir", "symlink")[i % 3]
        digest = sha(name.encode()) if i % 2 else None
        table.set(name, kind, digest)
        model[name] = (kind, digest)
        assert table.get(name) == (kind, digest)
    assert table.spilled_to is not None and table.spilled_to.is_dir()
    assert oct(table.spilled_to.stat().st_mode & 0o777) == "0o700"
    assert len(table) == 50
    assert all(table.get(name) == value for name, value in model.items())
    assert table.get("client/absent") is None
    assert table.setdefault("client/new", "dir") == "dir"
    assert table.setdefault(names[0], "dir") == "file"
    stored = b"".join(p.read_bytes() for p in table.spilled_to.iterdir())
    assert b"secret-name" not in stored and b"client" not in stored
    folder = table.spilled_to
    table.close()
    assert not folder.exists()


def test_no_room_for_the_path_table_is_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path / "absent"))
    table = PathTable(memory_limit=1)
    table.set("a", "file")
    with pytest.raises(PathTableError, match=r"absent: cannot keep the table of member paths"):
        table.set("b", "file")


def policy_verdicts(names: list[tuple[str, str, str | None]], limit: int | None) -> list[str]:
    policy = MemberPolicy("v", memory_limit=limit)
    said = []
    for name, kind, link in names:
        try:
            policy.check(name, kind, link)
            said.append("ok")
        except BundleError as exc:
            said.append(str(exc))
    policy.close()
    return said


def test_the_member_policy_says_the_same_once_on_disk() -> None:
    names: list[tuple[str, str, str | None]] = [
        (f"d{i % 7}/f{i}", "file", None) for i in range(200)
    ]
    names += [
        ("d1/f8", "file", None),  # twice
        ("./d1/f15", "file", None),  # twice, spelled otherwise
        ("d2/f9/x", "file", None),  # under a file
        ("d3", "file", None),  # a file where a folder was
        ("d4", "dir", None),  # a folder again: fine
        ("h", "hardlink", "d5/f5"),  # to an earlier file: fine
        ("h2", "hardlink", "d4"),  # to a folder
        ("h3", "hardlink", "later"),
        ("l", "symlink", "/etc"),
        ("l/x", "file", None),  # under a link
    ]
    in_memory = policy_verdicts(names, None)
    assert in_memory[:200] == ["ok"] * 200
    assert in_memory[200:] != ["ok"] * 10
    assert policy_verdicts(names, 5) == in_memory


def test_sums_lines_are_read_however_they_are_cut() -> None:
    entries = {f"d/f{i}": sha(b"%d" % i) for i in range(300)}
    entries["odd\\name\nwith\rescapes"] = sha(b"odd")
    data = render_sums(entries)
    expected = MultisetDigest(b"k" * 32)
    for item in parse_sums(data, "x").items():
        expected.add(item)
    for cut in (1, 5, 64, 1000, len(data)):
        check = SumsCheck("v: SHA256SUMS", b"k" * 32)
        for pos in range(0, len(data), cut):
            check.write(memoryview(data)[pos : pos + cut])
        check.end()
        assert check.error is None and check.digest.same(expected)
    check = SumsCheck("v: SHA256SUMS", b"k" * 32)
    check.write(b"a" * 64 + b"  x\nnot a line\n")
    check.end()
    with pytest.raises(BundleError) as caught:
        parse_sums(b"a" * 64 + b"  x\nnot a line\n", "v: SHA256SUMS")
    assert check.error == str(caught.value)


# -- whole bundles, with the tables on disk and no member kept -----------------------------


@pytest.fixture
def tiny_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("handover.bundle.pathtable.MEMORY_LIMIT", 4)
    monkeypatch.setattr("handover.bundle.pathtable.BATCH", 3)
    monkeypatch.setattr("handover.bundle.manifest_stream.RETAIN_MEMBERS", 0)


def entries() -> list[tuple[tarfile.TarInfo, bytes]]:
    files = [member(f"d{i % 3}/f{i}", b"%d" % i) for i in range(40)]
    return [
        member("d0", kind=tarfile.DIRTYPE),
        *files,
        member("d1/hard", kind=tarfile.LNKTYPE, link="d1/f1"),
        member("d2/link", kind=tarfile.SYMTYPE, link="../d0/f0"),
        member("d2/out", kind=tarfile.SYMTYPE, link="/etc/passwd"),
    ]


def test_a_bundle_verifies_and_opens_with_everything_on_disk(
    tmp_path: Path, keys: Keys, tiny_memory: None
) -> None:
    from handover.bundle.extract import open_bundle

    bundle = make_bundle(tmp_path / "b", keys, {"volumes/0001-v.tar.age": hostile_tar(entries())})
    assert verify_bundle(bundle, [keys[0]]) == []
    notes: list[str] = []
    opened = open_bundle(bundle, [keys[0]], tmp_path / "into", notes=notes)
    root = tmp_path / "into" / "0001-v"
    assert (root / "d1" / "hard").read_bytes() == b"1"
    assert os.readlink(root / "d2" / "out") == "/etc/passwd"
    assert len(opened.volumes[0].members) == 44
    assert any("1 symbolic link(s) point outside" in note for note in notes)


def test_differences_are_found_without_the_members_kept(
    tmp_path: Path, keys: Keys, tiny_memory: None
) -> None:
    tar, members = hostile_tar(entries())
    altered = [*members[:5], members[5].model_copy(update={"size": 99}), *members[6:]]
    bundle = make_bundle(tmp_path / "b", keys, {"volumes/0001-v.tar.age": (tar, altered)})
    problem = same_refusal(bundle, keys, tmp_path / "w" / "into")
    assert problem == (
        "volumes/0001-v.tar.age: its members differ from MANIFEST.json (44 read, 44 listed)"
    )


def test_a_lying_sums_member_is_found(tmp_path: Path, keys: Keys, tiny_memory: None) -> None:
    _tar, members = hostile_tar(entries())
    lying = render_sums({"d0/f0": sha(b"not it")})
    raw = plain_tar([*entries(), member(SUMS_NAME, lying)])
    bundle = make_bundle(tmp_path / "b", keys, {"volumes/0001-v.tar.age": (raw, members)})
    problem = same_refusal(bundle, keys, tmp_path / "w" / "into")
    assert problem == "volumes/0001-v.tar.age: its SHA256SUMS does not match the members' content"


def test_a_hard_link_counts_with_its_target_digest(
    tmp_path: Path, keys: Keys, tiny_memory: None
) -> None:
    """A volume's SHA256SUMS lists a hard link with its target's digest (`sha256sum -c`)."""
    _tar, members = hostile_tar(entries())
    sums = {f"d{i % 3}/f{i}": sha(b"%d" % i) for i in range(40)}
    without = plain_tar([*entries(), member(SUMS_NAME, render_sums(sums))])
    bundle = make_bundle(tmp_path / "b", keys, {"volumes/0001-v.tar.age": (without, members)})
    problem = same_refusal(bundle, keys, tmp_path / "w" / "into")
    assert problem.endswith("its SHA256SUMS does not match the members' content")
    sums["d1/hard"] = sha(b"1")
    right = plain_tar([*entries(), member(SUMS_NAME, render_sums(sums))])
    bundle = make_bundle(tmp_path / "c", keys, {"volumes/0001-v.tar.age": (right, members)})
    assert verify_bundle(bundle, [keys[0]]) == []


def test_differences_of_a_small_volume_are_named(tmp_path: Path, keys: Keys) -> None:
    """A small volume's members are kept (within a budget): the differing ones are named."""
    tar, members = hostile_tar(entries())
    altered = [*members[:5], members[5].model_copy(update={"size": 99}), *members[6:]]
    bundle = make_bundle(tmp_path / "b", keys, {"volumes/0001-v.tar.age": (tar, altered)})
    problems = verify_bundle(bundle, [keys[0]])
    name = repr(members[5].path)
    assert problems == [
        f"volumes/0001-v.tar.age: member {name} (file) differs from MANIFEST.json or is missing",
        f"volumes/0001-v.tar.age: member {name} (file) is not in MANIFEST.json",
    ]
